"""What the Debian package installs besides the Python package (rbdvm.ocf.install.packaged_files):
pure text, checked here; the lab test (tests/system/test_debian_package.py) installs it."""

import configparser

import pytest

from rbdvm.helpers.core import devpolicy
from rbdvm.ocf import install

pytestmark = pytest.mark.unit


def test_the_policy_conffile_changes_nothing_until_a_key_is_uncommented():
    text = devpolicy.default_text()
    assert all(line.startswith("#") or not line.strip() for line in text.splitlines())
    assert devpolicy.parse(text.encode(), "conffile") == devpolicy.Policy()
    uncommented = "\n".join(line[2:] if " = [" in line else line for line in text.splitlines())
    assert devpolicy.parse(uncommented.encode(), "uncommented") == devpolicy.Policy(), \
        "every key is shown at its built-in value"


def test_every_program_is_packaged_where_its_caller_looks_running_the_packaged_code():
    files = install.packaged_files()
    places = {"agent": install.DEFAULT_DIR, "fence": install.DEFAULT_FENCE_DIR, "alert": install.DEFAULT_ALERT_DIR}
    for program in install.PROGRAMS:
        text, mode = files[f"{places[program.place]}/{program.name}"]
        assert mode == 0o755
        assert text.startswith("#!/usr/bin/python3 -S\n")
        assert f"from {program.module} import main" in text
        assert "'/usr/lib/python3/dist-packages'" in text and "install-agent" not in text


def test_the_systemd_files_are_units_systemd_reads():
    files = install.packaged_files()
    unit = configparser.ConfigParser(strict=True)
    unit.read_string(files["/lib/systemd/system/fence_rbdvm_check.service"][0])
    assert unit["Service"]["ExecStart"].startswith("/usr/sbin/fence_rbdvm_check --interval ")
    assert unit["Unit"]["Before"] == "pacemaker.service"
    dropin = configparser.ConfigParser(strict=True)
    dropin.read_string(files["/lib/systemd/system/pacemaker.service.d/50-rbdvm.conf"][0])
    assert "libvirtd.service" in dropin["Unit"]["After"]

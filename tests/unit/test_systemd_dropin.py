"""install-agent's systemd drop-in for pacemaker.service (pure: the lab has no systemd; the
file is written into a temporary directory)."""

import configparser
import subprocess

import pytest

from rbdvm.ocf import install

pytestmark = pytest.mark.unit


def test_pacemaker_is_ordered_after_the_hypervisor_so_it_stops_first():
    ini = configparser.ConfigParser()
    ini.read_string(install.dropin_text())
    after = ini["Unit"]["After"].split()
    for unit in ("libvirtd.service", "virtqemud.service", "machine.slice", "libvirt-guests.service"):
        assert unit in after
    assert set(ini.sections()) == {"Unit"}, "only ordering: nothing else of pacemaker.service changes"


def test_written_only_where_systemd_runs(tmp_path):
    path = tmp_path / "etc" / "pacemaker.service.d" / "50-rbdvm.conf"
    assert install.install_dropin(str(path), running=str(tmp_path / "no-systemd")) is None
    assert not path.exists()
    (tmp_path / "systemd").mkdir()
    assert install.install_dropin(str(path), running=str(tmp_path / "systemd")) == str(path)
    assert path.read_text() == install.dropin_text()
    assert install.install_dropin(str(path), running=str(tmp_path / "systemd")) == str(path), "again: same file"


def _unit_problems(tmp_path, text: str) -> str:
    """What systemd's own parser says of a unit (systemd-analyze verify reads the file
    offline: no running systemd needed); the program it starts is a stand-in that exists."""
    program = tmp_path / "fence_rbdvm_check"
    program.write_text("#!/bin/sh\n")
    program.chmod(0o755)
    unit = tmp_path / "fence_rbdvm_check.service"
    unit.write_text(text.replace(f"{install.DEFAULT_FENCE_DIR}/fence_rbdvm_check", str(program)))
    res = subprocess.run(["systemd-analyze", "verify", "--man=no", str(unit)], capture_output=True, text=True,
                         timeout=60)
    # a unit it orders itself against (pacemaker.service) need not exist here
    return "\n".join(line for line in (res.stdout + res.stderr).splitlines() if "pacemaker.service" not in line)


@pytest.mark.requires("systemd-analyze")
def test_the_self_check_unit_is_read_by_systemd_without_a_complaint(tmp_path):
    assert _unit_problems(tmp_path, install.selfcheck_unit_text()) == ""
    # the check sees a key systemd does not know
    assert "Unknown key" in _unit_problems(tmp_path, install.selfcheck_unit_text().replace(
        "[Service]\n", "[Service]\nRestartForEver=yes\n"))


def test_the_self_check_never_gives_up_and_keeps_what_it_needs_to_end_qemus():
    ini = configparser.ConfigParser(strict=False)
    ini.read_string(install.selfcheck_unit_text())
    assert ini["Unit"]["StartLimitIntervalSec"] == "0", "systemd's start limit would stop restarting it"
    assert "man:fence_rbdvm_check(8)" in ini["Unit"]["Documentation"].split()
    service = ini["Service"]
    assert service["Restart"] == "always"
    assert "CAP_KILL" in service["CapabilityBoundingSet"].split()
    for hiding in ("ProtectProc", "PrivatePIDs", "PrivateUsers", "PrivateNetwork"):
        assert hiding not in service, f"{hiding} would hide the QEMUs or cut Ceph off"

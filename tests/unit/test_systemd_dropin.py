"""install-agent's systemd drop-in for pacemaker.service (pure: the lab has no systemd; the
file is written into a temporary directory)."""

import configparser

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

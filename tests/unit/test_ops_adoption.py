"""adopt's decisions over a scripted environment (tests/unit/scripted.py: in-memory Ceph,
and a libvirt domain scripted here): what it takes from a domain's definition, what it
refuses before writing anything, that the domain's identity and UEFI variables are kept,
and that a re-run after a stop at each step converges. The lab adopts real domains defined
with virsh (tests/system/test_adopt.py)."""

import pytest
from scripted import cut, disk_file, scripted_env

from rbdvm.helpers.core import devpolicy, domainxml, vmschema
from rbdvm.helpers.core.errors import RbdvmError
from rbdvm.helpers.ops import adoption

pytestmark = [pytest.mark.unit, pytest.mark.requires("python:rados", "python:rbd", "python:libvirt")]
UUID = "0f5a3b8e-5a0e-4b8e-9b1e-2d7c1c9e4a11"


def domain_xml(disks: str, name="legacy", os_extra="") -> str:
    return (f"<domain type='kvm'><name>{name}</name><uuid>{UUID}</uuid><memory unit='MiB'>64</memory>"
            f"<os><type arch='x86_64' machine='q35'>hvm</type>{os_extra}</os><devices>{disks}"
            "<interface type='network'><mac address='52:54:00:aa:bb:cc'/><source network='default'/>"
            "<boot order='2'/></interface></devices></domain>")


def file_disk(path, dev, fmt="raw", boot=None) -> str:
    return (f"<disk type='file' device='disk'><driver name='qemu' type='{fmt}'/><source file='{path}'/>"
            f"<target dev='{dev}' bus='sata'/>{f'<boot order={chr(39)}{boot}{chr(39)}/>' if boot else ''}</disk>")


class Domain:
    """A libvirt domain as live.Domain shows it, scripted: its definition, whether it runs."""

    def __init__(self, xml, active=False):
        self.xml, self.active, self.shutdowns = xml, active, 0

    def __call__(self, uri, name):
        assert uri == "qemu:///system" and name == "legacy", (uri, name)
        return self

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        pass

    def defined_xml(self):
        return self.xml

    def is_active(self):
        return self.active

    def shutdown(self):
        self.shutdowns += 1
        self.active = False


@pytest.fixture
def two_disks(tmp_path):
    system = disk_file(tmp_path, "system.raw", 1 << 20, b"S")
    data = disk_file(tmp_path, "data.raw", 2 << 20, b"D")
    iso = tmp_path / "install.iso"
    iso.write_bytes(b"\0" * 2048)
    disks = (file_disk(data, "sdb") + file_disk(system, "sda", boot=1)
             + f"<disk type='file' device='cdrom'><source file='{iso}'/><target dev='sdc' bus='sata'/></disk>"
             + "<disk type='file' device='cdrom'><target dev='sdd' bus='sata'/></disk>")
    return domain_xml(disks), system, data


def code_of(fn, *args, **kw) -> str:
    with pytest.raises(RbdvmError) as exc:
        fn(*args, **kw)
    return exc.value.code


def test_the_plan_takes_disks_in_boot_order_and_leaves_media_out(two_disks):
    xml, system, data = two_disks
    p = adoption.plan(xml)
    assert [(d["source"], d["bus"]) for d in p["disks"]] == [(system, "sata"), (data, "sata")]
    assert p["bus"] == "sata" and p["uuid"] == UUID
    assert len(p["dropped"]) == 1 and "install.iso" in p["dropped"][0]
    base = domainxml.parse(p["base_xml"])
    assert [d.get("device") for d in base.iter("disk")] == ["cdrom"], "the empty drive stays"
    assert base.find("devices/interface/boot") is None and base.find("os/boot").get("dev") == "hd"


def test_the_plan_reports_every_disk_it_cannot_take():
    xml = domain_xml("<disk type='block' device='disk'><source dev='/dev/sdz'/><target dev='vda'/></disk>"
                     "<disk type='file' device='lun'><source file='/x'/><target dev='vdb'/></disk>")
    with pytest.raises(RbdvmError) as exc:
        adoption.plan(xml)
    assert len(exc.value.details["problems"]) == 2


def test_adopt_keeps_the_domains_identity_and_leaves_the_domain_alone(two_disks):
    xml, system, data = two_disks
    env = scripted_env()
    env.open_domain = Domain(xml)
    made = adoption.adopt(env, "legacy")
    assert made["changed"] and made["disks"] == ["system_legacy", "data_legacy_0"]
    store = env.session.store
    assert store.images["system_legacy"].metadata[vmschema.DISK_BUS] == "sata"
    stored = domainxml.parse(store.images["system_legacy"].metadata[vmschema.XML])
    assert stored.findtext("uuid") == UUID
    assert stored.find("devices/interface/mac").get("address") == "52:54:00:aa:bb:cc"
    assert [s.get("name") for s in stored.iterfind("devices/disk/source")] == ["rbd/system_legacy", "rbd/data_legacy_0"]
    assert [i[0] for i in env.import_disk.done] == [system, data], "each file through create's import"
    again = adoption.adopt(env, "legacy")
    assert again["changed"] is False, "done: it says so"


@pytest.mark.parametrize("step", ["create:images", "create:group", "create:imported", "create:commit"])
def test_adopt_stopped_at_any_step_is_finished_by_running_it_again(two_disks, monkeypatch, step):
    xml, _, _ = two_disks
    env = scripted_env()
    env.open_domain = Domain(xml)
    cut(monkeypatch, step, adoption.adopt, env, "legacy")
    made = adoption.adopt(env, "legacy")
    assert made["changed"] and domainxml.uuid_of(env.session.store.images["system_legacy"].metadata["xml"]) == UUID


def test_a_running_domain_is_refused_unless_adopt_may_stop_it(two_disks):
    xml, _, _ = two_disks
    env = scripted_env()
    env.open_domain = running = Domain(xml, active=True)
    assert code_of(adoption.adopt, env, "legacy") == "VM_RUNNING"
    assert "system_legacy" not in env.session.store.images and running.shutdowns == 0
    adoption.adopt(env, "legacy", stop=True)
    assert running.shutdowns == 1 and "system_legacy" in env.session.store.images


def test_adopted_under_another_name_it_gets_a_new_identity(two_disks):
    xml, _, _ = two_disks
    env = scripted_env()
    env.open_domain = Domain(xml)
    adoption.adopt(env, "legacy", name="fresh")
    stored = domainxml.parse(env.session.store.images["system_fresh"].metadata[vmschema.XML])
    assert stored.findtext("name") == "fresh" and stored.findtext("uuid") != UUID
    assert stored.find("devices/interface/mac").get("address") != "52:54:00:aa:bb:cc"


def test_a_disk_read_as_another_format_than_it_holds_is_refused(tmp_path):
    import subprocess

    path = tmp_path / "disk.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(path), "1M"], check=True)
    env = scripted_env()
    env.open_domain = Domain(domain_xml(file_disk(path, "vda", fmt="raw")))
    assert code_of(adoption.adopt, env, "legacy") == "INVALID_DISK_IMAGE"
    assert not env.session.store.images


def test_rbd_disks_are_copied_from_the_vms_pool_only_and_never_while_open(tmp_path):
    env = scripted_env()
    session = env.session
    session.rbd.RBD().create(session.ioctx, "legacydisk", 1 << 20)

    def rbd_disk(name):
        return (f"<disk type='network' device='disk'><driver name='qemu' type='raw'/>"
                f"<source protocol='rbd' name='{name}'/><target dev='vda' bus='virtio'/></disk>")
    env.open_domain = Domain(domain_xml(rbd_disk("elsewhere/legacydisk")))
    assert code_of(adoption.adopt, env, "legacy") == "INVALID_DISK_IMAGE"
    env.open_domain = Domain(domain_xml(rbd_disk("rbd/legacydisk")))
    session.store.images["legacydisk"].watchers.append({"addr": "192.0.2.7:0/1"})
    assert code_of(adoption.adopt, env, "legacy") == "VM_RUNNING", "someone has it open"
    session.store.images["legacydisk"].watchers.clear()
    made = adoption.adopt(env, "legacy")
    assert made["disks"] == ["system_legacy"] and "legacydisk" in session.store.images, "the source stays"


def test_a_uefi_domain_brings_its_variables_from_the_host_file(tmp_path):
    system = disk_file(tmp_path, "system.raw")
    vars_file = tmp_path / "legacy_VARS.fd"
    vars_file.write_bytes(b"the guest's boot entries")
    xml = domain_xml(file_disk(system, "vda"),
                     os_extra=f"<loader readonly='yes' type='pflash'>/usr/share/OVMF/OVMF_CODE_4M.fd</loader>"
                              f"<nvram>{vars_file}</nvram>")
    env = scripted_env()
    env.session.device_policy = devpolicy.Policy(nvram_dirs=(str(tmp_path),), source="this test's")
    env.open_domain = Domain(xml)
    made = adoption.adopt(env, "legacy")
    assert made["nvram"] == "nvram_legacy"
    assert env.session.store.images["nvram_legacy"].content == b"the guest's boot entries"
    assert vars_file.read_bytes() == b"the guest's boot entries"

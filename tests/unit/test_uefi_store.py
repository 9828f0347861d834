"""A UEFI guest's variable store in Ceph: the decisions of create, clone, remove, the
definition, the device policy, the firmware choice and the agent's move of a host file,
over the scripted environment (tests/unit/scripted.py, not Ceph) and firmware descriptors
written here. The lab proves the same on real Ceph, libvirt and OVMF
(tests/system/test_uefi.py)."""

import json

import pytest
from lxml import etree
from scripted import BASE_XML, UEFI_BASE_XML, UEFI_TEMPLATE, cut

from rbdvm.helpers.ceph import nvram
from rbdvm.helpers.core import devpolicy, domainxml, vmschema
from rbdvm.helpers.core.errors import RbdvmError
from rbdvm.helpers.hypervisor import firmware
from rbdvm.helpers.ops import cloning, creation, removal

pytestmark = [pytest.mark.unit, pytest.mark.requires("python:rados", "python:rbd", "python:libvirt")]


def definition(env, vm):
    return domainxml.parse(env.session.store.images[f"system_{vm}"].metadata[vmschema.XML])


def test_a_uefi_vm_gets_its_store_in_its_group_from_the_template(env, image):
    made = creation.create(env, "vm1", image, UEFI_BASE_XML)
    store = env.session.store
    assert made["nvram"] == "nvram_vm1"
    assert "nvram_vm1" in store.groups["vm1"]["images"]
    assert store.images["nvram_vm1"].content == UEFI_TEMPLATE
    assert store.images["nvram_vm1"].metadata[vmschema.NVRAM_ORIGIN] == "template /scripted/VARS.fd"
    root = definition(env, "vm1")
    assert domainxml.nvram_image_of(root) == "rbd/nvram_vm1"
    assert root.find("os/nvram/source/auth/secret").get("usage") == "client.rbdvm"


def test_a_bios_vm_gets_no_store(env, image):
    assert creation.create(env, "vm1", image, BASE_XML)["nvram"] is None
    assert "nvram_vm1" not in env.session.store.images
    assert definition(env, "vm1").find("os/nvram") is None


@pytest.mark.parametrize("step", ["create:group", "create:nvram", "create:imported", "create:commit"])
def test_a_create_stopped_at_any_step_writes_the_store_once(env, image, monkeypatch, step):
    cut(monkeypatch, step, creation.create, env, "vm1", image, UEFI_BASE_XML)
    written_before = env.session.store.calls.count(("write", "nvram_vm1"))
    creation.create(env, "vm1", image, UEFI_BASE_XML)
    writes = env.session.store.calls.count(("write", "nvram_vm1"))
    assert writes == 1, f"the store was written {writes} times ({written_before} before the re-run)"
    assert domainxml.nvram_image_of(definition(env, "vm1")) == "rbd/nvram_vm1"


def test_a_half_written_store_is_written_again_never_booted_from(env, image, monkeypatch):
    session = env.session
    session.rbd.RBD().create(session.ioctx, "nvram_vm1", 10)     # cut before its marker
    session.store.images["nvram_vm1"].content = b"half"
    assert not nvram.is_complete(session, "vm1")
    assert nvram.ensure_store(session, "vm1", UEFI_TEMPLATE, "template t", in_group=False)
    assert session.store.images["nvram_vm1"].content == UEFI_TEMPLATE
    session.store.images["nvram_vm1"].content = b"the guest's own variables"
    assert not nvram.ensure_store(session, "vm1", UEFI_TEMPLATE, "template t", in_group=False)
    assert session.store.images["nvram_vm1"].content == b"the guest's own variables", "a complete store is kept"


def test_another_tools_image_of_the_store_name_blocks_the_create_and_is_left_alone(env, image):
    session = env.session
    session.rbd.RBD().create(session.ioctx, "nvram_vm1", 4)
    session.store.images["nvram_vm1"].content = b"theirs"
    with pytest.raises(RbdvmError) as exc:
        creation.create(env, "vm1", image, UEFI_BASE_XML)
    assert exc.value.code == "IMAGE_TAKEN"
    assert session.store.images["nvram_vm1"].content == b"theirs"
    assert "system_vm1" not in session.store.images


@pytest.mark.parametrize("full", [False, True], ids=["cow", "full"])
def test_a_clone_gets_its_own_store_from_the_sources(env, image, full):
    creation.create(env, "vm1", image, UEFI_BASE_XML)
    env.session.store.images["nvram_vm1"].content = b"written by the guest"
    made = cloning.clone(env, "vm1", "vm2", full=full)
    store = env.session.store
    assert made["nvram"] == "nvram_vm2"
    assert store.images["nvram_vm2"].content == b"written by the guest"
    assert "nvram_vm2" in store.groups["vm2"]["images"]
    assert domainxml.nvram_image_of(definition(env, "vm2")) == "rbd/nvram_vm2"
    if not full:
        assert store.images["nvram_vm2"].parent == ("nvram_vm1", "rbdvm-clone-vm2")


def test_remove_takes_the_store_too(env, image):
    creation.create(env, "vm1", image, UEFI_BASE_XML)
    removal.remove(env, "vm1")
    assert not [i for i in env.session.store.images if i.endswith("vm1")]


# ------------------------------------------------------------------ device policy
def _check(xml, vm="vm1"):
    return devpolicy.problems(domainxml.parse(xml), vm=vm, pool="rbd", namespace="", policy=devpolicy.Policy())


def _with_nvram(source_name, vm="vm1"):
    root = domainxml.parse(UEFI_BASE_XML)
    root.find("name").text = vm
    domainxml.set_nvram(root, "x", pool="rbd", namespace="", monitors=[("10.0.0.1", 6789)], client_id="c")
    root.find("os/nvram/source").set("name", source_name)
    return domainxml.to_string(root)


def test_the_policy_admits_the_vms_own_store_and_nothing_else():
    assert _check(_with_nvram("rbd/nvram_vm1")) == []
    for other in ("rbd/nvram_vm2", "rbd/system_vm1", "other/nvram_vm1", "rbd/nvram_vm1@snap"):
        problems = _check(_with_nvram(other))
        assert problems and "variable store" in problems[0], other


# ------------------------------------------------------------------ firmware choice
def _descriptor(tmp_path, name, code, template, features=(), machines=("pc-q35-*",)):
    d = {"interface-types": ["uefi"], "features": list(features),
         "mapping": {"device": "flash", "executable": {"filename": code, "format": "raw"},
                     "nvram-template": {"filename": template, "format": "raw"}},
         "targets": [{"architecture": "x86_64", "machines": list(machines)}]}
    (tmp_path / name).write_text(json.dumps(d))


def _request(xml):
    return domainxml.firmware_request(domainxml.parse(xml))


def test_the_firmware_is_chosen_as_libvirt_chooses_it(tmp_path):
    _descriptor(tmp_path, "40-secure-enrolled.json", "/fw/ms.fd", "/fw/VARS.ms.fd",
                ["secure-boot", "enrolled-keys", "requires-smm"])
    _descriptor(tmp_path, "60-plain.json", "/fw/CODE.fd", "/fw/VARS.fd")
    _descriptor(tmp_path, "70-other-machine.json", "/fw/i440.fd", "/fw/i440VARS.fd", machines=("pc-i440fx-*",))
    dirs = (str(tmp_path),)
    off = _request(UEFI_BASE_XML)
    on = _request(UEFI_BASE_XML.replace("enabled='no'", "enabled='yes'"))
    unsaid = _request(UEFI_BASE_XML.replace("<firmware><feature enabled='no' name='secure-boot'/></firmware>", ""))
    assert firmware.template_for(off, dirs).template == "/fw/VARS.fd"
    assert firmware.template_for(on, dirs).template == "/fw/VARS.ms.fd"
    assert firmware.template_for(unsaid, dirs).template == "/fw/VARS.ms.fd", "first by file name"
    pc = _request(UEFI_BASE_XML.replace("machine='q35'", "machine='pc'"))
    assert firmware.template_for(pc, dirs).template == "/fw/i440VARS.fd"
    with pytest.raises(RbdvmError) as exc:
        firmware.template_for(_request(UEFI_BASE_XML.replace("q35", "virt")), dirs)
    assert exc.value.code == "FIRMWARE_NOT_FOUND"


@pytest.mark.requires("/usr/share/OVMF/OVMF_VARS_4M.fd")
def test_this_hosts_ovmf_gives_the_templates_libvirt_uses():
    """What libvirt 9.0 chose on the lab for SEAPATH's guest (measured: virsh dumpxml)."""
    assert firmware.template_for(_request(UEFI_BASE_XML)).template == "/usr/share/OVMF/OVMF_VARS_4M.fd"
    secure = _request(UEFI_BASE_XML.replace("enabled='no'", "enabled='yes'"))
    assert firmware.template_for(secure).template == "/usr/share/OVMF/OVMF_VARS_4M.ms.fd"


# ------------------------------------------------------------------ the agent's move
def _legacy(vm="vm1", nvram_el=""):
    root = domainxml.parse(UEFI_BASE_XML)
    root.find("name").text = vm
    if nvram_el:
        root.find("os").append(etree.fromstring(nvram_el))
    disk = etree.SubElement(root.find("devices"), "disk", type="network", device="disk")
    src = etree.SubElement(disk, "source", protocol="rbd", name="rbd/system_vm1")
    etree.SubElement(src, "host", name="10.77.0.10", port="6789")
    return root


def test_the_agent_moves_a_host_file_store_into_ceph_once(env, tmp_path):
    from rbdvm.ocf import uefi

    session = env.session
    session.rbd.RBD().group_create(session.ioctx, "vm1")
    local = tmp_path / "vm1_VARS.fd"
    local.write_bytes(b"this node's variables")
    xml = uefi.in_ceph(session, "vm1", _legacy(nvram_el=f"<nvram>{local}</nvram>"))
    root = domainxml.parse(xml)
    assert domainxml.nvram_image_of(root) == "rbd/nvram_vm1"
    assert [h.get("name") for h in root.findall("os/nvram/source/host")] == ["10.77.0.10"]
    assert session.store.images["nvram_vm1"].content == b"this node's variables"
    assert "nvram_vm1" in session.store.groups["vm1"]["images"]
    local.write_bytes(b"another node's stale copy")
    uefi.in_ceph(session, "vm1", _legacy(nvram_el=f"<nvram>{local}</nvram>"))
    assert session.store.images["nvram_vm1"].content == b"this node's variables", "never overwritten"
    assert local.read_bytes() == b"another node's stale copy", "the host file is left alone"
    assert uefi.in_ceph(session, "vm1", domainxml.parse(xml)) is None, "a store in Ceph: nothing to do"


def test_a_symlinked_host_store_is_not_followed(env, tmp_path, monkeypatch):
    from rbdvm.ocf import uefi

    session = env.session
    session.rbd.RBD().group_create(session.ioctx, "vm1")
    secret = tmp_path / "secret"
    secret.write_bytes(b"root's secret")
    (tmp_path / "vm1_VARS.fd").symlink_to(secret)
    monkeypatch.setattr(firmware, "variables_for", lambda request: ("template t", UEFI_TEMPLATE))
    uefi.in_ceph(session, "vm1", _legacy(nvram_el=f"<nvram>{tmp_path / 'vm1_VARS.fd'}</nvram>"))
    assert session.store.images["nvram_vm1"].content == UEFI_TEMPLATE


def test_the_split_brain_guard_counts_the_store_as_a_disk(env, image):
    """A crashed node's QEMU holds the store open like a disk: the guard waits for (and
    releases) its clients too."""
    from rbdvm.ocf import guard

    creation.create(env, "vm1", image, UEFI_BASE_XML)
    disks = guard.rbd_disks(definition(env, "vm1"))
    assert [(d.image, d.writable) for d in disks] == [("nvram_vm1", True), ("system_vm1", True)]

"""Unit tests of the pure code in helpers/ (no Ceph, no Pacemaker, no libvirt: the inputs
are built here, byte for byte where the code parses bytes)."""

import ast
import struct
from pathlib import Path

import pytest

from rbdvm.cli import hints as cli_hints
from rbdvm.helpers.ceph import monitors, rbdbulk
from rbdvm.helpers.core import domainxml, hints, names, vmschema, xmlsafe
from rbdvm.helpers.core.errors import ClusterUnavailable, Conflict, UsageError
from rbdvm.ocf import hints as agent_hints

pytestmark = [pytest.mark.unit, pytest.mark.requires("python:rados", "python:rbd")]
REPO = Path(__file__).resolve().parents[2]
BASE = "<domain type='kvm'><name>x</name><memory>1024</memory><devices>" \
       "<interface type='network'><source network='default'/></interface></devices></domain>"


# ------------------------------------------------------------------ names
@pytest.mark.parametrize("name,ok", [("vm1", True), ("VM", True), ("1vm", True), ("", False),
                                     ("vm-1", False), ("vm_1", False), ("vmé", False), ("a b", False),
                                     ("vm\n", False), (None, False), ("x" * 200, True)])
def test_the_name_rule(name, ok):
    assert names.is_name(name) is ok


def test_a_new_vm_name_must_also_be_a_resource_id():
    names.check_new_vm_name("vm1")
    with pytest.raises(UsageError, match="letter"):
        names.check_new_vm_name("1vm")


@pytest.mark.parametrize("image,ok", [("system_vm", True), ("data_vm_0", True), ("data_vm_12", True),
                                      ("data_vm_x", False), ("data_vm1_0", False), ("system_vm1", False),
                                      ("data_vm_", False), ("other", False)])
def test_a_vms_own_disk_names(image, ok):
    assert names.is_vm_disk("vm", image) is ok


# ------------------------------------------------------------------ xmlsafe
def test_xml_entities_and_doctypes_are_refused():
    with pytest.raises(UsageError, match="DOCTYPE"):
        xmlsafe.parse('<!DOCTYPE d [<!ENTITY e SYSTEM "file:///etc/passwd">]><domain>&e;</domain>', "x")
    with pytest.raises(UsageError, match="not valid XML"):
        xmlsafe.parse("<domain>", "x")
    with pytest.raises(ClusterUnavailable, match="crm_mon"):
        xmlsafe.parse("not xml", "crm_mon's output", ClusterUnavailable)


def test_xml_files_are_read_whole_not_by_name(tmp_path):
    f = tmp_path / "d.xml"
    f.write_text(BASE)
    assert xmlsafe.parse_file(str(f), "d").findtext("name") == "x"


# ------------------------------------------------------------------ domainxml
def test_build_keeps_identity_adds_one_rbd_disk_per_image_in_order():
    once = domainxml.build(BASE, vm="vm1", images=["system_vm1", "data_vm1_0"], pool="rbd", namespace="ns",
                           monitors=[("10.0.0.1", 6789)], client_id="rbdvm")
    root = domainxml.parse(once)
    assert root.findtext("name") == "vm1" and root.findtext("uuid")
    disks = root.findall("devices/disk")
    assert [d.find("source").get("name") for d in disks] == ["rbd/ns/system_vm1", "rbd/ns/data_vm1_0"]
    assert [d.find("target").get("dev") for d in disks] == ["vda", "vdb"]
    assert disks[0].find("auth/secret").get("usage") == "client.rbdvm"
    mac = root.find("devices/interface/mac").get("address")
    assert mac.startswith("52:54:00:")
    # built again from its own result (a re-run): same UUID and MAC
    again = domainxml.parse(domainxml.build(domainxml.to_string(_without_disks(root)), vm="vm1", images=["s"],
                                            pool="rbd", namespace="", monitors=[], client_id="rbdvm"))
    assert again.findtext("uuid") == root.findtext("uuid")
    assert again.find("devices/interface/mac").get("address") == mac


def _without_disks(root):
    for d in root.findall("devices/disk"):
        d.getparent().remove(d)
    return root


def test_a_clone_gets_a_new_identity_and_disk_names_skip_taken_ones():
    base = BASE.replace("<devices>", "<uuid>11111111-1111-1111-1111-111111111111</uuid><devices>"
                        "<disk type='file'><target dev='vda'/></disk>")
    root = domainxml.parse(domainxml.build(base, vm="c", images=["system_c"], pool="p", namespace="",
                                           monitors=[], client_id="u", bus="scsi", new_identity=True))
    assert root.findtext("uuid") != "11111111-1111-1111-1111-111111111111"
    assert root.findall("devices/disk")[-1].find("target").get("dev") == "sda"
    with pytest.raises(UsageError, match="bus"):
        domainxml.build(BASE, vm="c", images=[], pool="p", namespace="", monitors=[], client_id="u", bus="floppy")


def test_only_a_domain_is_a_definition():
    with pytest.raises(UsageError, match="not a libvirt domain"):
        domainxml.parse("<network/>")
    assert domainxml.stored_uuid("garbage") is None


# ------------------------------------------------------------------ rbdbulk's parsers of librbd's bytes
def _string(text: str) -> bytes:
    return struct.pack("<I", len(text)) + text.encode()


def test_group_reference_is_decoded_and_anything_odd_is_none():
    payload = struct.pack("<q", 3) + _string("abc123")
    ref = struct.pack("<BBI", 1, 1, len(payload)) + payload
    assert rbdbulk.group_id({rbdbulk.GROUP_REF_KEY: ref}) == "abc123"
    assert rbdbulk.group_id({}) is None
    assert rbdbulk.group_id({rbdbulk.GROUP_REF_KEY: ref[:-2]}) is None       # truncated
    assert rbdbulk.group_id({rbdbulk.GROUP_REF_KEY: b"\x01"}) is None


def test_image_metadata_from_a_header():
    header = {"metadata_vm_name": b"vm1", "metadata_x": b"\xff", "features": b"\0"}
    assert rbdbulk.metadata(header) == {"vm_name": "vm1", "x": "\ufffd"}


# ------------------------------------------------------------------ monitors
@pytest.mark.parametrize("conf,hosts", [
    ("10.0.0.1", [("10.0.0.1", 6789)]),
    ("10.0.0.1:6790, 10.0.0.2", [("10.0.0.1", 6790), ("10.0.0.2", 6789)]),
    ("[v2:10.0.0.1:3300,v1:10.0.0.1:6789] [v2:10.0.0.2:3300]", [("10.0.0.1", 6789), ("10.0.0.2", 3300)]),
    ("", []),
])
def test_monitor_addresses_from_mon_host(conf, hosts):
    assert monitors._from_conf(conf) == hosts


# ------------------------------------------------------------------ vmschema
def test_vm_config_defaults_and_decoding():
    c = vmschema.VmConfig.of({})
    assert (c.disk_bus, c.live_migration, c.stop_timeout, c.migrate_to_timeout) == ("virtio", False, 90, 120)
    c = vmschema.VmConfig.of({"_live_migration": "true", "_stop_timeout": "30", "_priority": "5",
                              "_colocations": '[{"with": "b", "strong": true}, {"nope": 1}, "x"]'})
    assert (c.live_migration, c.stop_timeout, c.priority) == (True, 30, 5)
    assert c.colocations == [{"with": "b", "strong": True}]


@pytest.mark.parametrize("md,key", [({"_stop_timeout": "soon"}, "_stop_timeout"),
                                    ({"_colocations": "{"}, "_colocations"),
                                    ({"_pacemaker_meta": "[1"}, "_pacemaker_meta")])
def test_a_bad_stored_value_is_refused_naming_its_key(md, key):
    with pytest.raises(UsageError, match=key):
        vmschema.VmConfig.of(md)


def test_user_keys_cannot_be_rbdvms():
    for key in ("vm_name", "xml", "_base_xml"):
        with pytest.raises(UsageError):
            vmschema.check_user_key(key)
    assert vmschema.is_user_key("owner") and not vmschema.is_user_key("_state")


# ------------------------------------------------------------------ hints
def test_each_front_end_words_a_hint_its_own_way():
    exc = Conflict("VM already exists", "VM a exists", hint=hints.Hint(hints.REPLACE_VM))
    assert "--force" in exc.message_for(cli_hints.TABLE)
    assert "--" not in exc.message and "replaced" in exc.message
    conf = ClusterUnavailable("cannot read the Ceph configuration /x", hint=hints.Hint(hints.CEPH_CONF))
    assert "--conf" in conf.message_for(cli_hints.TABLE)
    assert "ceph_conf parameter" in conf.message_for(agent_hints.TABLE)
    assert set(cli_hints.TABLE) == set(hints.NEUTRAL), "the CLI words every hint"


def test_no_helper_message_names_a_cli_flag():
    """String constants in helpers/ that look like a flag (' --x', '--x ...'), outside the
    argument lists of the commands rbdvm runs, are the hints' job."""
    found = []
    for path in (REPO / "helpers").rglob("*.py"):
        tree = ast.parse(path.read_text())
        argv_strings = {id(n) for call in ast.walk(tree) if isinstance(call, (ast.List, ast.Tuple))
                        for n in ast.walk(call) if isinstance(n, ast.Constant)}
        argv_strings |= {id(n.value) for n in ast.walk(tree) if isinstance(n, ast.Expr)}   # docstrings
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in argv_strings:
                if " --" in node.value or (node.value.startswith("--") and " " in node.value):
                    found.append(f"{path.relative_to(REPO)}:{node.lineno}: {node.value!r}")
    assert not found, "\n".join(found)

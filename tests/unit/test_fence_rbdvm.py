"""fence_rbdvm's option parsing and metadata, and the self-check's QEMU selection (pure
logic: no Ceph, no Pacemaker; the lab tests in tests/system/test_storage_fencing.py run it)."""

import pytest

from rbdvm.helpers.core import xmlsafe
from rbdvm.ocf import fence_rbdvm as f

pytestmark = pytest.mark.unit


def test_options_from_stdin_as_pacemaker_fenced_passes_them():
    opts = f.parse([], "action=off\nport=node2\n# comment\nceph_id=fencer\nunknown=x\n")
    assert (opts["action"], opts["plug"], opts["ceph_id"], opts["ceph_conf"], opts["pool"]) == \
        ("off", "node2", "fencer", "/etc/ceph/ceph.conf", "rbd")
    assert f.parse([], "nodename=node1\n")["plug"] == "node1"
    assert f.parse([], "")["ceph_id"] == "rbdvm-fence", "its own Ceph user by default"


def test_options_from_the_command_line():
    assert f.parse(["-o", "status", "-n", "node1"], "")["plug"] == "node1"
    assert f.parse(["--action=on", "--plug=node2"], "")["action"] == "on"
    with pytest.raises(ValueError):
        f.parse(["--bogus"], "")


def test_node_addresses_from_the_option_or_corosync_and_their_whole_host_entries(tmp_path):
    opts = f.parse([], "node_addresses=node1=10.0.0.1,10.0.1.1;node2=10.0.0.2\n")
    assert f.node_addresses(opts) == {"node1": ["10.0.0.1", "10.0.1.1"], "node2": ["10.0.0.2"]}
    conf = tmp_path / "corosync.conf"
    conf.write_text("nodelist {\n node {\n  ring0_addr: 10.1.0.1\n  ring1_addr: 10.2.0.1\n  name: a\n }\n"
                    " node {\n  ring0_addr: 10.1.0.2\n  name: b\n }\n}\n")
    assert f.node_addresses(f.parse([], ""), str(conf)) == {"a": ["10.1.0.1", "10.2.0.1"], "b": ["10.1.0.2"]}
    assert f.entries_of(["10.0.0.1"]) == ["10.0.0.1:0/0"]


def test_metadata_declares_unfencing_every_option_and_the_old_names():
    root = xmlsafe.parse(f.metadata_xml().encode(), "metadata")
    assert root.get("name") == "fence_rbdvm"
    names = {p.get("name") for p in root.iter("parameter")}
    assert names == {o.name for o in f.OPTIONS} | {"port", "nodename"}
    assert root.find("parameters/parameter[@name='port']").get("deprecated") == "1"
    on = root.find("actions/action[@name='on']")
    assert (on.get("on_target"), on.get("automatic")) == ("1", "1")
    assert {a.get("name") for a in root.iter("action")} == set(f.ACTIONS)

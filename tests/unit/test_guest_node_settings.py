"""A VM as a Pacemaker guest node (the remote_* settings, as SEAPATH's vm_manager sets the
remote-node meta attributes) over the scripted environment: what the CIB gets, what is
refused before anything is written, and that removing the guest node takes every attribute
of it away. The lab runs a guest node for real (tests/system/test_guest_node.py)."""

import pytest
from scripted import BASE_XML, disk_file, scripted_env

from rbdvm.helpers.core import vmschema
from rbdvm.helpers.core.errors import RbdvmError
from rbdvm.helpers.ops import configure, creation, lifecycle
from rbdvm.helpers.pacemaker import cib

pytestmark = [pytest.mark.unit, pytest.mark.requires("python:rados", "python:rbd", "python:libvirt")]
GUEST = {"remote_node": "guest1", "remote_addr": "192.0.2.10", "remote_port": 3121, "remote_connect_timeout": "2min"}


@pytest.fixture
def env(tmp_path):
    env = scripted_env()
    creation.create(env, "vm1", disk_file(tmp_path), BASE_XML)
    return env


def meta(env, vm="vm1") -> dict:
    return cib.pairs(env.pacemaker.section("resources").find(f"primitive[@id='{vm}']"), "meta_attributes")


def code_of(fn, *args, **kw) -> str:
    with pytest.raises(RbdvmError) as exc:
        fn(*args, **kw)
    return exc.value.code


def test_the_guest_node_is_the_resources_remote_meta_attributes_signed_with_the_settings(env):
    configure.set_settings(env, "vm1", GUEST)
    lifecycle.enable(env, "vm1")
    assert {k: v for k, v in meta(env).items() if k.startswith("remote")} == {
        "remote-node": "guest1", "remote-addr": "192.0.2.10", "remote-port": "3121", "remote-connect-timeout": "120s"}
    stored = env.session.store.images["system_vm1"].metadata
    assert stored["_remote_node"] == "guest1" and vmschema.SETTINGS_SIG in stored


def test_an_empty_guest_node_name_removes_the_guest_node_and_everything_about_it(env):
    configure.set_settings(env, "vm1", GUEST)
    lifecycle.enable(env, "vm1")
    done = configure.set_settings(env, "vm1", {"remote_node": ""})
    assert done["restarted"] is False, "the VM keeps running"
    assert not [k for k in meta(env) if k.startswith("remote")]
    assert not [k for k in env.session.store.images["system_vm1"].metadata if k.startswith("_remote")]


@pytest.mark.parametrize("changes, code", [
    ({"remote_node": "vm1"}, "INVALID_SETTING"),               # its own resource's name
    ({"remote_node": "node2"}, "INVALID_SETTING"),             # a cluster node's
    ({"remote_node": "guest one"}, "INVALID_SETTING"),
    ({"remote_node": "g1", "remote_addr": "10.0.0.1;x"}, "INVALID_SETTING"),
    ({"remote_node": "g1", "remote_port": 70000}, "INVALID_SETTING"),
    ({"remote_addr": "10.0.0.1"}, "INVALID_SETTING"),          # no guest node to describe
    ({"remote_node": "g1", "remote_connect_timeout": "soon"}, "INVALID_SETTING"),
])
def test_what_pacemaker_would_refuse_is_refused_before_anything_is_written(env, changes, code):
    lifecycle.enable(env, "vm1")
    before = dict(env.session.store.images["system_vm1"].metadata)
    env.pacemaker.calls.clear()
    assert code_of(configure.set_settings, env, "vm1", changes) == code
    assert env.session.store.images["system_vm1"].metadata == before and env.pacemaker.writes() == []


def test_the_guest_nodes_attributes_are_not_for_pacemaker_meta(env):
    assert code_of(configure.set_settings, env, "vm1", {"pacemaker_meta": {"remote-node": "g1"}}) == "INVALID_SETTING"


def test_a_guest_nodes_vm_migrating_is_migrating_not_failed():
    """While Pacemaker moves a guest node's VM, it stops the guest node's connection first, and
    crm_mon shows the VM role Migrating with failed="true" (its guest node is offline with a
    resource still active there). Read as Failed, `rbdvm migrate` stopped waiting, cleared its
    move, and the aborted transition made Pacemaker recover the VM by a restart (seen on the
    lab: the guest rebooted)."""
    from lxml import etree

    from rbdvm.helpers.pacemaker import crm_mon

    status = etree.fromstring(
        "<crm_mon><nodes><node name='g1' id='g1' online='false' type='remote' id_as_resource='vm1'/></nodes>"
        "<resources><resource id='vm1' resource_agent='ocf:rbdvm:VirtualDomain' role='Migrating' "
        "target_role='Started' active='true' blocked='false' managed='true' failed='true'>"
        "<node name='node1'/></resource></resources></crm_mon>")
    assert crm_mon.vm_status(status, "vm1", True)["status"] == "Migrating"


@pytest.mark.parametrize("role, failure, status", [
    ("Started", False, "Started"),      # the connection stopped, the migration not begun yet
    ("Migrating", False, "Migrating"),
    ("Started", True, "Failed"),        # a failure of the VM itself is on record
])
def test_a_guest_nodes_offline_flag_is_not_a_failure_of_its_vm(role, failure, status):
    from lxml import etree

    from rbdvm.helpers.pacemaker import crm_mon

    failures = ("<failures><failure op_key='vm1_monitor_10000' task='monitor' node='node1' exitstatus='not running' "
                "exitreason='gone' call='9'/></failures>") if failure else ""
    xml = etree.fromstring(
        "<crm_mon><nodes><node name='g1' id='g1' online='false' type='remote' id_as_resource='vm1'/></nodes>"
        f"<resources><resource id='vm1' resource_agent='ocf:rbdvm:VirtualDomain' role='{role}' "
        "target_role='Started' active='true' blocked='false' managed='true' failed='true'>"
        f"<node name='node1'/></resource></resources>{failures}</crm_mon>")
    assert crm_mon.vm_status(xml, "vm1", True)["status"] == status

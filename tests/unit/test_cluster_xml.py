"""Pure logic of the cluster commands: the CIB XML rbdvm writes, and how crm_mon's XML is
read into a VM status. No Pacemaker here: the crm_mon documents are written by hand in the
shapes crm_mon 2.1 prints in the lab (the lab tests check the real thing)."""

import json

import pytest
from lxml import etree

from rbdvm.helpers.core import vmschema
from rbdvm.helpers.core.errors import UsageError
from rbdvm.helpers.core.settings import CephTarget
from rbdvm.helpers.core.vmschema import VmConfig
from rbdvm.helpers.pacemaker import cib, crm_mon

pytestmark = pytest.mark.unit


def attrs(e):
    return {c.get("id"): dict(c.attrib) for c in e.iter()}


def test_pin_and_prefer_are_one_shape_so_a_merge_switches_them():
    pin = cib.placement("vm1", VmConfig.of({"_pinned_host": "node2"}))
    pref = cib.placement("vm1", VmConfig.of({"_preferred_host": "node1"}))
    assert [e.get("id") for e in pin.iter()] == [e.get("id") for e in pref.iter()] == \
        ["rbdvm-vm1-placement", "rbdvm-vm1-placement-rule", "rbdvm-vm1-placement-expr"]
    a, b = attrs(pin), attrs(pref)
    assert a["rbdvm-vm1-placement-rule"]["score"] == "-INFINITY"
    assert a["rbdvm-vm1-placement-expr"] == {"id": "rbdvm-vm1-placement-expr", "attribute": "#uname",
                                             "operation": "ne", "value": "node2"}
    assert b["rbdvm-vm1-placement-rule"]["score"] == cib.PREFERRED_SCORE
    assert (b["rbdvm-vm1-placement-expr"]["operation"], b["rbdvm-vm1-placement-expr"]["value"]) == ("eq", "node1")
    assert cib.placement("vm1", VmConfig()) is None


@pytest.mark.parametrize("strong,anti,score", [(False, False, "1000"), (True, False, "INFINITY"),
                                               (False, True, "-1000"), (True, True, "-INFINITY")])
def test_colocation_scores(strong, anti, score):
    c = cib.colocation("a", {"with": "b", "strong": strong, "anti": anti})
    assert dict(c.attrib) == {"id": "rbdvm-a-colo-b", "rsc": "a", "with-rsc": "b", "score": score}


def test_constraints_name_only_enabled_vms():
    md = {"_colocations": json.dumps([{"with": "b", "anti": True, "strong": True},
                                      {"with": "c", "anti": False, "strong": False}])}
    ids = [c.get("id") for c in cib.constraints("a", VmConfig.of(md), enabled=["a", "c"],
                                                    inbound={"d": {"with": "a", "anti": True}})]
    assert ids == ["rbdvm-a-avoid", "rbdvm-a-colo-c", "rbdvm-d-colo-a"]


def test_primitive_from_metadata():
    md = {"_live_migration": "true", "_priority": "5", "_stop_timeout": "30",
          "_pacemaker_params": json.dumps({"migration_transport": "tcp"})}
    p = cib.primitive("vm1", CephTarget(conf="/etc/ceph/ceph.conf", client_id="rbdvm", pool="vms",
                                            namespace=""), VmConfig.of(md), start=False)
    nv = {n.get("name"): n.get("value") for n in p.iter("nvpair")}
    assert nv == {"vm": "vm1", "pool": "vms", "migration_transport": "tcp", "allow-migrate": "true",
                  "target-role": "Stopped", "priority": "5"}
    assert p.find("operations/op[@name='stop']").get("timeout") == "30s"


def crm_mon_xml(resource: str = "", failures: str = "") -> etree._Element:
    return etree.fromstring(f"""<pacemaker-result api-version="2.30" request="crm_mon">
      <nodes><node name="node1" online="true" standby="false"/><node name="node2" online="true" standby="true"/></nodes>
      <resources>{resource}</resources><failures>{failures}</failures></pacemaker-result>""")


def rsc(role, target="Started", active="true", node="node1", failed="false"):
    where = f'<node name="{node}" id="1" cached="true"/>' if node else ""
    return (f'<resource id="vm1" resource_agent="ocf:rbdvm:VirtualDomain" role="{role}" target_role="{target}" '
            f'active="{active}" failed="{failed}" blocked="false">{where}</resource>')


@pytest.mark.parametrize("resource,status,node", [
    (rsc("Started"), "Started", "node1"),
    (rsc("Starting"), "Starting", "node1"),
    (rsc("Started", target="Stopped"), "Stopping", "node1"),
    (rsc("Stopped", target="Stopped", active="false", node=None), "Stopped", None),
    (rsc("Stopped", active="false", node=None), "Stopped", None),       # cannot be placed
    (rsc("Started", failed="true"), "Failed", "node1"),
])
def test_status_from_crm_mon(resource, status, node):
    st = crm_mon.vm_status(crm_mon_xml(resource), "vm1", True)
    assert (st["status"], st["node"]) == (status, node)


def test_status_not_placed_says_why_and_failed_start_says_the_agent_reason():
    st = crm_mon.vm_status(crm_mon_xml(rsc("Stopped", active="false", node=None)), "vm1", True)
    assert st["reason"] == crm_mon.NOT_PLACED and st["target"] == "Started"
    failed = '<failure op_key="vm1_start_0" node="node1" exitstatus="error" exitreason="no emulator" task="start"/>'
    st = crm_mon.vm_status(crm_mon_xml(rsc("Stopped", active="false", node=None), failed), "vm1", True)
    assert (st["status"], st["reason"]) == ("Failed", "no emulator")


def test_status_without_resource():
    assert crm_mon.vm_status(crm_mon_xml(), "vm1", True)["status"] == "Disabled"
    assert crm_mon.vm_status(crm_mon_xml(), "vm1", False)["status"] == "Undefined"
    assert crm_mon.vm_status(None, "vm1", True)["status"] == "Disabled"


def test_enabled_vms_are_the_rbdvm_resources():
    x = crm_mon_xml(rsc("Started") + '<resource id="fence-node1" resource_agent="stonith:fence_x"/>')
    assert crm_mon.enabled_vms(x) == ["vm1"]


def test_another_resources_failures_are_not_the_vms():
    """A resource named `vm1_x` (not a VM: VM names have no '_') had its failures counted
    as VM vm1's: its op keys start with "vm1_"."""
    other = ('<failure op_key="vm1_x_monitor_10000" node="node1" exitstatus="error" exitreason="not mine" '
             'task="monitor" call="7"/>')
    mine = ('<failure op_key="vm1_migrate_to_0" node="node1" exitstatus="error" exitreason="" '
            'task="migrate_to" call="9"/>')
    st = crm_mon.vm_status(crm_mon_xml(rsc("Started"), other), "vm1", True)
    assert (st["status"], st["reason"]) == ("Started", None)
    assert crm_mon.failures(crm_mon_xml(rsc("Started"), other + mine), "vm1") == [
        {"task": "migrate_to", "node": "node1", "call": "9", "status": "error", "reason": ""}]


@pytest.mark.parametrize("value,expected", [
    ("node1", [("node1", 1)]),
    ("node1,node2,node3", [("node1", 3), ("node2", 2), ("node3", 1)]),
    ("node2:1, node1:7", [("node1", 7), ("node2", 1)]),
    ("n-1.lab:2,n_2:2", [("n-1.lab", 2), ("n_2", 2)]),
])
def test_preferred_hosts_are_an_order_or_weights(value, expected):
    assert vmschema.preferred_hosts(value) == expected


@pytest.mark.parametrize("value,why", [
    ("node1,", "empty entry"), ("node1:2,node2", "every node or to none"), ("node1:0", "from 1 to 999"),
    ("node1:1000", "from 1 to 999"), ("node1,node1", "named twice"), ("no de", "not a node name"),
    ("node1:x", "not a whole number"),
])
def test_a_bad_preferred_host_list_is_refused_saying_why(value, why):
    with pytest.raises(UsageError, match=why) as exc:
        vmschema.encode({"preferred_host": value})
    assert exc.value.code == "INVALID_SETTING"


def test_a_node_where_the_agent_found_no_hypervisor_is_known_from_pacemakers_history():
    """The observer's probe answer ("not installed", rc 5) for an rbdvm resource, as crm_mon
    2.1 keeps it in the node history (seen on the lab); another agent's rc 5 says nothing."""
    status = etree.fromstring(
        '<crm_mon><nodes><node name="node1" online="true"/><node name="node3" online="true"/></nodes>'
        '<resources><resource id="vm1" resource_agent="ocf:rbdvm:VirtualDomain" role="Started" active="true">'
        '<node name="node1"/></resource><resource id="web" resource_agent="ocf:heartbeat:apache"/></resources>'
        '<node_history><node name="node3">'
        '<resource_history id="vm1"><operation_history call="9" task="probe" rc="5" rc_text="not installed"/>'
        '</resource_history></node><node name="node1"><resource_history id="web">'
        '<operation_history call="3" task="probe" rc="5" rc_text="not installed"/></resource_history>'
        '<resource_history id="vm1"><operation_history call="4" task="start" rc="0"/></resource_history>'
        '</node></node_history></crm_mon>')
    assert crm_mon.without_hypervisor(status) == ["node3"]
    crm_mon.check_hypervisor(status, "node1")
    with pytest.raises(UsageError) as exc:
        crm_mon.check_hypervisor(status, "node3")
    assert exc.value.code == "NOT_A_HYPERVISOR"

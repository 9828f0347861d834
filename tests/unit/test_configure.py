"""`rbdvm set`'s pure parts: how changes merge into stored settings, which resource changes
restart a running VM, and the identity a rebuilt definition keeps (no Ceph, no Pacemaker)."""

import pytest
from lxml import etree

from rbdvm.helpers.core import domainxml, vmschema
from rbdvm.helpers.core.errors import UsageError
from rbdvm.helpers.core.settings import CephTarget
from rbdvm.helpers.ops.configure import merged
from rbdvm.helpers.pacemaker import cib

pytestmark = [pytest.mark.unit, pytest.mark.requires("python:rados", "python:rbd", "python:libvirt")]

STORED = vmschema.encode({"live_migration": False, "priority": 5, "preferred_host": "node1",
                          "pacemaker_utilization": {"cpu": "2", "memory": "512"}})


def test_only_the_given_settings_change_and_map_keys_merge_or_go():
    values = merged(STORED, {"live_migration": True, "priority": None,
                             "pacemaker_utilization": {"cpu": "4", "memory": ""}})
    assert values["live_migration"] is True and values["priority"] == 5
    assert values["pacemaker_utilization"] == {"cpu": "4"}
    assert values["preferred_host"] == "node1"


def test_a_pin_replaces_a_preference_and_an_empty_host_removes_it():
    assert merged(STORED, {"pinned_host": "node2"})["preferred_host"] is None
    assert merged(STORED, {"preferred_host": ""})["preferred_host"] is None
    with pytest.raises(UsageError):
        merged(STORED, {"pinned_host": "node2", "preferred_host": "node1"})


def test_a_bad_value_is_refused_with_its_key():
    with pytest.raises(UsageError, match="_priority"):
        vmschema.encode(merged({"_priority": "abc"}, {"live_migration": True}))
    with pytest.raises(UsageError, match="target-role"):
        vmschema.encode(merged(STORED, {"pacemaker_meta": {"target-role": "Started"}}))


def prim(**settings):
    return cib.primitive("vm1", CephTarget(), vmschema.VmConfig.of(vmschema.encode(settings)), start=True)


def test_only_agent_parameters_restart_a_running_resource():
    base = prim(priority=1)
    assert not cib.restart_needed(base, prim(priority=9, live_migration=True, stop_timeout=30,
                                             pacemaker_utilization={"cpu": "2"}))
    assert cib.restart_needed(base, prim(priority=1, migration_downtime=300))
    assert cib.restart_needed(base, prim(priority=1, pacemaker_params={"migration_speed": "100"}))
    assert cib.pairs(base, "meta_attributes")["target-role"] == "Started"


def test_a_patch_changes_only_what_the_settings_decide():
    before = vmschema.VmConfig.of(vmschema.encode({"priority": 1, "pacemaker_utilization": {"tier": "1"}}))
    after = vmschema.VmConfig.of(vmschema.encode({"priority": 2, "stop_timeout": 40}))
    # a resource made with pcs, then measured by the agent
    current = etree.fromstring(
        "<primitive id='vm1' class='ocf' provider='rbdvm' type='VirtualDomain'>"
        "<instance_attributes id='a'><nvpair id='a-vm' name='vm' value='vm1'/>"
        "<nvpair id='a-t' name='migration_transport' value='tcp'/></instance_attributes>"
        "<meta_attributes id='m'><nvpair id='m-p' name='priority' value='1'/>"
        "<nvpair id='m-r' name='target-role' value='Stopped'/></meta_attributes>"
        "<operations><op id='o1' name='stop' interval='0s' timeout='90s'/>"
        "<op id='o2' name='monitor' interval='5s' timeout='30s'/></operations>"
        "<utilization id='u'><nvpair id='u-c' name='cpu' value='1'/><nvpair id='u-t' name='tier' value='1'/>"
        "</utilization></primitive>")
    out = cib.patched(current, before, after)
    assert cib.params(out) == {"vm": "vm1", "migration_transport": "tcp"}, "pcs's parameters stay"
    assert not cib.restart_needed(current, out)
    assert cib.pairs(out, "meta_attributes")["target-role"] == "Stopped"
    meta = {nv.get("name"): nv.get("value") for nv in out.findall("meta_attributes/nvpair")}
    assert meta["priority"] == "2" and meta["allow-migrate"] == "false"
    assert out.find("operations/op[@name='stop']").get("timeout") == "40s"
    assert out.find("operations/op[@name='monitor']").get("interval") == "5s"
    assert {nv.get("name") for nv in out.findall("utilization/nvpair")} == {"cpu"}, "the agent's cpu stays"


BASE = "<domain type='kvm'><name>x</name><memory>1</memory><devices><interface type='network'/></devices></domain>"


def test_a_rebuilt_definition_keeps_uuid_and_macs_unless_the_base_sets_them():
    current = domainxml.build(BASE, vm="vm1", images=["system_vm1"], pool="rbd", namespace="",
                              monitors=[("10.0.0.1", 6789)], client_id="rbdvm")
    old = etree.fromstring(current.encode())
    kept = etree.fromstring(domainxml.keep_identity(BASE, current).encode())
    assert kept.findtext("uuid") == old.findtext("uuid")
    assert kept.find("devices/interface/mac").get("address") == old.find("devices/interface/mac").get("address")
    own = BASE.replace("<name>x</name>", "<name>x</name><uuid>6f1c2a3e-0000-4000-8000-000000000001</uuid>")
    assert etree.fromstring(domainxml.keep_identity(own, current).encode()).findtext("uuid").endswith("0001")

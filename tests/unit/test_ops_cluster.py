"""The cluster operations' decisions over a scripted environment (tests/unit/scripted.py: an
in-memory CIB answering Pacemaker's tools, and the in-memory Ceph model): the CIB each
command writes, in how many changes, and what each refuses before it changes anything. The
lab tests run them on a real Pacemaker cluster (tests/system/test_cluster_*.py,
test_day_two.py) and stay the proof."""

import pytest
from lxml import etree
from scripted import BASE_XML, ScriptedPacemaker, cut, disk_file, scripted_env

from rbdvm.helpers.core.errors import RbdvmError, Untrusted
from rbdvm.helpers.core.settings import CephTarget
from rbdvm.helpers.ops import configure, console, creation, lifecycle, maintenance, placement
from rbdvm.helpers.pacemaker import cib

pytestmark = [pytest.mark.unit, pytest.mark.requires("python:rados", "python:rbd", "python:libvirt")]


@pytest.fixture
def env(tmp_path):
    env = scripted_env()
    creation.create(env, "vm1", disk_file(tmp_path), BASE_XML, settings={"live_migration": True})
    return env


def code_of(fn, *args, **kw) -> str:
    with pytest.raises(RbdvmError) as exc:
        fn(*args, **kw)
    return exc.value.code


def writes(env) -> list:
    return [" ".join(c[:2]) for c in env.pacemaker.writes()]


def primitive(env, vm="vm1"):
    return env.pacemaker.section("resources").find(f"primitive[@id='{vm}']")


def tamper(env, key="_priority", value="99"):
    env.session.store.images["system_vm1"].metadata[key] = value


def test_enable_writes_the_resource_and_its_constraints_in_one_change(env):
    assert lifecycle.enable(env, "vm1")["status"] == "Started"
    assert writes(env) == ["cibadmin --modify"], "one atomic CIB change"
    prim = primitive(env)
    assert (prim.get("class"), prim.get("provider"), prim.get("type")) == ("ocf", "rbdvm", "VirtualDomain")
    assert cib.params(prim)["vm"] == "vm1" and cib.pairs(prim, "meta_attributes")["allow-migrate"] == "true"
    ops = {op.get("name"): op.get("timeout") for op in prim.iter("op")}
    assert ops["stop"] == "90s" and ops["migrate_to"] == "120s"
    drained = env.pacemaker.section("constraints").xpath("rsc_location[@rsc='vm1']//expression/@attribute")
    assert drained == [cib.NO_VMS_ATTRIBUTE], "every VM avoids a drained node"
    assert lifecycle.enable(env, "vm1")["changed"] is False
    assert writes(env) == ["cibadmin --modify"], "enabling an enabled VM writes nothing"


def test_enable_refuses_settings_this_cluster_did_not_sign_and_writes_nothing(env):
    tamper(env)
    with pytest.raises(Untrusted):
        lifecycle.enable(env, "vm1")
    assert writes(env) == [] and primitive(env) is None


def test_disable_stops_then_removes_the_resource_and_its_constraints_at_once(env):
    lifecycle.enable(env, "vm1")
    env.pacemaker.calls.clear()
    assert lifecycle.disable(env, "vm1")["changed"] is True
    assert writes(env) == ["crm_resource --resource", "crm_resource --cleanup", "cibadmin --delete"]
    assert primitive(env) is None
    assert env.pacemaker.section("constraints").xpath("*[@rsc='vm1']") == []


def test_disable_refuses_before_stopping_a_vm_an_operators_constraint_names(env):
    lifecycle.enable(env, "vm1")
    etree.SubElement(env.pacemaker.section("constraints"), "rsc_location", id="theirs", rsc="vm1",
                     node="node2", score="100")
    env.pacemaker.calls.clear()
    assert code_of(lifecycle.disable, env, "vm1") == "CONFLICT"
    assert writes(env) == [], "the VM was not stopped for nothing"


def test_start_stop_and_migrate_refusals(env):
    assert code_of(lifecycle.start, env, "vm1") == "VM_NOT_ENABLED"
    lifecycle.enable(env, "vm1", start=False)
    assert code_of(lifecycle.migrate, env, "vm1", "node2") == "VM_NOT_RUNNING"
    lifecycle.start(env, "vm1")
    assert code_of(lifecycle.migrate, env, "vm1", "node9") == "NOT_A_NODE"
    opened = []

    class Destination:
        """The destination's libvirt after an incoming migration (its completed job)."""

        def __init__(self, uri, vm):
            opened.append((uri, vm))

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            pass

        def completed_job(self):
            return {"downtime": 21, "time_elapsed": 380, "data_processed": 3 << 20, "memory_iteration": 2}

    env.open_domain = Destination
    moved = lifecycle.migrate(env, "vm1", "node2")
    assert (moved["node"], moved["how"]) == ("node2", "live")
    assert writes(env)[-3:] == ["crm_resource --resource", "crm_resource --move", "crm_resource --clear"]
    assert opened == [("qemu://node2/system", "vm1")], "the destination, by the migration's URI"
    assert moved["migration"] == {"downtime_ms": 21, "total_ms": 380, "transferred_bytes": 3 << 20, "iterations": 2}


def test_set_refuses_to_restart_a_running_vm_unless_allowed_and_changes_nothing_then(env):
    lifecycle.enable(env, "vm1")
    before = dict(env.session.store.images["system_vm1"].metadata)
    env.pacemaker.calls.clear()
    assert code_of(configure.set_settings, env, "vm1", {"migration_downtime": 300}) == "RESTART_NEEDED"
    assert env.session.store.images["system_vm1"].metadata == before and writes(env) == []
    done = configure.set_settings(env, "vm1", {"migration_downtime": 300}, restart=True)
    assert done["restarted"] is True and cib.params(primitive(env))["migration_downtime"] == "300"


def test_set_of_a_meta_attribute_needs_no_restart(env):
    lifecycle.enable(env, "vm1")
    done = configure.set_settings(env, "vm1", {"priority": 5})
    assert done["restarted"] is False and cib.pairs(primitive(env), "meta_attributes")["priority"] == "5"


def test_pin_writes_the_placement_and_refuses_an_unknown_node(env):
    lifecycle.enable(env, "vm1")
    assert code_of(placement.pin, env, "vm1", "node9") == "NOT_A_NODE"
    placement.pin(env, "vm1", "node2")
    loc = env.pacemaker.section("constraints").find("rsc_location[@id='rbdvm-vm1-placement']")
    rule = loc.find("rule")
    assert (rule.get("score"), rule.find("expression").get("operation"), rule.find("expression").get("value")) \
        == ("-INFINITY", "ne", "node2"), "never anywhere but node2"
    placement.unpin(env, "vm1")
    assert env.pacemaker.section("constraints").find("rsc_location[@id='rbdvm-vm1-placement']") is None


def test_ordered_preferred_hosts_score_each_node_and_set_replaces_the_whole_rule_set(tmp_path):
    env = scripted_env(pacemaker=ScriptedPacemaker(nodes=("node1", "node2", "node3")))
    creation.create(env, "vm1", disk_file(tmp_path), BASE_XML, settings={"preferred_host": "node3,node1,node2"})
    lifecycle.enable(env, "vm1")

    def rules():
        loc = env.pacemaker.section("constraints").find("rsc_location[@id='rbdvm-vm1-placement']")
        return [(r.find("expression").get("value"), r.get("score")) for r in loc.iter("rule")]
    assert rules() == [("node3", "3000"), ("node1", "2000"), ("node2", "1000")], "first is most preferred"
    configure.set_settings(env, "vm1", {"preferred_host": "node2:5,node1:1"})
    assert rules() == [("node2", "5000"), ("node1", "1000")], "node3's rule is gone, not merged over"
    assert code_of(configure.set_settings, env, "vm1", {"preferred_host": "node2,node9"}) == "NOT_A_NODE"
    placement.prefer(env, "vm1", "node1")
    assert rules() == [("node1", "1000")]
    placement.pin(env, "vm1", "node2")
    assert rules() == [("node2", "-INFINITY")]


def test_drain_refuses_while_a_vm_there_is_not_signed_unless_told(env):
    lifecycle.enable(env, "vm1")
    env.session.store.images["system_vm1"].metadata["xml"] += "<!-- not signed -->"
    env.pacemaker.calls.clear()
    with pytest.raises(Untrusted, match="vm1 not signed"):
        maintenance.drain(env, "node1")
    assert writes(env) == [], "nothing moved"
    maintenance.drain(env, "node1", untrusted_ok=True)
    assert writes(env) == ["crm_attribute --type"]


def test_remove_with_force_disables_first(env):
    lifecycle.enable(env, "vm1")
    assert code_of(lifecycle.remove, env, "vm1") == "VM_ENABLED"
    lifecycle.remove(env, "vm1", force=True)
    assert primitive(env) is None and env.session.store.images == {}


def test_a_set_stopped_after_storing_brings_the_resource_in_line_when_run_again(env, monkeypatch):
    from scripted import cut

    lifecycle.enable(env, "vm1")
    cut(monkeypatch, "set:stored", configure.set_settings, env, "vm1", {"priority": 9})
    assert "priority" not in cib.pairs(primitive(env), "meta_attributes"), "stopped before the CIB"
    again = configure.set_settings(env, "vm1", {"priority": 9})
    assert again["changed"] == [], "the killed run stored the setting"
    assert cib.pairs(primitive(env), "meta_attributes")["priority"] == "9", "the re-run updated the resource"


def test_node_list_drain_and_resume(env):
    lifecycle.enable(env, "vm1")
    listed = {n["name"]: n for n in maintenance.node_list(env)}
    assert listed["node1"]["vms"] == ["vm1"] and listed["node2"]["state"] == "online"
    maintenance.drain(env, "node1")
    assert code_of(maintenance.drain, env, "node9") == "NOT_A_NODE"
    env.pacemaker.calls.clear()
    maintenance.resume(env, "node1")
    assert [c[-1] for c in env.pacemaker.writes()] == ["--delete"], "the drain attribute goes"


def test_the_console_is_found_on_the_node_that_runs_the_vm_by_its_migration_uri(env):
    assert code_of(console.locate, env, "vm1") == "VM_NOT_ENABLED"
    lifecycle.enable(env, "vm1", start=False)
    assert code_of(console.locate, env, "vm1") == "VM_NOT_RUNNING"
    configure.set_settings(env, "vm1", {"pacemaker_params": {"migration_transport": "tcp"}})
    lifecycle.start(env, "vm1")
    where = console.locate(env, "vm1")
    node = lifecycle.status(env, "vm1")["node"]
    assert where == {"name": "vm1", "node": node, "uri": f"qemu+tcp://{node}/system"}
    assert code_of(console.locate, env, "nosuch") == "VM_NOT_FOUND"


# ------------------------------------------------------------------ maintenance of a hyperconverged node
MAINT = CephTarget(conf="/scripted/ceph.conf", client_id="rbdvm-maintenance", pool="rbd", namespace="")


def test_drain_for_maintenance_sets_noout_on_the_nodes_host_and_resume_clears_it(env, monkeypatch):
    lifecycle.enable(env, "vm1")
    mons = env.session.cluster
    cut(monkeypatch, "drain:drained", maintenance.drain, env, "node1", maintenance=MAINT)
    assert mons.host_flags == {}, "stopped after the VMs left, before the flag"
    out = maintenance.drain(env, "node1", maintenance=MAINT)
    assert out["ceph"] == {"host": "node1", "osds": [0], "noout": True} and mons.host_flags == {"node1": ["noout"]}
    again = maintenance.drain(env, "node1", maintenance=MAINT)
    assert again["ceph"]["noout"] and not again["changed"], "its own flag is no refusal"
    back = maintenance.resume(env, "node1", maintenance=MAINT)
    assert back["ceph"] == {"host": "node1", "noout": False, "was_set": True} and mons.host_flags == {}
    out = maintenance.drain(env, "node2", maintenance=MAINT)
    assert out["ceph"] == {"host": "node2", "osds": [], "noout": False}, "a node without OSDs: nothing to flag"


def test_drain_for_maintenance_refuses_an_unhealthy_ceph_or_a_stranded_vm_before_anything_changes(env):
    lifecycle.enable(env, "vm1")
    node = lifecycle.status(env, "vm1")["node"]
    mons = env.session.cluster
    mons.health = {"status": "HEALTH_WARN", "checks": {"PG_DEGRADED": {"summary": {"message": "1 pg degraded"}}}}
    env.pacemaker.calls.clear()
    assert code_of(maintenance.drain, env, node, maintenance=MAINT) == "CEPH_UNHEALTHY"
    mons.health = {"status": "HEALTH_OK", "checks": {}}
    mons.host_flags = {"node9": ["noout"]}      # another node is in maintenance
    assert code_of(maintenance.drain, env, node, maintenance=MAINT) == "CEPH_UNHEALTHY"
    mons.host_flags = {}
    placement.pin(env, "vm1", node)
    env.pacemaker.calls.clear()
    assert code_of(maintenance.drain, env, node, maintenance=MAINT) == "NOWHERE_TO_GO"
    assert writes(env) == [] and mons.host_flags == {}, "nothing changed"


def test_disable_of_a_vm_the_cluster_could_not_place_still_stops_it_before_it_starts_meanwhile(env):
    """Found on the lab (test_capacity.py's clean-up): a VM enabled but Stopped because no
    node had room was removed while other VMs left; their room let Pacemaker start it during
    the disable, which then failed ("its status is Started"). A VM meant to run is told to
    stop whatever its status when the disable looks."""
    lifecycle.enable(env, "vm1")
    env.pacemaker.running["vm1"] = None          # nowhere to run: Stopped, target-role Started
    settle = env.pacemaker._crm_resource

    def room_freed_meanwhile(args):
        if "--wait" in args:
            env.pacemaker.running["vm1"] = "node2"
        return settle(args)
    env.pacemaker._crm_resource = room_freed_meanwhile
    assert lifecycle.disable(env, "vm1")["changed"] is True
    assert primitive(env) is None


def test_strict_migrate_and_set_ask_the_scheduler_about_the_cib_the_change_leaves_and_change_nothing_if_short(
        env, monkeypatch):
    """--strict: the move's constraint, or the set's patched primitive and placement, is what
    capacity.refuse_short is given (its simulations: tests/unit/test_ops_capacity.py and the
    lab's test_capacity.py); refused, nothing is written to the CIB or to Ceph."""
    from rbdvm.helpers.core.errors import Conflict
    from rbdvm.helpers.ops import capacity

    lifecycle.enable(env, "vm1")
    asked = []

    def short(_env, what_if, doing, without=()):
        asked.append((what_if, tuple(without)))
        raise Conflict(f"{doing} would leave VMs down", "scripted", "none", code="N_PLUS_ONE")

    monkeypatch.setattr(capacity, "refuse_short", short)
    before = dict(env.session.store.images["system_vm1"].metadata)
    env.pacemaker.calls.clear()
    assert code_of(lifecycle.migrate, env, "vm1", "node2", strict=True) == "N_PLUS_ONE"
    (loc,) = asked[-1][0].find("constraints")
    assert (loc.get("id"), loc.get("rsc"), loc.get("node"), loc.get("score")) == \
        ("cli-prefer-vm1", "vm1", "node2", "INFINITY"), "the constraint crm_resource --move makes"
    assert code_of(configure.set_settings, env, "vm1", {"priority": 7}, strict=True) == "N_PLUS_ONE"
    prim = asked[-1][0].find("resources/primitive[@id='vm1']")
    assert cib.pairs(prim, "meta_attributes")["priority"] == "7"
    assert asked[-1][1] == (cib.placement_id("vm1"),), "no pin or preference: no placement constraint"
    assert code_of(configure.set_settings, env, "vm1", {"pinned_host": "node2"}, strict=True) == "N_PLUS_ONE"
    assert asked[-1][0].find(f"constraints/rsc_location[@id='{cib.placement_id('vm1')}']") is not None
    assert asked[-1][1] == ()
    assert writes(env) == [] and env.session.store.images["system_vm1"].metadata == before


def test_a_drain_sets_the_migration_limit_it_is_given_follows_each_vm_and_reports_them_highest_priority_first(
        tmp_path):
    """The drain's decisions: migration-limit written before the drain attribute, each VM
    followed until it is elsewhere (progress on every change), the report ordered by
    priority with when each left and, for a VM that could not move, where it is not. The lab
    proves the moves themselves (tests/system/test_drain.py)."""
    env = scripted_env()
    for vm, prio in (("low", 1), ("high", 9), ("mid", 5), ("stuck", 7)):
        creation.create(env, vm, disk_file(tmp_path, f"{vm}.raw"), BASE_XML, settings={"live_migration": True,
                                                                              "priority": prio})
        lifecycle.enable(env, vm)
    env.pacemaker.stranded.add("stuck")           # nowhere to run once it must leave node1
    env.pacemaker.calls.clear()
    seen = []
    r = maintenance.drain(env, "node1", limit=2, progress=seen.append)
    assert [c[1:4] + [c[-1]] for c in env.pacemaker.writes()] == [
        ["--type", "crm_config", "--name", "2"], ["--type", "nodes", "--node", "true"]], "the limit first"
    assert [v["name"] for v in r["vms"]] == ["high", "stuck", "mid", "low"], "highest priority first"
    assert {v["name"]: v["node"] for v in r["vms"]} == {"high": "node2", "stuck": None, "mid": "node2", "low": "node2"}
    assert r["still_there"] == [] and r["migration_limit"] == 2 and r["settled"] is True
    assert all(v["left_after"] is not None for v in r["vms"] if v["name"] != "stuck")
    assert seen and seen[-1] == r["vms"], "the last progress is the report"

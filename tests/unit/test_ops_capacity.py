"""rbdvm capacity's decisions (issue 33), with the cluster's runner scripted: the CIB it
reads and what crm_simulate answers for each node lost. The lab proves the same against
Pacemaker's real scheduler and a real crash (tests/system/test_capacity.py)."""

import pytest
from lxml import etree

from rbdvm.helpers.core import vmschema
from rbdvm.helpers.core.errors import ClusterUnavailable, Conflict
from rbdvm.helpers.core.settings import CephTarget
from rbdvm.helpers.ops import capacity
from rbdvm.helpers.ops.env import Env
from rbdvm.helpers.pacemaker import cib
from rbdvm.helpers.pacemaker.cluster import Cluster

pytestmark = pytest.mark.unit
NODES = ("node1", "node2", "node3")


def _cib(vms: dict, node_slots: dict, strategy: str | None = "utilization") -> str:
    """A CIB as rbdvm writes it: `vms` {name: (slots, priority, started)}."""
    root = etree.Element("cib")
    conf = etree.SubElement(root, "configuration")
    crm = etree.SubElement(etree.SubElement(conf, "crm_config"), "cluster_property_set", id="opts")
    if strategy:
        etree.SubElement(crm, "nvpair", id="ps", name="placement-strategy", value=strategy)
    nodes = etree.SubElement(conf, "nodes")
    for i, n in enumerate(NODES):
        node = etree.SubElement(nodes, "node", id=str(i + 1), uname=n)
        if n in node_slots:
            u = etree.SubElement(node, "utilization", id=f"{n}-u")
            etree.SubElement(u, "nvpair", id=f"{n}-u-slots", name="slots", value=str(node_slots[n]))
    resources = etree.SubElement(conf, "resources")
    other = etree.SubElement(resources, "primitive", id="fence-node1", **{"class": "stonith", "type": "fence_x"})
    etree.SubElement(other, "utilization", id="f-u")
    for vm, (slots, prio, started) in vms.items():
        config = vmschema.VmConfig.of({"_priority": str(prio), "_pacemaker_utilization": f'{{"slots": "{slots}"}}'})
        resources.append(cib.primitive(vm, CephTarget(pool="rbd"), config, start=started))
    etree.SubElement(root, "status")
    return etree.tostring(root, encoding="unicode")


def _simulated(placed: dict, down: str | None) -> str:
    """crm_simulate's XML answer: `placed` {resource: node} in the revised status."""
    root = etree.Element("pacemaker-result")
    status = etree.SubElement(root, "revised_cluster_status")
    nodes = etree.SubElement(status, "nodes")
    for n in NODES:
        etree.SubElement(nodes, "node", name=n, online="false" if n == down else "true", type="member")
    etree.SubElement(nodes, "node", name="guest1", online="true", type="remote")
    rscs = etree.SubElement(status, "resources")
    for rsc, node in placed.items():
        r = etree.SubElement(rscs, "resource", id=rsc, active="true" if node else "false",
                             role="Started" if node else "Stopped", failed="false")
        if node:
            etree.SubElement(r, "node", name=node)
    return etree.tostring(root, encoding="unicode")


class Scripted:
    """The cluster's runner: the CIB, and crm_simulate's answer per node taken down."""

    def __init__(self, cib_text: str, answers: dict):
        self.cib_text, self.answers, self.calls = cib_text, answers, []

    def __call__(self, argv, timeout=None, until=None, stdin=None):
        self.calls.append((argv, stdin))
        if argv[:2] == ["cibadmin", "--query"]:
            return self.cib_text
        if argv[0] == "crm_mon":
            return CRM_MON
        assert argv[0] == "crm_simulate" and "--xml-pipe" in argv and stdin.startswith("<cib"), argv
        down = argv[argv.index("--node-down") + 1] if "--node-down" in argv else None
        answer = self.answers[down]
        if isinstance(answer, Exception):
            raise answer
        return _simulated(answer, down)


# node3 is an observer: the agent's probe there answered "not installed" (rc 5)
CRM_MON = """<pacemaker-result><resources>
<resource id="a" resource_agent="ocf:rbdvm:VirtualDomain" role="Started" active="true"/></resources>
<node_history><node name="node3"><resource_history id="a"><operation_history task="probe" rc="5"/>
</resource_history></node></node_history></pacemaker-result>"""
VMS = {"a": (1, 10, True), "b": (1, 5, True), "c": (1, 0, True), "off": (1, 0, False)}
NOW = {"a": "node1", "b": "node1", "c": "node2", "off": None, "fence-node1": "node3"}


def _run(answers, vms=VMS, strategy="utilization"):
    script = Scripted(_cib(vms, {"node1": 2, "node2": 2}, strategy), answers)
    return capacity.capacity(Env(cluster=Cluster(run=script))), script


def test_a_node_whose_loss_cannot_be_absorbed_names_the_vms_that_would_stay_down_highest_priority_first():
    r, script = _run({None: NOW,
                      "node1": {**NOW, "a": "node2", "b": None, "fence-node1": "node3"},
                      "node2": {**NOW, "c": "node1"} | {"b": None},
                      "node3": NOW})
    losses = {loss["node"]: loss for loss in r["losses"]}
    assert losses["node1"]["stopped"] == [{"vm": "b", "priority": 5}] and losses["node1"]["moved"] == ["a"]
    assert losses["node3"] == {"node": "node3", "stopped": [], "moved": []}
    assert r["absorbs_any_loss"] is False
    # one CIB query; one simulation as the cluster stands and one per member node (no guest node)
    assert [a[0] for a, _ in script.calls].count("cibadmin") == 1
    downs = sorted(a[a.index("--node-down") + 1] for a, _ in script.calls if "--node-down" in a)
    assert downs == list(NODES)


def test_a_vm_disabled_is_never_counted_as_lost_and_one_not_running_now_is_said_apart():
    now = {**NOW, "c": None}
    r, _ = _run({None: now, "node1": {**now, "a": "node2", "b": "node2"}, "node2": now, "node3": now})
    assert r["absorbs_any_loss"] is True and r["not_running_now"] == ["c"]
    assert all(s["vm"] != "off" for loss in r["losses"] for s in loss["stopped"])


def test_headroom_counts_every_resource_placed_on_the_node_against_its_capacity():
    r, _ = _run({None: NOW, "node1": NOW, "node2": NOW, "node3": NOW})
    nodes = {n["name"]: n for n in r["nodes"]}
    assert nodes["node1"]["capacity"] == {"slots": 2} and nodes["node1"]["used"] == {"slots": 2}
    assert nodes["node2"]["free"] == {"slots": 1} and nodes["node1"]["vms"] == ["a", "b"]
    assert nodes["node3"]["capacity"] == {} and nodes["node3"]["vms"] == [], "the fence device is no VM"
    assert r["placement_strategy"] == "utilization"


def test_without_a_placement_strategy_the_default_is_reported():
    r, _ = _run({None: NOW, "node1": NOW, "node2": NOW, "node3": NOW}, strategy=None)
    assert r["placement_strategy"] == "default"


def test_a_simulation_that_fails_is_the_clusters_error_not_a_guess():
    with pytest.raises(ClusterUnavailable):
        _run({None: NOW, "node1": NOW, "node2": ClusterUnavailable("crm_simulate failed", code="PACEMAKER_UNAVAILABLE"),
              "node3": NOW})


def test_crm_simulate_output_that_is_not_xml_is_refused():
    from rbdvm.helpers.pacemaker import simulate

    with pytest.raises(ClusterUnavailable):
        simulate.parse("<pacemaker-result><status code='0'/></pacemaker-result>")
    with pytest.raises(ClusterUnavailable):
        simulate.parse("not xml")


def test_a_capacity_a_node_does_not_declare_is_named_once_utilization_counts():
    """Pacemaker reads an undeclared capacity as 0: with placement-strategy utilization and
    nodes declaring only slots, every VM the agent gave cpu/hv_memory may run nowhere (seen
    with crm_simulate on the lab's CIB). An observer, where no VM runs, needs none."""
    vms = {"a": (1, 0, True)}
    answers = {None: {"a": "node1"}, "node1": {}, "node2": {"a": "node1"}, "node3": {"a": "node1"}}
    r = capacity.capacity(Env(cluster=Cluster(run=Scripted(_cib(vms, {"node1": 2, "node2": 2}), answers))))
    assert r["undeclared"] == {}, "node3 is the observer"
    script = Scripted(_cib(vms, {"node1": 2}), answers)
    r = capacity.capacity(Env(cluster=Cluster(run=script)))
    assert r["undeclared"] == {"slots": ["node2"]}
    assert r["losses"][0]["stopped"] == [{"vm": "a", "priority": 0}]
    script = Scripted(_cib(vms, {"node1": 2, "node2": 2}, strategy=None), script.answers)
    assert capacity.capacity(Env(cluster=Cluster(run=script)))["undeclared"] == {}, "default: not counted"


def test_a_vm_about_to_be_enabled_is_merged_into_the_copy_the_scheduler_is_given():
    """enable --strict: the fragment enable would merge (its primitive with the utilization
    its definition will get, its constraints, the pool's alert) is in the CIB crm_simulate
    reads, and a shortfall refuses with N_PLUS_ONE naming what would stay down."""
    config = vmschema.VmConfig.of({"_pacemaker_utilization": '{"slots": "1"}'})
    fragment = cib.resource_fragment("new", CephTarget(pool="rbd"), config, True, utilization={"cpu": 2, "slots": 9})
    answers = {None: {**NOW, "new": "node2"}, "node1": {**NOW, "a": "node2", "b": None, "new": None},
               "node2": {**NOW, "c": "node1", "new": "node1"}, "node3": {**NOW, "new": "node2"}}
    script = Scripted(_cib(VMS, {"node1": 2, "node2": 2}), answers)
    env = Env(cluster=Cluster(run=script))
    with pytest.raises(Conflict) as exc:
        capacity.refuse_short(env, fragment, "enabling VM new")
    assert exc.value.code == "N_PLUS_ONE" and exc.value.details["stopped"] == {"node1": ["b", "new"]}
    given = etree.fromstring(next(stdin for argv, stdin in script.calls if argv[0] == "crm_simulate").encode())
    prim = given.find("configuration/resources/primitive[@id='new']")
    assert cib.pairs(prim, "utilization") == {"slots": "1", "cpu": "2"}, "the settings' value wins"
    assert given.find("configuration/constraints/rsc_location[@id='rbdvm-new-avoid']") is not None
    assert script.cib_text == _cib(VMS, {"node1": 2, "node2": 2}), "the live CIB is never written"


def test_a_change_the_cluster_absorbs_passes_the_strict_check():
    script = Scripted(_cib(VMS, {"node1": 2, "node2": 2}), {None: NOW, "node1": NOW, "node2": NOW, "node3": NOW})
    capacity.refuse_short(Env(cluster=Cluster(run=script)), None, "enabling VM x")


def test_the_definitions_utilization_is_what_the_agent_sets():
    from rbdvm.helpers.core import domainxml

    xml = "<domain type='kvm'><name>x</name><vcpu>3</vcpu><memory unit='GiB'>2</memory></domain>"
    assert domainxml.utilization(xml) == {"cpu": 3, "hv_memory": 2048}
    assert domainxml.utilization("<domain><memory>1048576</memory></domain>") == {"hv_memory": 1024}, "KiB"


def test_the_check_after_a_change_has_one_budget_for_every_simulation_and_says_when_it_is_not_done():
    """At hundreds of VMs one crm_simulate run takes seconds (bench/scheduler.py): the check
    after enable/set/migrate gives every run one deadline, CAPACITY_CHECK from its start, and
    a run the runner gave up on is "unknown", never a failed command."""
    import time

    from rbdvm.helpers.core import timeouts

    deadlines = []

    class Slow(Scripted):
        def __call__(self, argv, timeout=None, until=None, stdin=None):
            if argv[0] == "crm_simulate":
                deadlines.append(until)
                if "node2" in argv:
                    raise ClusterUnavailable("crm_simulate did not answer within 3 s", code="PACEMAKER_UNAVAILABLE")
            return super().__call__(argv, timeout, until, stdin)

    t0 = time.monotonic()
    r = capacity.shortfall(Env(cluster=Cluster(run=Slow(_cib(VMS, {"node1": 2, "node2": 2}),
                                                        {None: NOW, "node1": NOW, "node2": NOW, "node3": NOW}))))
    assert "did not answer" in r["unknown"]
    assert len(set(deadlines)) == 1 and 0 < deadlines[0] - t0 <= timeouts.CAPACITY_CHECK + 0.5


def test_a_what_if_replaces_the_elements_of_its_ids_and_takes_out_those_named_gone():
    """A set's what-if: the VM's primitive put in place of the live one, its old placement
    constraint taken out; elements of other ids stay as they are."""
    whole = etree.fromstring(_cib(VMS, {"node1": 2}).encode())
    etree.SubElement(whole.find("configuration"), "constraints").extend([
        etree.Element("rsc_location", id=cib.placement_id("a"), rsc="a", node="node1", score="INFINITY"),
        etree.Element("rsc_location", id="keep", rsc="b", node="node2", score="10")])
    config = vmschema.VmConfig.of({"_priority": "3"})
    prim = cib.primitive("a", CephTarget(pool="rbd"), config, start=True)
    fragment, gone = cib.settings_fragment("a", prim, config)
    root, text = cib.with_configuration(whole, fragment, gone)
    assert [p.get("id") for p in root.iter("primitive")] == ["fence-node1", "a", "b", "c", "off"], "in place"
    assert cib.pairs(root.find("configuration/resources/primitive[@id='a']"), "meta_attributes")["priority"] == "3"
    assert [c.get("id") for c in root.find("configuration/constraints")] == ["keep"]
    assert etree.fromstring(text.encode()).find("configuration/constraints") is not None
    assert whole.find(f"configuration/constraints/rsc_location[@id='{cib.placement_id('a')}']") is not None, \
        "the CIB read is left as it was"
    moved, _ = cib.with_configuration(root, cib.moved_to("b", "node1"))
    assert [c.get("id") for c in moved.find("configuration/constraints")] == ["keep", "cli-prefer-b"]

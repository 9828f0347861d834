"""Issue 33 on the lab: `rbdvm capacity` asks Pacemaker's scheduler (crm_simulate over a copy
of the live CIB) which VMs would not restart if each single node were lost, and a real crash
of that node leaves exactly those down. Alone: it sets cluster-wide utilization counting
(placement-strategy) and the hypervisors' capacity."""

import pytest

from labkit import layout as L
from labkit import node, ops
from labkit.procs import run, wait_for
from labkit.testing import force_remove_all, make_vm, rbdvm, rbdvm_json, unique

pytestmark = [pytest.mark.lab, pytest.mark.usefixtures("agent_installed")]
N1, N2 = L.HYPERVISORS
LAB = str(L.LAB_SRC / "lab")
# every attribute a VM uses needs a declared capacity once utilization counts: the agent sets
# cpu and hv_memory (the lab's guest: 1 and 64); "slots" is what this test runs short of
CAPACITY = {"cpu": 16, "hv_memory": 16384, "slots": 2}


def crm(*args, check=True):
    return ops.on(N2 if not node.REG.alive(f"pacemakerd-{N1}") else N1, *args, check=check)


@pytest.fixture
def two_slots_per_node():
    crm("crm_attribute", "--type", "crm_config", "--name", "placement-strategy", "--update", "utilization")
    for n in L.HYPERVISORS:
        for k, v in CAPACITY.items():
            crm("crm_attribute", "--node", n, "--utilization", "--name", k, "--update", str(v))
    yield
    for n in L.HYPERVISORS:
        for k in CAPACITY:
            crm("crm_attribute", "--node", n, "--utilization", "--name", k, "--delete", check=False)
    crm("crm_attribute", "--type", "crm_config", "--name", "placement-strategy", "--delete", check=False)


@pytest.fixture
def three_vms(two_slots_per_node):
    """hi (priority 10) and lo (1) prefer node1, mid (5) node2; each takes one slot."""
    vms = {"hi": (unique("hi"), 10, N1), "mid": (unique("mid"), 5, N2), "lo": (unique("lo"), 1, N1)}
    try:
        for name, prio, home in vms.values():
            make_vm(name, priority=prio, preferred_host=home, pacemaker_utilization="slots=1")
            rbdvm("enable", name)
        names = {k: v[0] for k, v in vms.items()}
        assert wait_for(60, lambda: [ops.resource_node(N1, names[k]) for k in ("hi", "mid", "lo")] == [N1, N2, N1],
                        0.5), "each VM on its preferred node"
        yield names
    finally:
        # removed before node1 boots: it would start lo at once, and lo's start would wait
        # out the crashed QEMU's watch (its node is back: the guard no longer releases it)
        up = [n for n in L.HYPERVISORS if node.REG.alive(f"pacemakerd-{n}")]
        force_remove_all((v[0] for v in vms.values()), node=up[0])
        for n in L.NODES:
            if not node.REG.alive(f"pacemakerd-{n}"):
                run([LAB, "boot", n], timeout=180)


def test_capacity_names_the_vm_a_node_loss_would_leave_down_and_a_real_crash_agrees(three_vms):
    hi, mid, lo = three_vms["hi"], three_vms["mid"], three_vms["lo"]
    r = rbdvm_json("capacity")
    assert r["placement_strategy"] == "utilization" and r["undeclared"] == {}, r
    nodes = {n["name"]: n for n in r["nodes"]}
    assert nodes[N1]["vms"] == sorted([hi, lo]) and nodes[N1]["free"]["slots"] == 0, nodes[N1]
    assert nodes[N2]["free"]["slots"] == 1, nodes[N2]
    losses = {loss["node"]: loss for loss in r["losses"]}
    # node1 lost: one slot left on node2, taken by hi (higher priority); lo stays down.
    # node2 lost: mid (5) outranks lo (1) for node1's slots: lo gives way
    assert losses[N1]["stopped"] == [{"vm": lo, "priority": 1}] and hi in losses[N1]["moved"], losses[N1]
    assert losses[N2]["stopped"] == [{"vm": lo, "priority": 1}], losses[N2]
    assert losses[L.OBSERVER]["stopped"] == [] and r["absorbs_any_loss"] is False
    text = rbdvm("capacity").stdout
    assert f"{N1}: {lo} (priority 1) would not restart" in text and "cannot absorb" in text, text
    # a change to where VMs may run says what it leaves of N+1 (the scheduler asked again)
    res = rbdvm("set", mid, "--priority", "6")
    assert f"if {N1} were lost, {lo} would not restart" in res.stderr, res.stderr
    assert rbdvm_json("set", mid, "--priority", "5")["n_plus_one"] == \
        {"absorbs_any_loss": False, "stopped": {N1: [lo], N2: [lo]}}

    # --strict refuses a fourth VM before anything changes (the cluster already cannot absorb
    # a loss: any enable leaves VMs down)
    extra = unique("ex")
    make_vm(extra, pacemaker_utilization="slots=1")
    try:
        res = rbdvm("enable", extra, "--strict", "--json", check=False)
        assert res.returncode == 4 and '"N_PLUS_ONE"' in res.stdout, (res.returncode, res.stdout, res.stderr)
        assert rbdvm_json("status", extra)["status"] == "Disabled", "nothing changed"
    finally:
        force_remove_all([extra])
    # and a migrate or set that leaves the same shortfall, with the VM where it was
    res = rbdvm("migrate", hi, N2, "--cold", "--strict", "--json", check=False)
    assert res.returncode == 4 and '"N_PLUS_ONE"' in res.stdout, (res.returncode, res.stdout, res.stderr)
    res = rbdvm("set", lo, "--priority", "2", "--strict", "--json", check=False)
    assert res.returncode == 4 and '"N_PLUS_ONE"' in res.stdout, (res.returncode, res.stdout, res.stderr)
    assert ops.resource_node(N1, hi) == N1 and rbdvm_json("info", lo)["settings"]["priority"] == 1, "unchanged"

    # the real failure: node1 crashes; the survivor runs what capacity said, and no more
    fences = len(ops.fence_events(N2, N1))
    run([LAB, "crash", N1])
    assert wait_for(60, lambda: len(ops.fence_events(N2, N1)) > fences), f"{N2} fenced {N1}"
    assert wait_for(60, lambda: ops.resource_node(N2, hi) == N2, 0.5), f"{hi} restarted on {N2}"
    ops.on(N2, "crm_resource", "--wait", "--timeout", "60s", timeout=90)
    assert [ops.resource_node(N2, vm) for vm in (hi, mid, lo)] == [N2, N2, None], "as predicted: lo stays down"

"""Pacemaker on the lab: live migration of a resource, and fencing of a crashed node."""

import pytest
from lxml import etree

from labkit import layout as L
from labkit import node, ops
from labkit.procs import run, wait_for

pytestmark = pytest.mark.lab

RSC = "labdummy"


def _dummy_primitive() -> str:
    prim = etree.Element("primitive", id=RSC, type="Dummy", provider="pacemaker")
    prim.set("class", "ocf")
    meta = etree.SubElement(prim, "meta_attributes", id=f"{RSC}-meta")
    etree.SubElement(meta, "nvpair", id=f"{RSC}-allow-migrate", name="allow-migrate", value="true")
    ops_ = etree.SubElement(prim, "operations")
    etree.SubElement(ops_, "op", id=f"{RSC}-monitor", name="monitor", interval="10s")
    return etree.tostring(prim, encoding="unicode")


@pytest.fixture
def dummy():
    n1 = L.NODES[0]
    ops.on(n1, "cibadmin", "-C", "-o", "resources", "-X", _dummy_primitive())
    yield RSC
    ops.on(n1, "crm_resource", "--clear", "-r", RSC, check=False)
    ops.on(n1, "crm_resource", "--meta", "-r", RSC, "-p", "target-role", "-v", "Stopped", check=False)
    wait_for(30, lambda: ops.resource_node(n1, RSC) is None)
    ops.on(n1, "cibadmin", "-D", "-o", "resources", "-X", f"<primitive id='{RSC}'/>", check=False)
    ops.on(n1, "crm_resource", "--cleanup", "-r", RSC, check=False)


def test_dummy_with_allow_migrate_moves_by_migrate_to_and_migrate_from(dummy):
    n1, n2 = L.HYPERVISORS
    assert wait_for(30, lambda: ops.resource_node(n1, dummy) is not None)
    src = ops.resource_node(n1, dummy)
    dst = n2 if src == n1 else n1
    ops.on(n1, "crm_resource", "--move", "-r", dummy, "-N", dst)
    assert wait_for(30, lambda: ops.resource_node(n1, dummy) == dst)
    history = ops.operations(n1, dummy)
    assert (src, "migrate_to", "0") in history
    assert (dst, "migrate_from", "0") in history
    assert (dst, "start", "0") not in history, "a migration, not a stop and start"


def test_crashed_node_is_fenced_and_boots_back_into_the_cluster():
    n1, n2 = L.HYPERVISORS
    before = len(ops.fence_events(n1, n2))
    run([str(L.LAB_SRC / "lab"), "crash", n2])
    assert not node.REG.alive(f"pacemakerd-{n2}") and not node.REG.alive(f"corosync-{n2}")
    assert wait_for(60, lambda: len(ops.fence_events(n1, n2)) > before), "node1 never fenced node2"
    event = ops.fence_events(n1, n2)[0]
    assert event["delegate"] in (n1, L.OBSERVER), "a survivor fenced it"
    assert node.online_nodes(n1) == sorted((n1, L.OBSERVER))

    run([str(L.LAB_SRC / "lab"), "boot", n2], timeout=180)
    assert node.online_nodes(n1) == sorted(L.NODES)
    assert node.online_nodes(n2) == sorted(L.NODES)
    assert node.libvirt_up(n2)

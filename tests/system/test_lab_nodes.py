"""The lab's nodes: isolated network, names, rbdvm installed, libvirt secret, Pacemaker."""

import xml.etree.ElementTree as ET

import pytest

from labkit import layout as L
from labkit import node, ops
from labkit.procs import run

pytestmark = pytest.mark.lab


def test_lab_addresses_exist_only_inside_the_lab_namespaces():
    assert f"{L.NET}." not in run(["ip", "-4", "addr"]).stdout
    for part in (*L.NODES, "ceph"):
        routes = run(["ip", "-n", L.netns(part), "-4", "route"]).stdout
        assert "default" not in routes, f"{part} must have no default route"


@pytest.mark.parametrize("n", L.NODES)
def test_node_identity_and_name_resolution(n):
    assert ops.on(n, "hostname").stdout.strip() == n
    for other in (*L.NODES, "ceph"):
        assert ops.on(n, "getent", "hosts", other).stdout.split()[0] == L.IP[other]


@pytest.mark.parametrize("n", L.NODES)
def test_migration_ports_are_reserved_in_each_node(n):
    """As docs/agent.md asks of a real node (set in the node's namespace, not the host)."""
    res = ops.on(n, "sysctl", "-n", "net.ipv4.ip_local_reserved_ports")
    assert res.stdout.strip() == L.MIGRATION_PORTS


@pytest.mark.parametrize("n", L.NODES)
def test_rbdvm_command_on_each_node(n):
    res = ops.on(n, "rbdvm", "--help")
    assert "Usage: rbdvm" in res.stdout


def test_libvirt_on_both_nodes_secret_and_cross_reachability():
    uuids = set()
    for n in L.NODES:
        other = next(o for o in L.NODES if o != n)
        assert f"{L.SECRET_UUID}   ceph client.{L.CEPH_USER}" in ops.virsh(n, "secret-list")
        assert ops.on(n, "virsh", "-q", "-c", f"qemu+tcp://{other}/system", "hostname").stdout.strip() == other
        uuids.add(ET.fromstring(ops.virsh(n, "capabilities")).findtext("host/uuid"))
    assert len(uuids) == len(L.NODES), "live migration needs distinct host UUIDs"


def test_both_pacemaker_nodes_online_with_fencing_enabled():
    for n in L.NODES:
        assert node.online_nodes(n) == sorted(L.NODES)
    stonith = ops.on(L.NODES[0], "crm_attribute", "-G", "-t", "crm_config", "-n", "stonith-enabled", "-q")
    assert stonith.stdout.strip() == "true"
    for n in L.NODES:
        runs_on = ops.resource_node(L.NODES[0], f"fence-{n}")
        assert runs_on is not None and runs_on != n, "a node's fence device runs on the other node"


def test_partition_cuts_the_nodes_apart_but_not_from_ceph():
    # healed within ~1 s: well inside corosync's 3 s token, so nobody gets fenced
    probe = ("import socket, sys\n"
             "for host, port in ((sys.argv[1], 16509), (sys.argv[2], 6789)):\n"
             "    try:\n"
             "        socket.create_connection((host, port), timeout=0.4).close(); print('up')\n"
             "    except OSError:\n"
             "        print('down')\n")
    n1, n2 = L.NODES
    assert ops.on(n1, L.SYSTEM_PYTHON, "-c", probe, L.IP[n2], L.IP["ceph"]).stdout.split() == ["up", "up"]
    run([str(L.LAB_SRC / "lab"), "partition"])
    try:
        cut = ops.on(n1, L.SYSTEM_PYTHON, "-c", probe, L.IP[n2], L.IP["ceph"]).stdout.split()
    finally:
        run([str(L.LAB_SRC / "lab"), "heal"])
    assert cut == ["down", "up"]
    assert ops.on(n1, L.SYSTEM_PYTHON, "-c", probe, L.IP[n2], L.IP["ceph"]).stdout.split() == ["up", "up"]

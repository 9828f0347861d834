"""The lab's nodes: isolated network, names, rbdvm installed, libvirt secret, Pacemaker."""

import json
import os
import xml.etree.ElementTree as ET

import pytest

from labkit import ceph, lifecycle, node, ops
from labkit import layout as L
from labkit.procs import run, wait_for

pytestmark = pytest.mark.lab


def test_lab_addresses_exist_only_inside_the_lab_namespaces():
    assert f"{L.NET}." not in run(["ip", "-4", "addr"]).stdout
    for part in L.NODES:
        routes = run(["ip", "-n", L.netns(part), "-4", "route"]).stdout
        assert "default" not in routes, f"{part} must have no default route"


@pytest.mark.parametrize("n", L.NODES)
def test_node_identity_and_name_resolution(n):
    assert ops.on(n, "hostname").stdout.strip() == n
    for other in L.NODES:
        assert ops.on(n, "getent", "hosts", other).stdout.split()[0] == L.IP[other]


def test_the_observer_has_no_hypervisor_and_every_node_its_ceph_daemons():
    """SEAPATH's shape: a monitor on every node, an OSD under each hypervisor's CRUSH host,
    and no libvirt daemon on the observer (not installed, not merely stopped)."""
    for path in node.HYPERVISOR_DAEMONS:
        assert ops.on(L.OBSERVER, "test", "-e", path, check=False).returncode != 0, path
        assert ops.on(L.HYPERVISORS[0], "test", "-e", path, check=False).returncode == 0 or "virtqemud" in path
    assert ceph.status()["quorum"] == sorted(L.MONS) == sorted(L.NODES)
    tree = json.loads(ceph.admin("osd", "tree", "--format", "json").stdout)["nodes"]
    hosts = {h["name"]: h.get("children", []) for h in tree if h["type"] == "host"}
    assert hosts == {n: [osd_id] for n, osd_id in L.OSDS.items()}
    for n in L.NODES:
        mine = {ceph.reg_name(k, i) for k, i in ceph.daemons(n)}
        pids = {node.REG.pid(name) for name in mine}
        netns = os.readlink(f"/proc/{node.holder(n)}/ns/net")
        assert all(pid and os.readlink(f"/proc/{pid}/ns/net") == netns for pid in pids), \
            f"{n}'s Ceph daemons run in its namespace: a crash of {n} takes them with it"


@pytest.mark.parametrize("n", L.HYPERVISORS)
def test_migration_ports_are_reserved_in_each_node(n):
    """As docs/agent.md asks of a real node (set in the node's namespace, not the host)."""
    res = ops.on(n, "sysctl", "-n", "net.ipv4.ip_local_reserved_ports")
    assert res.stdout.strip() == L.MIGRATION_PORTS


@pytest.mark.parametrize("n", L.NODES)
def test_rbdvm_command_on_each_node(n):
    res = ops.on(n, "rbdvm", "--help")
    assert "Usage: rbdvm" in res.stdout


def test_libvirt_on_both_hypervisors_secret_and_cross_reachability():
    uuids = set()
    for n in L.HYPERVISORS:
        other = next(o for o in L.HYPERVISORS if o != n)
        assert f"{L.SECRET_UUID}   ceph client.{L.CEPH_USER}" in ops.virsh(n, "secret-list")
        assert ops.on(n, "virsh", "-q", "-c", f"qemu+tcp://{other}/system", "hostname").stdout.strip() == other
        uuids.add(ET.fromstring(ops.virsh(n, "capabilities")).findtext("host/uuid"))
    assert len(uuids) == len(L.HYPERVISORS), "live migration needs distinct host UUIDs"


def test_every_pacemaker_node_online_with_fencing_enabled():
    for n in L.NODES:
        assert node.online_nodes(n) == sorted(L.NODES)
    stonith = ops.on(L.NODES[0], "crm_attribute", "-G", "-t", "crm_config", "-n", "stonith-enabled", "-q")
    assert stonith.stdout.strip() == "true"
    for n in L.NODES:
        runs_on = ops.resource_node(L.NODES[0], f"fence-{n}")
        assert runs_on is not None and runs_on != n, "a node's fence device runs on another node"


# from node n: can it reach each other node's monitor (Ceph, TCP) and corosync (a UDP
# datagram to knet's port answered by nothing: a blackholed one fails at once with EINVAL)
PROBE = ("import socket, sys\n"
         "for host in sys.argv[1:]:\n"
         "    try:\n"
         "        socket.create_connection((host, 6789), timeout=0.4).close(); tcp = 'up'\n"
         "    except OSError:\n"
         "        tcp = 'down'\n"
         "    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
         "    try:\n"
         "        u.sendto(b'x', (host, int(%d))); udp = 'up'\n"
         "    except OSError:\n"
         "        udp = 'down'\n"
         "    print(tcp + '/' + udp)\n") % L.COROSYNC_PORT


def reach(n: str) -> list:
    others = [L.IP[o] for o in L.NODES if o != n]
    return ops.on(n, L.SYSTEM_PYTHON, "-c", PROBE, *others).stdout.split()


def test_partition_cuts_a_node_off_and_cluster_only_spares_ceph():
    # each cut healed within ~1 s: inside corosync's token and consensus, nobody is fenced
    n1, n2, n3 = L.NODES
    assert reach(n1) == ["up/up", "up/up"]
    run([str(L.LAB_SRC / "lab"), "partition", n1, "--cluster-only"])
    try:
        cut, other_side = reach(n1), reach(n2)
    finally:
        run([str(L.LAB_SRC / "lab"), "heal"])
    assert cut == ["up/down", "up/down"], "Ceph reachable, corosync not"
    assert other_side == ["up/down", "up/up"]
    # only the switch's part of the status: the whole status waits on Ceph, whose monitors
    # may hold an election, and a cut longer than corosync's token and consensus is fenced
    run([str(L.LAB_SRC / "lab"), "partition", n1])
    try:
        switch = lifecycle.switch_health()
    finally:
        run([str(L.LAB_SRC / "lab"), "heal"])
    assert f"{n1} unplugged" in switch[2], switch
    # plugged back, a node's neighbour entries of the cut are resolved again (ARP retries each second)
    assert wait_for(5, lambda: reach(n1) == ["up/up", "up/up"]), reach(n1)

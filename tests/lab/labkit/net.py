"""The lab's virtual switch: one bridge in its own namespace, one veth port per part."""

import os

from . import layout as L
from .procs import run


def create() -> None:
    for ns in L.ALL_NETNS:
        run(["ip", "netns", "add", ns])
        run(["ip", "-n", ns, "link", "set", "lo", "up"])
    run(["ip", "-n", L.SWITCH_NS, "link", "add", L.BRIDGE, "type", "bridge"])
    run(["ip", "-n", L.SWITCH_NS, "link", "set", L.BRIDGE, "up"])
    # the lab's admin address: on the bridge itself, so lab checks reach Ceph whichever
    # node is cut off (a cut unplugs a node's port, never the bridge)
    run(["ip", "-n", L.SWITCH_NS, "addr", "add", f"{L.IP['admin']}/24", "dev", L.BRIDGE])
    for part in L.NODES:
        # the veth is born inside the switch and its peer moved straight into the node's
        # namespace: the lab's addresses never exist in the root namespace
        port = L.switch_port(part)
        run(["ip", "-n", L.SWITCH_NS, "link", "add", port, "type", "veth",
             "peer", "name", "eth0", "netns", L.netns(part)])
        run(["ip", "-n", L.SWITCH_NS, "link", "set", port, "master", L.BRIDGE, "up"])
        if part in L.HYPERVISORS:
            # SEAPATH's hypervisor: its address on a bridge its guests plug into (br0), so
            # a guest is on the cluster's network; its one cable (eth0) is a port of it
            ns = ["ip", "-n", L.netns(part)]
            run([*ns, "link", "add", L.BRIDGE, "type", "bridge", "forward_delay", "0"])
            run([*ns, "link", "set", "eth0", "master", L.BRIDGE])
            run([*ns, "link", "set", L.BRIDGE, "up"])
        run(["ip", "-n", L.netns(part), "addr", "add", f"{L.IP[part]}/24", "dev", L.node_interface(part)])
        run(["ip", "-n", L.netns(part), "link", "set", "eth0", "up"])
    for n in L.HYPERVISORS:
        # QEMU's incoming migration binds a port of libvirt's range (49152-49215): an
        # outgoing connection (a guest's Ceph client) given one of them as its ephemeral
        # port made a live migration fail with "Address already in use" (seen on the lab).
        # What docs/agent.md asks of a real node, per namespace here.
        run(["ip", "netns", "exec", L.netns(n), "sysctl", "-q", "-w",
             f"net.ipv4.ip_local_reserved_ports={L.MIGRATION_PORTS}"])


def existing() -> list:
    return [ns for ns in L.ALL_NETNS if os.path.exists(f"/run/netns/{ns}")]


def delete(names) -> None:
    for ns in names:
        if run(["ip", "netns", "del", ns], check=False).returncode != 0:
            try:
                os.unlink(f"/run/netns/{ns}")
            except FileNotFoundError:
                pass


def set_port(part: str, up: bool) -> None:
    """Unplug (or plug back) a node's cable: cut off from every other node, corosync and
    Ceph alike, on the one network SEAPATH uses for both."""
    run(["ip", "-n", L.SWITCH_NS, "link", "set", L.switch_port(part), "up" if up else "down"])


def port_up(part: str) -> bool:
    out = run(["ip", "-n", L.SWITCH_NS, "-o", "link", "show", L.switch_port(part)]).stdout
    return ",UP" in out or "<UP" in out


# a cluster-network-only cut: corosync's packets to and from the node go to a blackhole
# route (policy routing: this kernel has no tc drop action), everything else flows
_CUT_TABLE, _CUT_PRIO = "77", "100"


def _cut_rules(n: str, other: str) -> list:
    """(namespace, rule) pairs that stop corosync between n and other, both ways."""
    rule = ["ipproto", "udp", "dport", str(L.COROSYNC_PORT)]
    return [(L.netns(n), ["to", L.IP[other], *rule]), (L.netns(other), ["to", L.IP[n], *rule])]


def set_cluster_cut(n: str, on: bool) -> None:
    """Cut (or restore) corosync between node n and every other node; n keeps reaching Ceph
    (and Ceph n): a broken cluster network beside a healthy storage network."""
    for other in L.NODES:
        if other == n:
            continue
        for ns, rule in _cut_rules(n, other):
            if on:
                run(["ip", "-n", ns, "route", "replace", "blackhole", f"{L.NET}.0/24", "table", _CUT_TABLE])
                run(["ip", "-n", ns, "rule", "add", *rule, "table", _CUT_TABLE, "prio", _CUT_PRIO])
            else:
                # every copy of the rule (a cut applied twice), then nothing is left to delete
                while run(["ip", "-n", ns, "rule", "del", *rule, "table", _CUT_TABLE], check=False).returncode == 0:
                    pass


def cuts() -> list:
    """Nodes cut off: unplugged, or with corosync cut."""
    out = []
    for n in L.NODES:
        rules = run(["ip", "-n", L.netns(n), "rule", "show", "table", _CUT_TABLE], check=False).stdout
        if not port_up(n):
            out.append(f"{n} unplugged")
        elif rules.strip():
            out.append(f"{n} cluster network cut")
    return out


def heal() -> None:
    for n in L.NODES:
        set_port(n, True)
        set_cluster_cut(n, False)


# QEMU's migration stream uses ports 49152-49215 (libvirt's default range): 49152/0xffc0
_MIGRATION_PORTS = ("49152", "0xffc0")


def set_migration_throttle(node: str, on: bool) -> None:
    """Throttle (or free) the live-migration data a node sends to ~1 KB/s, leaving every
    other packet alone (corosync, libvirt, Ceph): a migration that cannot finish in time."""
    ns = ["ip", "netns", "exec", L.netns(node), "tc"]
    run(ns + ["qdisc", "del", "dev", "eth0", "root"], check=False)
    if not on:
        return
    # htb (this kernel has no prio qdisc): everything in an unthrottled class but migration
    run(ns + ["qdisc", "add", "dev", "eth0", "root", "handle", "1:", "htb", "default", "10"])
    run(ns + ["class", "add", "dev", "eth0", "parent", "1:", "classid", "1:10", "htb", "rate", "10gbit"])
    run(ns + ["class", "add", "dev", "eth0", "parent", "1:", "classid", "1:30", "htb",
              "rate", "8kbit", "ceil", "8kbit"])
    run(ns + ["filter", "add", "dev", "eth0", "parent", "1:", "protocol", "ip", "u32",
              "match", "ip", "dport", *_MIGRATION_PORTS, "flowid", "1:30"])

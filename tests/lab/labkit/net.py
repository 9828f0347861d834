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
    for part in (*L.NODES, "ceph"):
        # the veth is born inside the switch and its peer moved straight into the part's
        # namespace: the lab's addresses never exist in the root namespace
        port = L.switch_port(part)
        run(["ip", "-n", L.SWITCH_NS, "link", "add", port, "type", "veth",
             "peer", "name", "eth0", "netns", L.netns(part)])
        run(["ip", "-n", L.SWITCH_NS, "link", "set", port, "master", L.BRIDGE, "up"])
        run(["ip", "-n", L.netns(part), "addr", "add", f"{L.IP[part]}/24", "dev", "eth0"])
        run(["ip", "-n", L.netns(part), "link", "set", "eth0", "up"])
    for n in L.NODES:
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


def set_partition(on: bool) -> None:
    """Cut (or restore) the traffic between the nodes; both keep reaching Ceph.

    Bridge ports marked isolated cannot talk to each other but still reach every other
    port, which is exactly a broken cluster network beside a healthy storage network.
    """
    for n in L.NODES:
        run(["bridge", "-n", L.SWITCH_NS, "link", "set", "dev", L.switch_port(n),
             "isolated", "on" if on else "off"])


def partitioned() -> bool:
    out = run(["bridge", "-n", L.SWITCH_NS, "-d", "link", "show", "dev",
               L.switch_port(L.NODES[0])]).stdout
    return "isolated on" in out


def set_port(part: str, up: bool) -> None:
    """Unplug (or plug back) one part's cable."""
    run(["ip", "-n", L.SWITCH_NS, "link", "set", L.switch_port(part), "up" if up else "down"])


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

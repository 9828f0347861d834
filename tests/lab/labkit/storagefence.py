"""Storage fencing on the lab's cluster: fence_rbdvm devices (one per hypervisor, unfencing)
that fencing levels make the only way to fence either hypervisor, and the self-check looping
on both. The lab's power-fence devices stay configured: unused for the hypervisors, the
observer's own (it runs no VM, so there is nothing to fence off its storage)."""

import json

from . import ceph, node, ops
from . import layout as L
from .procs import wait_for

N1 = L.HYPERVISORS[0]


def host_entry(n: str) -> str:
    """What fencing node n puts on the blocklist: every client of its address."""
    return f"{L.IP[n]}:0/0"


def blocklisted() -> list:
    """The OSD blocklist's entries (IP:PORT/NONCE)."""
    out = ceph.admin("osd", "blocklist", "ls", "--format", "json").stdout.strip()
    # Ceph prints the entries, then a second (range) list: "[...][]"
    return [e["addr"] for e in json.JSONDecoder().raw_decode(out or "[]")[0]]


def fenced_hosts() -> list:
    listed = blocklisted()
    return sorted(n for n in L.NODES if host_entry(n) in listed)


def unfence_all() -> None:
    for n in L.NODES:
        ceph.admin("osd", "blocklist", "rm", host_entry(n), check=False)


def enable() -> None:
    for n in L.HYPERVISORS:
        ops.on(N1, "pcs", "stonith", "create", f"sfence-{n}", "fence_rbdvm", f"pcmk_host_list={n}",
               "pcmk_reboot_action=off",
               "op", "monitor", "interval=60s", "meta", "provides=unfencing")
        ops.on(N1, "pcs", "stonith", "level", "add", "1", n, f"sfence-{n}")
    if not wait_for(60, lambda: all(ops.resource_node(N1, f"sfence-{n}") for n in L.HYPERVISORS)):
        raise AssertionError("the fence_rbdvm devices did not start")
    for n in L.HYPERVISORS:
        node.start_fence_check(n)


def disable() -> None:
    live = N1 if node.REG.alive(f"pacemakerd-{N1}") else L.HYPERVISORS[1]
    for n in L.HYPERVISORS:
        node.stop_fence_check(n)
        ops.on(live, "pcs", "stonith", "level", "clear", "target", n, check=False)
        ops.on(live, "pcs", "stonith", "delete", f"sfence-{n}", check=False)
    unfence_all()

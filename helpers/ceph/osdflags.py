"""Keeping Ceph from rebalancing while a hyperconverged node reboots: the `noout` flag on
the node's CRUSH host (its OSDs are not marked out while down, so no data moves), and the
cluster's health that decides whether that is safe. Every call is a monitor command, as a
Ceph user that may read the cluster and set or unset exactly that flag (docs/day-two.md)."""

import json

from ..core import timeouts
from .session import Session, mon_command

NOOUT = "noout"
# the health check a host's noout raises: what maintenance itself does (whose host it is
# comes from the OSD map), not a cluster in trouble
MAINTENANCE_CHECKS = ("OSD_FLAGS",)


def health(session: Session) -> tuple:
    """(status, {check: summary}) as `ceph health` reports them."""
    report = json.loads(mon_command(session, {"prefix": "health", "format": "json"}, "reading the cluster's health"))
    checks = {code: (c.get("summary") or {}).get("message", "") for code, c in (report.get("checks") or {}).items()}
    return report.get("status", "HEALTH_UNKNOWN"), checks


def host_osds(session: Session, host: str, timeout: float = timeouts.MON_COMMAND, up_only: bool = False) -> list:
    """Ids of the OSDs under CRUSH host `host` ([] if no host of that name); `up_only`: those
    the OSD map shows up."""
    tree = json.loads(mon_command(session, {"prefix": "osd tree", "format": "json"}, "reading the OSD tree", timeout))
    by_id = {n["id"]: n for n in tree.get("nodes", [])}
    for n in tree.get("nodes", []):
        if n.get("type") == "host" and n.get("name") == host:
            osds = [by_id.get(c, {}) for c in n.get("children", [])]
            return sorted(o["id"] for o in osds if o.get("type") == "osd"
                          and (not up_only or o.get("status") == "up"))
    return []


def flagged_hosts(session: Session) -> dict:
    """{CRUSH host: [its group flags]} as the OSD map holds them."""
    dump = json.loads(mon_command(session, {"prefix": "osd dump", "format": "json"}, "reading the OSD map"))
    return {name: sorted(flags) for name, flags in (dump.get("crush_node_flags") or {}).items() if flags}


def set_noout(session: Session, host: str) -> None:
    mon_command(session, {"prefix": "osd set-group", "flags": NOOUT, "who": [host]},
                f"setting noout on the OSDs of host {host}")


def unset_noout(session: Session, host: str) -> None:
    mon_command(session, {"prefix": "osd unset-group", "flags": NOOUT, "who": [host]},
                f"clearing noout on the OSDs of host {host}")

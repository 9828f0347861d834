"""Whether the data of a pool is degraded: some of its placement groups have fewer copies
than the pool's size (an OSD is down), or cannot serve I/O, as the monitors' health report
names them. Per pool, not per image: on a SEAPATH cluster (as many replicas as hypervisors,
one OSD host per hypervisor) every placement group has a copy on every host, so an OSD down
degrades every VM of the pool alike. One monitor command whatever the number of VMs."""

import re

from ..core.errors import RbdvmError
from .session import Session, mon_command

OK, DEGRADED, UNKNOWN = "ok", "degraded", "unknown"
# the health checks that name placement groups short of copies or out of service
PG_CHECKS = ("PG_DEGRADED", "PG_AVAILABILITY", "PG_DAMAGED", "PG_DEGRADED_FULL", "PG_RECOVERY_FULL",
             "PG_BACKFILL_FULL", "PG_NOT_DEEP_SCRUBBED_SKIP")
_PG = re.compile(r"^pg (\d+)\.[0-9a-f]+ ")


def pool_health(session: Session) -> str:
    """OK, DEGRADED (a placement group of the session's pool is named), or UNKNOWN (the
    report could not be read, or it lists only part of the placement groups and none of
    this pool's among them)."""
    try:
        pool_id = session.cluster.pool_lookup(session.target.pool)
        report = mon_command(session, {"prefix": "health", "detail": "detail", "format": "json"},
                             "reading the cluster's health")
        return judge(report, pool_id)
    except (RbdvmError, ValueError):
        return UNKNOWN


def judge(report_json: str, pool_id: int) -> str:
    import json

    checks = (json.loads(report_json).get("checks") or {})
    partial = False
    for code in PG_CHECKS:
        check = checks.get(code)
        if not check:
            continue
        named = [m.group(1) for m in (_PG.match(d.get("message", "")) for d in check.get("detail") or []) if m]
        if str(pool_id) in named:
            return DEGRADED
        count = (check.get("summary") or {}).get("count")
        partial = partial or not named or (isinstance(count, int) and count > len(named))
    return UNKNOWN if partial else OK

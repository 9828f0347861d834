"""Ceph-aware failover at start: before a start reads anything of the VM from Ceph, the OSDs
of every node Pacemaker confirms fenced (ocf/fenced.py) are marked down
(helpers/ceph/fencedosds.py). A VM restarted after its node died would otherwise hang on its
first read, and so would this very start, until Ceph's own heartbeat grace ran out.

An OSD that answers is alive and left alone (helpers/ceph/fencedosds.py).
The usual start costs one crm_mon query (no node offline). Nothing here fails a start:
a node not confirmed fenced is left alone, and a Ceph that refuses or does not answer is
logged and left to its own detection. Bounded by the caller's deadline."""

import time

from rbdvm.helpers.ceph import fencedosds
from rbdvm.helpers.ceph.session import Session
from rbdvm.helpers.core import defaults, timeouts
from rbdvm.helpers.core.errors import RbdvmError
from rbdvm.helpers.core.settings import CephTarget

from . import fenced, hints, log


def mark_down(conf: str, pool: str, until: float) -> list:
    """[(node, [osd ids])] marked down; logs what it did and what it could not do."""
    until = min(until, time.monotonic() + timeouts.FENCE_QUERY + timeouts.CEPH_CONNECT)
    try:
        status = fenced.cluster_status(until)
    except fenced.Unknown as exc:
        log.info(f"Ceph-aware failover: cannot read the cluster's nodes ({exc}); OSDs left to Ceph")
        return []
    done = []
    for node in fenced.offline_nodes(status):
        fence, why = fenced.confirmed(node, until, status)
        if fence is None:
            log.info(f"Ceph-aware failover: not marking the OSDs of {node} down: {why}")
            continue
        target = CephTarget(conf=conf, client_id=defaults.FENCE_CEPH_ID, pool=pool)
        try:
            with Session(target, timeouts.OSD_OP_FENCE_AGENT) as session:
                ids = fencedosds.mark_down(session, node, until)
        except RbdvmError as exc:
            log.warn(f"Ceph-aware failover: could not mark the OSDs of fenced node {node} down "
                     f"({hints.reason(exc)}); Ceph marks them down after its heartbeat grace")
            continue
        if ids:
            log.warn(f"Ceph-aware failover: marked {', '.join(f'osd.{i}' for i in ids)} of {node} down: "
                     f"Pacemaker fenced it ({fence})")
            done.append((node, ids))
    return done

"""migrate_to and migrate_from: a live migration, peer to peer, to the libvirtd of the target
node by the URI core/peer derives from the resource's parameters. The job is followed and
aborted before the operation's timeout; the agent answers by then whatever libvirt does."""

import os
import threading
import time

from rbdvm.helpers.core import events, migstats, peer, timeouts
from rbdvm.helpers.core.bounded import abandoned

from . import basics, definition, domain, history, log, utilization
from .codes import OCF_ERR_CONFIGURED, OCF_ERR_GENERIC, OCF_SUCCESS, AgentError
from .params import Params


def target_uris(p: Params, target: str):
    return peer.libvirt_uri(target, vars(p)), peer.data_uri(target, vars(p))


def migrate_to(p: Params) -> int:
    """Migrate live to the target; a migration that fails goes into the history (one that
    succeeds is recorded by the destination, which has its downtime)."""
    began, t0 = time.time(), time.monotonic()
    try:
        return _migrate_to(p, t0)
    except AgentError as exc:
        target = os.environ.get("OCF_RESKEY_CRM_meta_migrate_target", "")
        history.record(p, events.Event(at=began, kind="migrate", node=history.this_node(), vm=p.vm, ok=False,
                                       took=time.time() - began,
                                       info={"source": history.this_node(), "target": target, "reason": str(exc)}),
                       t0 + basics.op_timeout("migrate_to") - timeouts.AGENT_ANSWER_MARGIN / 2)
        raise


def _migrate_to(p: Params, t0: float) -> int:
    # the agent answers before Pacemaker gives up
    hard_end = t0 + basics.op_timeout("migrate_to") - timeouts.AGENT_ANSWER_MARGIN
    deadline = t0 + basics.op_timeout("migrate_to") - p.migrate_margin
    target = os.environ.get("OCF_RESKEY_CRM_meta_migrate_target")
    if not target:
        raise AgentError(OCF_ERR_CONFIGURED, "migrate_to needs the target node (CRM_meta_migrate_target)")
    name = definition.domain_name(p)
    dest, data_uri = target_uris(p, target)
    conn = basics.connect(p, min(deadline, t0 + timeouts.AGENT_LIBVIRT))
    try:
        try:
            dom = domain.bounded(deadline, domain.lookup, conn, name)
            running = dom is not None and domain.bounded(deadline, domain.state, dom) in domain.RUNNING_STATES
        except (domain.Error, domain.Hung) as exc:
            raise AgentError(OCF_ERR_GENERIC, f"libvirt failed before migrating {name}: {basics.why(exc)}") from None
        if not running:
            raise AgentError(OCF_ERR_GENERIC, f"domain {name} does not run here: nothing to migrate")
        _migrate(p, dom, name, target, dest, data_uri, deadline, hard_end)
        log.info(f"domain {name} migrated to {target} in {time.monotonic() - t0:.2f}s")
        utilization.forget_here()
        return OCF_SUCCESS
    finally:
        domain.close(conn, hard_end)


def _migration_settings(p: Params, data_uri: str):
    """libvirt's typed parameters and flags for this resource's live migration."""
    lv = domain.libvirt
    params = {}
    if data_uri:
        params[lv.VIR_MIGRATE_PARAM_URI] = data_uri
    if p.migration_speed:
        params[lv.VIR_MIGRATE_PARAM_BANDWIDTH] = p.migration_speed
    flags = lv.VIR_MIGRATE_LIVE | lv.VIR_MIGRATE_PEER2PEER | lv.VIR_MIGRATE_ABORT_ON_ERROR
    if p.migration_auto_converge:
        flags |= lv.VIR_MIGRATE_AUTO_CONVERGE
    return params, flags


def _migrate(p: Params, dom, name: str, target: str, dest: str, data_uri: str,
             deadline: float, hard_end: float) -> None:
    """Run the migration job; abort it at `deadline`; answer by `hard_end` whatever libvirt
    and both QEMUs do (every query is bounded: a stopped QEMU blocks its monitor)."""

    params, flags = _migration_settings(p, data_uri)
    log.info(f"migrating {name} to {target} ({dest}{', data ' + data_uri if data_uri else ''})")
    outcome = {}

    def run():
        try:
            dom.migrateToURI3(dest, params, flags)
        except domain.Error as exc:
            outcome["error"] = exc.get_error_message()

    worker = threading.Thread(target=run, name="migrate", daemon=True)
    worker.start()
    job, aborted = _MigrationJob(p, dom, name), False
    while worker.is_alive():
        worker.join(0.5)
        if not worker.is_alive():
            break
        now = time.monotonic()
        if now >= hard_end:
            abandoned.append("migrateToURI3")
            # the job ignored the abort, or libvirt does not answer (a hung QEMU on either
            # side): answer now, state unknown
            raise AgentError(OCF_ERR_GENERIC, f"live migration of {name} to {target} did not end "
                             f"{'after being aborted' if aborted else 'and libvirt did not answer'}; "
                             "the cluster recovers the VM (stop on both nodes)")
        quick = min(hard_end, now + 2)
        job.follow(now, quick)
        if now >= deadline and not aborted:
            log.warn(f"migration of {name} not done {p.migrate_margin}s before the timeout: aborting")
            aborted = True
            job.abort(quick)
    if aborted or "error" in outcome:
        why = "aborted before the operation timed out" if aborted else outcome["error"]
        raise AgentError(OCF_ERR_GENERIC, f"live migration of {name} to {target} failed: {why}; "
                                          "it keeps running here")


class _MigrationJob:
    """The running migration job, seen from the source: its downtime is set once it starts,
    its progress logged every 2 s; every query bounded (a stopped QEMU blocks its monitor)."""

    def __init__(self, p: Params, dom, name: str):
        self.p, self.dom, self.name = p, dom, name
        self.downtime_set, self.said = not p.migration_downtime, 0.0

    def follow(self, now: float, until: float) -> None:
        try:
            if not self.downtime_set and \
                    domain.bounded(until, self.dom.jobInfo)[0] != domain.libvirt.VIR_DOMAIN_JOB_NONE:
                domain.bounded(until, self.dom.migrateSetMaxDowntime, self.p.migration_downtime)
                self.downtime_set = True
            if now - self.said >= 2:
                stats = domain.bounded(until, self.dom.jobStats)
                log.info(f"migration of {self.name}: {stats.get('memory_processed', 0) >> 20} MiB sent, "
                         f"{stats.get('memory_remaining', 0) >> 20} MiB to go")
                self.said = now
        except (domain.Error, domain.Hung) as exc:
            log.debug(f"migration job query: {basics.why(exc)}")

    def abort(self, until: float) -> None:
        try:
            domain.bounded(until, self.dom.abortJob)
        except (domain.Error, domain.Hung) as exc:
            log.warn(f"abort of the migration of {self.name}: {basics.why(exc)}")


def _measured(dom, until: float) -> dict | None:
    """The incoming migration's completed job (migstats.summary), or None."""
    try:
        # KEEP_COMPLETED: reading them would otherwise clear them for `rbdvm migrate`
        lv = domain.libvirt
        return migstats.summary(domain.bounded(until, dom.jobStats, lv.VIR_DOMAIN_JOB_STATS_COMPLETED
                                               | lv.VIR_DOMAIN_JOB_STATS_KEEP_COMPLETED))
    except (domain.Error, domain.Hung) as exc:
        log.debug(f"no statistics of the migration: {basics.why(exc)}")
        return None


def _record_migration(p: Params, stats: dict | None, end: float) -> None:
    """The history's migration: recorded by the destination, which has the guest's downtime."""
    node = history.this_node()
    info = {"source": os.environ.get("OCF_RESKEY_CRM_meta_migrate_source", ""), "target": node}
    took = None
    if stats:
        info.update(downtime_ms=stats["downtime_ms"], transferred_bytes=stats["transferred_bytes"])
        took = stats["total_ms"] / 1000
    # libvirt's total is the migration's own: it began that long before it completed here
    at = time.time() - (took or 0.0)
    history.record(p, events.Event(at=at, kind="migrate", node=node, vm=p.vm, took=took, info=info), end)


def migrate_from(p: Params) -> int:
    name = definition.domain_name(p)
    t0 = time.monotonic()
    end = t0 + basics.op_timeout("migrate_from") - timeouts.AGENT_ANSWER_MARGIN
    deadline = min(end, t0 + timeouts.MIGRATE_FROM_APPEAR)
    definition.check_stored(p, osd_op_timeout=max(1, min(10, int((end - t0) / 4))))
    conn = basics.connect(p, deadline)
    try:
        while True:
            try:
                dom = domain.bounded(deadline, domain.lookup, conn, name)
                if dom is not None and domain.bounded(deadline, domain.state, dom) in domain.RUNNING_STATES:
                    stats = _measured(dom, deadline)
                    log.info(f"domain {name} runs here after migration"
                             + (f": {migstats.describe(stats)}" if stats else ""))
                    definition.remember_name(p, name)
                    utilization.apply(p, domain.bounded(deadline, dom.XMLDesc, 0), end)
                    _record_migration(p, stats, end)
                    return OCF_SUCCESS
            except (domain.Error, domain.Hung) as exc:
                raise AgentError(OCF_ERR_GENERIC,
                                 f"libvirt failed after the migration of {name}: {basics.why(exc)}") from None
            if time.monotonic() >= deadline:
                raise AgentError(OCF_ERR_GENERIC, f"domain {name} does not run here after the migration")
            time.sleep(0.2)
    finally:
        domain.close(conn, end)

"""ocf:rbdvm:VirtualDomain: the actions.

Each action imports what it needs when it runs: monitor (every few seconds, on every node)
loads libvirt and the standard library only, never Ceph (and lxml only for a config=
resource, whose domain name is read from its file through the one hardened parser).
"""

import os
import sys
import time

from rbdvm.helpers.core import peer, timeouts

from . import log
from .codes import (
    OCF_ERR_ARGS,
    OCF_ERR_CONFIGURED,
    OCF_ERR_GENERIC,
    OCF_ERR_INSTALLED,
    OCF_ERR_UNIMPLEMENTED,
    OCF_NOT_RUNNING,
    OCF_SUCCESS,
    AgentError,
)
from .params import ACTIONS, Params

USAGE = "usage: VirtualDomain {start|stop|monitor|status|migrate_to|migrate_from|meta-data|validate-all|usage}"


def op_timeout(action: str) -> float:
    """Seconds this operation may take: CRM_meta_timeout (ms), else the declared default."""
    raw = os.environ.get("OCF_RESKEY_CRM_meta_timeout")
    if raw and raw.isdigit() and int(raw) > 0:
        return int(raw) / 1000
    return next(a.timeout for a in ACTIONS if a.name == action)




def _why(exc) -> str:
    return exc.get_error_message() if hasattr(exc, "get_error_message") else str(exc)


def _conn(p: Params, until: float):
    from . import domain

    try:
        return domain.open_conn(p.hypervisor, until=until)
    except (domain.Error, domain.Hung) as exc:
        raise AgentError(OCF_ERR_GENERIC, f"cannot reach libvirtd at {p.hypervisor}: {_why(exc)}") from None


def _name(p: Params) -> str:
    from .definition import domain_name

    return domain_name(p)


def _known_name(p: Params):
    """The domain's name for stop and monitor; None when config= names a file that is gone
    and no start here remembered its name (so nothing was started here since boot)."""
    try:
        return _name(p)
    except AgentError as exc:
        if exc.code != OCF_ERR_INSTALLED:
            raise
        log.info(f"{exc}; no domain of it was started on this node since boot")
        return None


# ------------------------------------------------------------------ monitor
def monitor(p: Params) -> int:
    t0 = time.monotonic()
    name = _known_name(p)
    if name is None:
        return OCF_NOT_RUNNING
    try:
        from . import domain
    except ImportError as exc:
        return _monitor_from_process_table(name, f"the libvirt Python bindings cannot be loaded ({exc})",
                                           missing=OCF_ERR_INSTALLED)
    until = t0 + min(timeouts.AGENT_LIBVIRT, op_timeout("monitor") / 2)
    try:
        st = domain.bounded(until, domain.query_state, p.hypervisor, name)
        if st in domain.RUNNING_STATES:
            st = _confirmed_running(p, name, st, until)
    except (domain.Error, domain.Hung) as exc:
        # libvirtd down, restarting or hung: QEMU runs on without it
        return _monitor_from_process_table(name, f"libvirtd at {p.hypervisor} did not answer ({_why(exc)})")
    if st is None or st == domain.libvirt.VIR_DOMAIN_SHUTOFF:
        return OCF_NOT_RUNNING
    if st == domain.libvirt.VIR_DOMAIN_CRASHED:
        log.exit_reason(f"domain {name} crashed")
        return OCF_ERR_GENERIC
    if st in domain.RUNNING_STATES:
        return OCF_SUCCESS
    log.debug(f"domain {name} is {domain.STATE_NAMES.get(st, st)}")
    return OCF_NOT_RUNNING


def _confirmed_running(p: Params, name: str, st: int, until: float) -> int:
    """libvirt's "running", checked against the process table. A libvirtd that has just
    restarted lists its domains as running until its reconnect thread finds their QEMU gone
    (seen on the lab: "running" 60 ms after a restart, for a QEMU the agent had ended): ask
    again until both agree, for a few seconds at most (its reconnect takes milliseconds); if
    they still disagree (a QEMU this agent cannot see, e.g. in another PID namespace),
    libvirt's answer stands."""
    from . import domain, qemuproc

    until = min(until, time.monotonic() + timeouts.MONITOR_RECHECK_FOR)
    while st in domain.RUNNING_STATES and not qemuproc.running(name):
        if time.monotonic() + timeouts.MONITOR_RECHECK_EVERY >= until:
            log.warn(f"libvirt reports domain {name} running but no QEMU process of it was found")
            break
        time.sleep(timeouts.MONITOR_RECHECK_EVERY)
        st = domain.bounded(until, domain.query_state, p.hypervisor, name)
    return st


def _monitor_from_process_table(name: str, why: str, missing: int = OCF_NOT_RUNNING) -> int:
    from . import qemuproc

    running = qemuproc.running(name)
    log.warn(f"{why}; QEMU process of {name} {'found' if running else 'not found'}")
    if running:
        return OCF_SUCCESS
    if missing != OCF_NOT_RUNNING:
        raise AgentError(missing, why)
    return OCF_NOT_RUNNING


# ------------------------------------------------------------------ start
def start(p: Params) -> int:
    from . import domain

    t0 = time.monotonic()
    budget = op_timeout("start")
    end = t0 + budget - timeouts.AGENT_ANSWER_MARGIN
    name = _name(p)
    conn = _conn(p, end)
    try:
        try:
            dom = domain.bounded(end, domain.lookup, conn, name)
            st = domain.bounded(end, domain.state, dom) if dom is not None else None
            if st in domain.RUNNING_STATES:
                log.info(f"domain {name} already runs here")
                return OCF_SUCCESS
            if st == domain.libvirt.VIR_DOMAIN_CRASHED:
                # this node's own crashed QEMU still holds the disks open: it is no writer
                # elsewhere, and must go before the guard looks
                log.warn(f"domain {name} crashed here: destroying it before starting it again")
                domain.bounded(end, dom.destroy)
        except (domain.Error, domain.Hung) as exc:
            raise AgentError(OCF_ERR_GENERIC, f"libvirt failed before starting {name}: {_why(exc)}") from None
        # keep a few seconds for libvirt to create the domain after the guard
        xml = _guarded_create(p, conn, name, t0 + budget - max(5.0, budget * 0.1), end)
        log.info(f"domain {name} started in {time.monotonic() - t0:.2f}s")
        from .definition import remember_name

        remember_name(p, name)
        _utilization(p, xml, end)
        return OCF_SUCCESS
    finally:
        domain.close(conn, end)


def _guarded_create(p: Params, conn, name: str, guard_deadline: float, end: float) -> str:
    """Read the definition, then, inside the split-brain guard's critical section: wait for
    the disks to be free, create the domain, wait for its disk watch. Returns the XML."""
    import rados
    import rbd

    from rbdvm.helpers.core import domainxml
    from rbdvm.helpers.core.errors import RbdvmError

    from . import domain, guard, hints
    from .definition import load_xml

    session = _ceph_session(p)
    try:
        try:
            xml = load_xml(p, session)
            root = domainxml.parse(xml, "the domain XML")
        except RbdvmError as exc:
            raise AgentError(OCF_ERR_CONFIGURED, hints.reason(exc)) from None
        if (root.findtext("name") or "").strip() != name:
            raise AgentError(OCF_ERR_CONFIGURED, f"the definition of {name} names the domain "
                                             f"{root.findtext('name')!r}: refusing to start it")
        try:
            with guard.StartSection(p.ceph_conf, p.ceph_id, guard.rbd_disks(root), session,
                                    hold_until=end) as section:
                marks = [time.monotonic()]
                section.lock(guard_deadline)
                marks.append(time.monotonic())
                section.wait_free(guard_deadline)
                marks.append(time.monotonic())
                try:
                    dom = domain.bounded(end, conn.createXML, xml, 0)   # transient: nothing stays defined
                except domain.Hung as exc:
                    section.keep_locks()
                    raise AgentError(OCF_ERR_GENERIC, f"libvirt did not start {name} in time ({exc}); "
                                                  "the stop that follows ends it if it came up") from None
                except domain.Error as exc:
                    raise AgentError(OCF_ERR_GENERIC,
                                     f"libvirt could not start {name}: {exc.get_error_message()}") from None
                marks.append(time.monotonic())
                section.wait_visible(end)
                marks.append(time.monotonic())
                log.debug("critical section: lock {:.1f} ms, disks free {:.1f} ms, create {:.1f} ms, "
                          "watch visible {:.1f} ms".format(*((b - a) * 1000 for a, b in zip(marks, marks[1:]))))
        except RbdvmError as exc:
            raise guard.ceph_error(exc) from None
        except (rados.Error, rbd.Error) as exc:
            raise AgentError(OCF_ERR_GENERIC, f"split-brain guard cannot check the disks' clients: {exc}") from None
    finally:
        if session is not None:
            session.close()
    try:
        st = domain.bounded(end, domain.state, dom)
    except (domain.Error, domain.Hung) as exc:
        raise AgentError(OCF_ERR_GENERIC, f"libvirt did not say whether {name} runs: {_why(exc)}") from None
    if st not in domain.RUNNING_STATES:
        raise AgentError(OCF_ERR_GENERIC, f"domain {name} is {domain.STATE_NAMES.get(st)} right after start")
    return xml


def _ceph_session(p: Params):
    """One Ceph session for the definition and the guard (vm=); None for config=."""
    if not p.vm:
        return None
    from rbdvm.helpers.ceph.session import Session
    from rbdvm.helpers.core.errors import RbdvmError

    from . import hints
    from .definition import ceph_target

    try:
        return Session(ceph_target(p)).__enter__()
    except RbdvmError as exc:
        raise AgentError(OCF_ERR_GENERIC, f"cannot read VM {p.vm} from Ceph: {hints.reason(exc)}") from None


# ------------------------------------------------------------------ stop
def stop(p: Params) -> int:
    """Stop through libvirt (graceful, then destroy); whatever libvirt could not do (dead,
    hung, or a destroy that would overrun) is finished from the process table."""
    t0 = time.monotonic()
    end = t0 + op_timeout("stop") - timeouts.AGENT_ANSWER_MARGIN
    name = _known_name(p)
    if name is None:
        return OCF_SUCCESS
    try:
        from . import domain
    except ImportError as exc:
        log.warn(f"the libvirt Python bindings cannot be loaded ({exc}): stopping {name} from the process table")
        return _stop_from_process_table(name, end)
    try:
        _stop_with_libvirt(p, name, t0, end)
    except (domain.Error, domain.Hung) as exc:
        log.warn(f"libvirt could not stop {name} ({_why(exc)}): ending its QEMU from the process table")
    return _stop_from_process_table(name, end)


def _stop_with_libvirt(p: Params, name: str, t0: float, end: float) -> None:
    from . import domain

    lv = domain.libvirt
    kill_at = end - timeouts.AGENT_KILL_RESERVE
    graceful_until = min(end - p.stop_margin, kill_at)
    conn = domain.open_conn(p.hypervisor, until=min(kill_at, t0 + timeouts.AGENT_LIBVIRT))
    try:
        quick = min(kill_at, time.monotonic() + timeouts.AGENT_LIBVIRT)
        dom = domain.bounded(quick, domain.lookup, conn, name)
        alive = domain.RUNNING_STATES | {lv.VIR_DOMAIN_CRASHED}
        if dom is None or domain.bounded(quick, domain.state, dom) not in alive:
            return
        if not p.force_stop and graceful_until > time.monotonic():
            try:
                domain.bounded(graceful_until, dom.shutdownFlags, domain.SHUTDOWN_MODES[p.shutdown_mode])
                log.info(f"asked {name} to shut down ({p.shutdown_mode or 'default mode'}), "
                         f"waiting up to {graceful_until - time.monotonic():.0f}s")
                while time.monotonic() < graceful_until and not domain.bounded(graceful_until, domain.gone, conn, name):
                    time.sleep(0.2)
            except domain.Hung:
                pass
            except domain.Error as exc:
                if not domain.is_missing(exc):
                    log.warn(f"graceful shutdown of {name} failed: {exc.get_error_message()}")
        if domain.bounded(kill_at, domain.gone, conn, name):
            log.info(f"domain {name} stopped in {time.monotonic() - t0:.2f}s")
            return
        log.warn(f"domain {name} did not shut down gracefully: destroying it")
        try:
            domain.bounded(kill_at, dom.destroy)
        except domain.Error as exc:
            if not domain.is_missing(exc):
                log.warn(f"libvirt could not destroy {name}: {exc.get_error_message()}")
        while not domain.bounded(kill_at, domain.gone, conn, name):
            if time.monotonic() >= kill_at:
                raise domain.Hung(f"domain {name} still runs after destroy")
            time.sleep(0.1)
        log.info(f"domain {name} destroyed, stopped in {time.monotonic() - t0:.2f}s")
    finally:
        domain.close(conn, end)


def _stop_from_process_table(name: str, end: float) -> int:
    """Success only once no QEMU of the domain is alive in this node's network namespace:
    SIGTERM (QEMU flushes and exits), then SIGKILL at the last moment that leaves time to
    see it gone."""
    from . import qemuproc

    if qemuproc.running(name):
        now = time.monotonic()
        kill_at = max(now, end - timeouts.AGENT_KILL_RESERVE)
        survivors = qemuproc.end(name, term_until=min(now + timeouts.AGENT_LIBVIRT, kill_at), until=end)
        if survivors:
            raise AgentError(OCF_ERR_GENERIC, f"QEMU of {name} (pid {', '.join(map(str, survivors))}) "
                                          "survived SIGKILL: failing so the cluster fences")
        log.info(f"QEMU of {name} ended from the process table")
    _forget_utilization()
    return OCF_SUCCESS


# ------------------------------------------------------------------ migration
def _target_uris(p: Params, target: str):
    return peer.libvirt_uri(target, vars(p)), peer.data_uri(target, vars(p))


def migrate_to(p: Params) -> int:
    from . import domain

    t0 = time.monotonic()
    # the agent answers before Pacemaker gives up
    hard_end = t0 + op_timeout("migrate_to") - timeouts.AGENT_ANSWER_MARGIN
    deadline = t0 + op_timeout("migrate_to") - p.migrate_margin
    target = os.environ.get("OCF_RESKEY_CRM_meta_migrate_target")
    if not target:
        raise AgentError(OCF_ERR_CONFIGURED, "migrate_to needs the target node (CRM_meta_migrate_target)")
    name = _name(p)
    dest, data_uri = _target_uris(p, target)
    conn = _conn(p, min(deadline, t0 + timeouts.AGENT_LIBVIRT))
    try:
        try:
            dom = domain.bounded(deadline, domain.lookup, conn, name)
            running = dom is not None and domain.bounded(deadline, domain.state, dom) in domain.RUNNING_STATES
        except (domain.Error, domain.Hung) as exc:
            raise AgentError(OCF_ERR_GENERIC, f"libvirt failed before migrating {name}: {_why(exc)}") from None
        if not running:
            raise AgentError(OCF_ERR_GENERIC, f"domain {name} does not run here: nothing to migrate")
        _migrate(p, dom, name, target, dest, data_uri, deadline, hard_end)
        log.info(f"domain {name} migrated to {target} in {time.monotonic() - t0:.2f}s")
        _forget_utilization()
        return OCF_SUCCESS
    finally:
        domain.close(conn, hard_end)


def _migration_settings(p: Params, data_uri: str):
    """libvirt's typed parameters and flags for this resource's live migration."""
    from . import domain

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
    import threading

    from . import domain

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
            from rbdvm.helpers.core.bounded import abandoned

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
        from . import domain

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
            log.debug(f"migration job query: {_why(exc)}")

    def abort(self, until: float) -> None:
        from . import domain

        try:
            domain.bounded(until, self.dom.abortJob)
        except (domain.Error, domain.Hung) as exc:
            log.warn(f"abort of the migration of {self.name}: {_why(exc)}")


def migrate_from(p: Params) -> int:
    from . import domain
    from .definition import check_stored

    name = _name(p)
    t0 = time.monotonic()
    end = t0 + op_timeout("migrate_from") - timeouts.AGENT_ANSWER_MARGIN
    deadline = min(end, t0 + timeouts.MIGRATE_FROM_APPEAR)
    check_stored(p, osd_op_timeout=max(1, min(10, int((end - t0) / 4))))
    conn = _conn(p, deadline)
    try:
        while True:
            try:
                dom = domain.bounded(deadline, domain.lookup, conn, name)
                if dom is not None and domain.bounded(deadline, domain.state, dom) in domain.RUNNING_STATES:
                    log.info(f"domain {name} runs here after migration")
                    from .definition import remember_name

                    remember_name(p, name)
                    _utilization(p, domain.bounded(deadline, dom.XMLDesc, 0), end)
                    return OCF_SUCCESS
            except (domain.Error, domain.Hung) as exc:
                raise AgentError(OCF_ERR_GENERIC,
                                 f"libvirt failed after the migration of {name}: {_why(exc)}") from None
            if time.monotonic() >= deadline:
                raise AgentError(OCF_ERR_GENERIC, f"domain {name} does not run here after the migration")
            time.sleep(0.2)
    finally:
        domain.close(conn, end)


# ------------------------------------------------------------------ utilization
def _utilization(p: Params, xml: str, until: float) -> None:
    """cpu / hv_memory from the definition, written to the CIB only when they changed."""
    from .utilization import update

    rsc = os.environ.get("OCF_RESOURCE_INSTANCE")
    if rsc and (p.autoset_utilization_cpu or p.autoset_utilization_hv_memory):
        update(rsc, xml, cpu=p.autoset_utilization_cpu, hv_memory=p.autoset_utilization_hv_memory,
               until=min(until, time.monotonic() + 10))


def _forget_utilization() -> None:
    rsc = os.environ.get("OCF_RESOURCE_INSTANCE")
    if rsc:
        from .utilization import forget

        forget(rsc)


# ------------------------------------------------------------------ validate-all
def validate(p: Params) -> int:
    from .definition import load_xml

    if "://" not in p.hypervisor:
        raise AgentError(OCF_ERR_CONFIGURED, f"hypervisor={p.hypervisor!r} is not a libvirt URI")
    try:
        xml = load_xml(p)
    except AgentError as exc:
        if exc.code == OCF_ERR_INSTALLED:   # a file that is missing is a configuration error here
            exc.code = OCF_ERR_CONFIGURED
        raise
    from rbdvm.helpers.core import domainxml
    from rbdvm.helpers.core.errors import UsageError

    from . import hints

    try:
        root = domainxml.parse(xml, "the domain XML")
    except UsageError as exc:
        raise AgentError(OCF_ERR_CONFIGURED, hints.reason(exc)) from None
    if p.vm and root.findtext("name") != p.vm:
        raise AgentError(OCF_ERR_CONFIGURED, f"the XML of VM {p.vm} names the domain {root.findtext('name')!r}")
    return OCF_SUCCESS


def meta_data(_p=None) -> int:
    from .metadata import metadata_xml

    sys.stdout.write(metadata_xml())
    return OCF_SUCCESS


ACTIONS_TABLE = {"start": start, "stop": stop, "monitor": monitor, "status": monitor,
                 "migrate_to": migrate_to, "migrate_from": migrate_from, "validate-all": validate}


# a failing stop means fencing, a failing probe means recovery: these take bad optional
# parameters with a warning; start, migrations and validate-all refuse them
LENIENT = {"stop", "monitor", "status"}


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    action = argv[0] if argv else ""
    if action == "meta-data":
        return meta_data()
    if action in ("usage", "help"):
        print(USAGE)
        return OCF_SUCCESS
    if action not in ACTIONS_TABLE:
        print(USAGE, file=sys.stderr)
        return OCF_ERR_UNIMPLEMENTED if action else OCF_ERR_ARGS
    try:
        p = Params(strict=action not in LENIENT)
    except AgentError as exc:
        log.exit_reason(str(exc))
        return OCF_ERR_CONFIGURED
    for problem in p.ignored:
        log.warn(f"{problem} (a {action} does not fail for it; validate-all and start do)")
    code = _run(action, p)
    from rbdvm.helpers.core.bounded import abandoned

    if abandoned:
        # a thread is still blocked in libvirt (or DNS): leave without waiting for it
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code


def _run(action: str, p: Params) -> int:
    try:
        return ACTIONS_TABLE[action](p)
    except AgentError as exc:
        if action == "stop" and exc.code == OCF_ERR_CONFIGURED:
            exc.code = OCF_ERR_GENERIC   # a stop that cannot be done must not look like a config error
        log.exit_reason(str(exc))
        return exc.code
    except Exception as exc:  # noqa: BLE001 - the cluster gets a reason, never a traceback
        reason = f"{action} failed unexpectedly: {type(exc).__name__}: {exc}"
        if action in LENIENT:
            return _last_resort(action, p, reason)
        log.exit_reason(reason)
        return OCF_ERR_GENERIC


def _last_resort(action: str, p: Params, reason: str) -> int:
    """An unexpected error in stop or monitor: answer from the process table rather than
    with a failure (a failed probe means recovery, a failed stop means fencing)."""
    log.error(f"{reason}; answering from the process table")
    try:
        name = _known_name(p)
        if name is None:
            return OCF_SUCCESS if action == "stop" else OCF_NOT_RUNNING
        if action == "stop":
            until = time.monotonic() + timeouts.AGENT_KILL_RESERVE + timeouts.AGENT_LIBVIRT
            return _stop_from_process_table(name, until)
        return _monitor_from_process_table(name, reason)
    except AgentError as exc:
        log.exit_reason(str(exc))
        return exc.code
    except Exception as exc:  # noqa: BLE001
        log.exit_reason(f"{reason}; and from the process table: {type(exc).__name__}: {exc}")
        return OCF_ERR_GENERIC

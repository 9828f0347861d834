"""ocf:rbdvm:VirtualDomain: the actions.

Each action imports what it needs when it runs: monitor (every few seconds, on every node)
loads libvirt and the standard library only, never Ceph or lxml.
"""

import os
import sys
import time

from . import log
from .params import (OCF_ERR_ARGS, OCF_ERR_CONFIGURED, OCF_ERR_GENERIC, OCF_ERR_UNIMPLEMENTED,
                     OCF_NOT_RUNNING, OCF_SUCCESS, ACTIONS, ParamError, Params)

USAGE = "usage: VirtualDomain {start|stop|monitor|status|migrate_to|migrate_from|meta-data|validate-all|usage}"


def op_timeout(action: str) -> float:
    """Seconds this operation may take: CRM_meta_timeout (ms), else the declared default."""
    raw = os.environ.get("OCF_RESKEY_CRM_meta_timeout")
    if raw and raw.isdigit() and int(raw) > 0:
        return int(raw) / 1000
    return next(a.timeout for a in ACTIONS if a.name == action)


class Failed(Exception):
    """An action failed: `code` is returned, the message is the exit reason."""

    def __init__(self, code: int, message: str):
        super().__init__(message)
        self.code = code


def _conn(p: Params, read_only: bool = False):
    from . import domain

    try:
        return domain.open_conn(p.hypervisor, read_only)
    except domain.Error as exc:
        raise Failed(OCF_ERR_GENERIC, f"cannot reach libvirtd at {p.hypervisor}: "
                                      f"{exc.get_error_message()}") from None


def _name(p: Params) -> str:
    from .definition import DefinitionError, domain_name

    try:
        return domain_name(p)
    except DefinitionError as exc:
        raise Failed(exc.code, str(exc)) from None


# ------------------------------------------------------------------ monitor
def monitor(p: Params) -> int:
    from . import domain

    name = _name(p)
    try:
        conn = domain.open_conn(p.hypervisor, read_only=True)
        try:
            dom = domain.lookup(conn, name)
            st = domain.state(dom) if dom is not None else None
        finally:
            conn.close()
    except domain.Error as exc:
        # libvirtd down or restarting: QEMU runs on without it, so ask the process table
        running = domain.qemu_running(name)
        log.warn(f"libvirtd at {p.hypervisor} unreachable ({exc.get_error_message()}); "
                 f"QEMU process of {name} {'found' if running else 'not found'}")
        return OCF_SUCCESS if running else OCF_NOT_RUNNING
    if st is None or st == domain.libvirt.VIR_DOMAIN_SHUTOFF:
        return OCF_NOT_RUNNING
    if st == domain.libvirt.VIR_DOMAIN_CRASHED:
        log.exit_reason(f"domain {name} crashed")
        return OCF_ERR_GENERIC
    if st in domain.RUNNING_STATES:
        return OCF_SUCCESS
    log.debug(f"domain {name} is {domain.STATE_NAMES.get(st, st)}")
    return OCF_NOT_RUNNING


# ------------------------------------------------------------------ start
def start(p: Params) -> int:
    from . import domain
    from .definition import DefinitionError, load_xml
    from .guard import GuardRefused, wait_until_free

    t0 = time.monotonic()
    budget = op_timeout("start")
    name = _name(p)
    conn = _conn(p)
    try:
        dom = domain.lookup(conn, name)
        if dom is not None and domain.state(dom) in domain.RUNNING_STATES:
            log.info(f"domain {name} already runs here")
            return OCF_SUCCESS
        session = _ceph_session(p)
        try:
            xml = load_xml(p, session)
            # keep a few seconds for libvirt to create the domain after the guard
            wait_until_free(p.ceph_conf, p.ceph_id, xml, t0 + budget - max(5.0, budget * 0.1), session)
        except DefinitionError as exc:
            raise Failed(exc.code, str(exc)) from None
        except GuardRefused as exc:
            raise Failed(OCF_ERR_GENERIC, str(exc)) from None
        finally:
            if session is not None:
                session.close()
        if dom is not None and domain.state(dom) == domain.libvirt.VIR_DOMAIN_CRASHED:
            dom.destroy()
        try:
            dom = conn.createXML(xml, 0)   # transient: nothing stays defined on this node
        except domain.Error as exc:
            raise Failed(OCF_ERR_GENERIC, f"libvirt could not start {name}: {exc.get_error_message()}") from None
        if domain.state(dom) not in domain.RUNNING_STATES:
            raise Failed(OCF_ERR_GENERIC, f"domain {name} is {domain.STATE_NAMES.get(domain.state(dom))} right after start")
        log.info(f"domain {name} started in {time.monotonic() - t0:.2f}s")
        _utilization(p, xml)
        return OCF_SUCCESS
    finally:
        conn.close()


def _ceph_session(p: Params):
    """One Ceph session for the definition and the guard (vm=); None for config=."""
    if not p.vm:
        return None
    from rbdvm.helpers.ceph import Session
    from rbdvm.helpers.errors import RbdvmError

    from .definition import ceph_target

    try:
        return Session(ceph_target(p)).__enter__()
    except RbdvmError as exc:
        raise Failed(OCF_ERR_GENERIC, f"cannot read VM {p.vm} from Ceph: {exc.message}") from None


# ------------------------------------------------------------------ stop
def stop(p: Params) -> int:
    from . import domain

    t0 = time.monotonic()
    deadline = t0 + op_timeout("stop")
    name = _name(p)
    try:
        conn = domain.open_conn(p.hypervisor)
    except domain.Error as exc:
        # a guess here could leave a writer running: fail, and let the cluster fence
        raise Failed(OCF_ERR_GENERIC, f"cannot reach libvirtd at {p.hypervisor} to stop {name} "
                                      f"({exc.get_error_message()}): failing so the cluster fences") from None
    try:
        dom = domain.lookup(conn, name)
        if dom is None or domain.state(dom) not in domain.RUNNING_STATES | {domain.libvirt.VIR_DOMAIN_CRASHED}:
            log.info(f"domain {name} is not running")
            return OCF_SUCCESS
        graceful_until = deadline - p.stop_margin
        if not p.force_stop and graceful_until > time.monotonic():
            try:
                dom.shutdownFlags(domain.SHUTDOWN_MODES[p.shutdown_mode])
                log.info(f"asked {name} to shut down ({p.shutdown_mode or 'default mode'}), "
                         f"waiting up to {graceful_until - time.monotonic():.0f}s")
                while time.monotonic() < graceful_until and not domain.gone(conn, name):
                    time.sleep(0.2)
            except domain.Error as exc:
                if not domain.is_missing(exc):
                    log.warn(f"graceful shutdown of {name} failed: {exc.get_error_message()}")
        if not domain.gone(conn, name):
            log.warn(f"domain {name} did not shut down gracefully: destroying it")
            try:
                dom.destroy()
            except domain.Error as exc:
                if not domain.is_missing(exc) and not domain.gone(conn, name):
                    raise Failed(OCF_ERR_GENERIC, f"cannot destroy {name}: {exc.get_error_message()}") from None
        while not domain.gone(conn, name):
            if time.monotonic() >= deadline:
                raise Failed(OCF_ERR_GENERIC, f"domain {name} still runs after destroy")
            time.sleep(0.1)
        log.info(f"domain {name} stopped in {time.monotonic() - t0:.2f}s")
        return OCF_SUCCESS
    except domain.Error as exc:
        raise Failed(OCF_ERR_GENERIC, f"libvirt failed while stopping {name}: {exc.get_error_message()}") from None
    finally:
        conn.close()


# ------------------------------------------------------------------ migration
def _target_uris(p: Params, target: str):
    host = target + p.migration_network_suffix
    if p.remoteuri:
        dest = p.remoteuri.replace("%n", host)
    else:
        scheme = "qemu" + (f"+{p.migration_transport}" if p.migration_transport else "")
        user = f"{p.migration_user}@" if p.migration_user else ""
        dest = f"{scheme}://{user}{host}/system"
    return dest, p.migrateuri.replace("%n", host) if p.migrateuri else ""


def migrate_to(p: Params) -> int:
    import threading

    from . import domain

    lv = domain.libvirt
    t0 = time.monotonic()
    hard_end = t0 + op_timeout("migrate_to") - 1   # the agent answers before Pacemaker gives up
    deadline = t0 + op_timeout("migrate_to") - p.migrate_margin
    target = os.environ.get("OCF_RESKEY_CRM_meta_migrate_target")
    if not target:
        raise Failed(OCF_ERR_CONFIGURED, "migrate_to needs the target node (CRM_meta_migrate_target)")
    name = _name(p)
    dest, data_uri = _target_uris(p, target)
    conn = _conn(p)
    try:
        dom = domain.lookup(conn, name)
        if dom is None or domain.state(dom) not in domain.RUNNING_STATES:
            raise Failed(OCF_ERR_GENERIC, f"domain {name} does not run here: nothing to migrate")
        params = {}
        if data_uri:
            params[lv.VIR_MIGRATE_PARAM_URI] = data_uri
        if p.migration_speed:
            params[lv.VIR_MIGRATE_PARAM_BANDWIDTH] = p.migration_speed
        flags = lv.VIR_MIGRATE_LIVE | lv.VIR_MIGRATE_PEER2PEER | lv.VIR_MIGRATE_ABORT_ON_ERROR
        if p.migration_auto_converge:
            flags |= lv.VIR_MIGRATE_AUTO_CONVERGE
        log.info(f"migrating {name} to {target} ({dest}{', data ' + data_uri if data_uri else ''})")
        outcome = {}

        def run():
            try:
                dom.migrateToURI3(dest, params, flags)
            except domain.Error as exc:
                outcome["error"] = exc.get_error_message()

        worker = threading.Thread(target=run, name="migrate", daemon=True)
        worker.start()
        downtime_set, aborted, said = not p.migration_downtime, False, 0.0
        while worker.is_alive():
            worker.join(0.5)
            if not worker.is_alive():
                break
            now = time.monotonic()
            if aborted and now >= hard_end:
                # the job ignored the abort (libvirt cannot abort every migration phase, e.g.
                # while the target's QEMU does not answer): answer now, state unknown
                raise Failed(OCF_ERR_GENERIC, f"live migration of {name} to {target} did not end "
                             "after being aborted; the cluster recovers the VM (stop on both nodes)")
            try:
                if not downtime_set and dom.jobInfo()[0] != lv.VIR_DOMAIN_JOB_NONE:
                    dom.migrateSetMaxDowntime(p.migration_downtime)
                    downtime_set = True
                if now - said >= 2:
                    stats = dom.jobStats()
                    log.info(f"migration of {name}: {stats.get('memory_processed', 0) >> 20} MiB sent, "
                             f"{stats.get('memory_remaining', 0) >> 20} MiB to go")
                    said = now
                if now >= deadline and not aborted:
                    log.warn(f"migration of {name} not done {p.migrate_margin}s before the timeout: aborting")
                    dom.abortJob()
                    aborted = True
            except domain.Error as exc:
                log.debug(f"migration job query: {exc.get_error_message()}")
        if aborted or "error" in outcome:
            why = "aborted before the operation timed out" if aborted else outcome["error"]
            raise Failed(OCF_ERR_GENERIC, f"live migration of {name} to {target} failed: {why}; "
                                          "it keeps running here")
        log.info(f"domain {name} migrated to {target} in {time.monotonic() - t0:.2f}s")
        return OCF_SUCCESS
    finally:
        conn.close()


def migrate_from(p: Params) -> int:
    from . import domain

    name = _name(p)
    deadline = time.monotonic() + min(op_timeout("migrate_from"), 30)
    conn = _conn(p)
    try:
        while True:
            dom = domain.lookup(conn, name)
            if dom is not None and domain.state(dom) in domain.RUNNING_STATES:
                log.info(f"domain {name} runs here after migration")
                _utilization(p, dom.XMLDesc(0))
                return OCF_SUCCESS
            if time.monotonic() >= deadline:
                raise Failed(OCF_ERR_GENERIC, f"domain {name} does not run here after the migration")
            time.sleep(0.2)
    finally:
        conn.close()


# ------------------------------------------------------------------ utilization
def _utilization(p: Params, xml: str) -> None:
    """cpu / hv_memory from the definition, written to the CIB only when they changed."""
    from .utilization import update

    rsc = os.environ.get("OCF_RESOURCE_INSTANCE")
    if rsc and (p.autoset_utilization_cpu or p.autoset_utilization_hv_memory):
        update(rsc, xml, cpu=p.autoset_utilization_cpu, hv_memory=p.autoset_utilization_hv_memory)


# ------------------------------------------------------------------ validate-all
def validate(p: Params) -> int:
    from .definition import DefinitionError, load_xml

    if "://" not in p.hypervisor:
        raise Failed(OCF_ERR_CONFIGURED, f"hypervisor={p.hypervisor!r} is not a libvirt URI")
    try:
        xml = load_xml(p)
    except DefinitionError as exc:
        raise Failed(exc.code if exc.code != 5 else OCF_ERR_CONFIGURED, str(exc)) from None
    from rbdvm.helpers import domainxml
    from rbdvm.helpers.errors import UsageError

    try:
        root = domainxml.parse(xml, "the domain XML")
    except UsageError as exc:
        raise Failed(OCF_ERR_CONFIGURED, exc.message) from None
    if p.vm and root.findtext("name") != p.vm:
        raise Failed(OCF_ERR_CONFIGURED, f"the XML of VM {p.vm} names the domain {root.findtext('name')!r}")
    return OCF_SUCCESS


def meta_data(_p=None) -> int:
    from .metadata import metadata_xml

    sys.stdout.write(metadata_xml())
    return OCF_SUCCESS


ACTIONS_TABLE = {"start": start, "stop": stop, "monitor": monitor, "status": monitor,
                 "migrate_to": migrate_to, "migrate_from": migrate_from, "validate-all": validate}


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
        p = Params()
    except ParamError as exc:
        log.exit_reason(str(exc))
        return OCF_ERR_CONFIGURED
    try:
        return ACTIONS_TABLE[action](p)
    except Failed as exc:
        if action == "stop" and exc.code == OCF_ERR_CONFIGURED:
            exc.code = OCF_ERR_GENERIC   # a stop that cannot be done must not look like a config error
        log.exit_reason(str(exc))
        return exc.code
    except Exception as exc:  # noqa: BLE001 - the cluster gets a reason, never a traceback
        log.exit_reason(f"{action} failed unexpectedly: {type(exc).__name__}: {exc}")
        return OCF_ERR_GENERIC

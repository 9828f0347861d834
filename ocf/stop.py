"""stop: through libvirt (graceful, then destroy); whatever libvirt could not do (dead, hung,
or a destroy that would overrun) is finished from the process table. A stop that fails means
fencing: it fails only when a QEMU of the domain survives SIGKILL."""

import time

from rbdvm.helpers.core import events, timeouts

from . import basics, history, log, qemuproc, utilization
from .codes import OCF_ERR_GENERIC, OCF_SUCCESS, AgentError
from .params import Params


def stop(p: Params) -> int:
    """Stop through libvirt (graceful, then destroy); whatever libvirt could not do (dead,
    hung, or a destroy that would overrun) is finished from the process table."""
    phases = events.Phases()
    end = time.monotonic() + basics.op_timeout("stop") - timeouts.AGENT_ANSWER_MARGIN
    name = basics.known_name(p)
    if name is None:
        return OCF_SUCCESS
    try:
        code = _stop(p, name, phases, end)
    except AgentError as exc:
        history.record(p, phases.event("stop", history.this_node(), p.vm, ok=False, reason=str(exc)),
                       end + timeouts.AGENT_ANSWER_MARGIN / 2)
        raise
    if phases.done:
        # something ran here and was stopped (a stop after a migration finds nothing)
        history.record(p, phases.event("stop", history.this_node(), p.vm), end)
    return code


def _stop(p: Params, name: str, phases: events.Phases, end: float) -> int:
    try:
        # here: without libvirt's bindings a stop still ends QEMU
        from . import domain
    except ImportError as exc:
        log.warn(f"the libvirt Python bindings cannot be loaded ({exc}): stopping {name} from the process table")
        return stop_from_process_table(name, end, phases)
    try:
        _stop_with_libvirt(p, domain, name, end, phases)
    except (domain.Error, domain.Hung) as exc:
        log.warn(f"libvirt could not stop {name} ({basics.why(exc)}): ending its QEMU from the process table")
    return stop_from_process_table(name, end, phases)


def _stop_with_libvirt(p: Params, domain, name: str, end: float, phases: events.Phases) -> None:
    t0 = time.monotonic()
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
            phases.mark("shut down")
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
        phases.mark("destroyed")
    finally:
        domain.close(conn, end)


def stop_from_process_table(name: str, end: float, phases: events.Phases | None = None) -> int:
    """Success only once no QEMU of the domain is alive in this node's network namespace:
    SIGTERM (QEMU flushes and exits), then SIGKILL at the last moment that leaves time to
    see it gone."""
    if qemuproc.running(name):
        now = time.monotonic()
        kill_at = max(now, end - timeouts.AGENT_KILL_RESERVE)
        survivors = qemuproc.end(name, term_until=min(now + timeouts.AGENT_LIBVIRT, kill_at), until=end)
        if survivors:
            raise AgentError(OCF_ERR_GENERIC, f"QEMU of {name} (pid {', '.join(map(str, survivors))}) "
                                          "survived SIGKILL: failing so the cluster fences")
        log.info(f"QEMU of {name} ended from the process table")
        if phases is not None:
            phases.mark("ended from the process table")
    utilization.forget_here()
    return OCF_SUCCESS

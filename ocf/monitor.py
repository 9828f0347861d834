"""monitor (and status, and the probe): is the domain running here? libvirt first, checked
against the process table; a libvirtd that is dead or hung is answered from the process table
(QEMU runs on without it). Loads libvirt and the standard library only: it runs every few
seconds on every node."""

import time

from rbdvm.helpers.core import timeouts

from . import basics, log, qemuproc
from .codes import OCF_ERR_GENERIC, OCF_ERR_INSTALLED, OCF_NOT_RUNNING, OCF_SUCCESS, AgentError
from .params import Params


def monitor(p: Params) -> int:
    t0 = time.monotonic()
    name = basics.known_name(p)
    if name is None:
        return OCF_NOT_RUNNING
    try:
        # here: without libvirt's bindings monitor still answers
        from . import domain
    except ImportError as exc:
        return monitor_from_process_table(name, f"the libvirt Python bindings cannot be loaded ({exc})",
                                           missing=OCF_ERR_INSTALLED)
    until = t0 + min(timeouts.AGENT_LIBVIRT, basics.op_timeout("monitor") / 2)
    try:
        st = domain.bounded(until, domain.query_state, p.hypervisor, name)
        if st in domain.RUNNING_STATES:
            st = _confirmed_running(p, domain, name, st, until)
    except (domain.Error, domain.Hung) as exc:
        # libvirtd down, restarting or hung: QEMU runs on without it
        return monitor_from_process_table(name, f"libvirtd at {p.hypervisor} did not answer ({basics.why(exc)})")
    if st is None or st == domain.libvirt.VIR_DOMAIN_SHUTOFF:
        return OCF_NOT_RUNNING
    if st == domain.libvirt.VIR_DOMAIN_CRASHED:
        log.exit_reason(f"domain {name} crashed")
        return OCF_ERR_GENERIC
    if st in domain.RUNNING_STATES:
        return OCF_SUCCESS
    log.debug(f"domain {name} is {domain.STATE_NAMES.get(st, st)}")
    return OCF_NOT_RUNNING


def _confirmed_running(p: Params, domain, name: str, st: int, until: float) -> int:
    """libvirt's "running", checked against the process table. A libvirtd that has just
    restarted lists its domains as running until its reconnect thread finds their QEMU gone
    (seen on the lab: "running" 60 ms after a restart, for a QEMU the agent had ended): ask
    again until both agree, for a few seconds at most (its reconnect takes milliseconds); if
    they still disagree (a QEMU this agent cannot see, e.g. in another PID namespace),
    libvirt's answer stands."""
    until = min(until, time.monotonic() + timeouts.MONITOR_RECHECK_FOR)
    while st in domain.RUNNING_STATES and not qemuproc.running(name):
        if time.monotonic() + timeouts.MONITOR_RECHECK_EVERY >= until:
            log.warn(f"libvirt reports domain {name} running but no QEMU process of it was found")
            break
        time.sleep(timeouts.MONITOR_RECHECK_EVERY)
        st = domain.bounded(until, domain.query_state, p.hypervisor, name)
    return st


def monitor_from_process_table(name: str, why: str, missing: int = OCF_NOT_RUNNING) -> int:
    running = qemuproc.running(name)
    log.warn(f"{why}; QEMU process of {name} {'found' if running else 'not found'}")
    if running:
        return OCF_SUCCESS
    if missing != OCF_NOT_RUNNING:
        raise AgentError(missing, why)
    return OCF_NOT_RUNNING

"""libvirt for the agent: calls under a deadline, states. When libvirtd is dead or hung the
agent answers from the QEMU process table instead (ocf/qemuproc.py).

Imports only libvirt and the standard library: monitor runs every few seconds on every node.
"""

import time

import libvirt

from rbdvm.helpers.core.bounded import Hung, bounded

# libvirt prints every error on stderr by default; the agent reports what matters itself
libvirt.registerErrorHandler(lambda _ctx, _err: None, None)

RUNNING_STATES = {libvirt.VIR_DOMAIN_RUNNING, libvirt.VIR_DOMAIN_BLOCKED, libvirt.VIR_DOMAIN_PAUSED,
                  libvirt.VIR_DOMAIN_SHUTDOWN, libvirt.VIR_DOMAIN_PMSUSPENDED}
STATE_NAMES = {libvirt.VIR_DOMAIN_NOSTATE: "no state", libvirt.VIR_DOMAIN_RUNNING: "running",
               libvirt.VIR_DOMAIN_BLOCKED: "blocked", libvirt.VIR_DOMAIN_PAUSED: "paused",
               libvirt.VIR_DOMAIN_SHUTDOWN: "shutting down", libvirt.VIR_DOMAIN_SHUTOFF: "shut off",
               libvirt.VIR_DOMAIN_CRASHED: "crashed", libvirt.VIR_DOMAIN_PMSUSPENDED: "suspended"}
SHUTDOWN_MODES = {"": 0, "acpi": libvirt.VIR_DOMAIN_SHUTDOWN_ACPI_POWER_BTN,
                  "agent": libvirt.VIR_DOMAIN_SHUTDOWN_GUEST_AGENT,
                  "initctl": libvirt.VIR_DOMAIN_SHUTDOWN_INITCTL,
                  "signal": libvirt.VIR_DOMAIN_SHUTDOWN_SIGNAL,
                  "paravirt": libvirt.VIR_DOMAIN_SHUTDOWN_PARAVIRT}

Error = libvirt.libvirtError


def is_missing(exc: libvirt.libvirtError) -> bool:
    return exc.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN


def open_conn(uri: str, read_only: bool = False, until: float | None = None):
    opener = libvirt.openReadOnly if read_only else libvirt.open
    return opener(uri) if until is None else bounded(until, opener, uri)


def close(conn, until: float) -> None:
    """Close without waiting past `until` (a hung libvirtd never answers the close)."""
    try:
        bounded(min(until, time.monotonic() + 1), conn.close)
    except (Error, Hung):
        pass


def query_state(uri: str, name: str):
    """The state of domain `name` on this hypervisor (None: unknown to it), read-only."""
    conn = libvirt.openReadOnly(uri)
    try:
        dom = lookup(conn, name)
        return None if dom is None else state(dom)
    finally:
        conn.close()


def lookup(conn, name: str):
    """The domain, or None if this hypervisor does not know it."""
    try:
        return conn.lookupByName(name)
    except Error as exc:
        if is_missing(exc):
            return None
        raise


def state(dom) -> int:
    """The domain's state, SHUTOFF if it vanished meanwhile (a transient domain that ended)."""
    try:
        return dom.state()[0]
    except Error as exc:
        if is_missing(exc):
            return libvirt.VIR_DOMAIN_SHUTOFF
        raise


def gone(conn, name: str) -> bool:
    dom = lookup(conn, name)
    return dom is None or state(dom) not in RUNNING_STATES | {libvirt.VIR_DOMAIN_CRASHED}

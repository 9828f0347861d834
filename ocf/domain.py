"""libvirt for the agent: connections, states, and the QEMU process table as a fallback.

Imports only libvirt and the standard library: monitor runs every few seconds on every node.
"""

import os

import libvirt

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


def is_missing(exc: Error) -> bool:
    return exc.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN


def open_conn(uri: str, read_only: bool = False):
    return libvirt.openReadOnly(uri) if read_only else libvirt.open(uri)


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


def qemu_running(name: str) -> bool:
    """Is a QEMU process of domain `name` running in this network namespace?

    What monitor answers from when libvirtd is down or restarting: the guest's QEMU keeps
    running without libvirtd. libvirt names it with `-name guest=<name>,...`.
    """
    try:
        own_net = os.readlink("/proc/self/ns/net")
    except OSError:
        own_net = None
    wanted = f"guest={name},".encode()
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                args = f.read().split(b"\0")
            if not args or b"qemu" not in os.path.basename(args[0]):
                continue
            if own_net and os.readlink(f"/proc/{pid}/ns/net") != own_net:
                continue   # another node of a lab sharing this kernel
            for i, arg in enumerate(args[:-1]):
                if arg == b"-name" and (args[i + 1] + b",").startswith(wanted):
                    with open(f"/proc/{pid}/stat") as st:
                        if st.read().rsplit(")", 1)[1].split()[0] != "Z":
                            return True
        except OSError:
            continue
    return False

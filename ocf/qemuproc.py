"""The QEMU process table: what monitor and stop answer from when libvirtd is dead or hung,
or when the libvirt bindings cannot even be loaded, and what confirms libvirt's "running"
(a libvirtd just restarted reports domains whose QEMU is gone). Standard library only.

The guest's QEMU runs on without libvirtd. libvirt names it with `-name guest=<name>,...`;
a lab (or container host) sharing this kernel has other nodes' QEMUs in other network
namespaces, which are never looked at.
"""

import os
import signal
import time

# where libvirtd (qemu:///system) writes each running domain's QEMU PID
PID_DIR = "/run/libvirt/qemu"


def pids(name: str) -> list:
    """PIDs of the live (not zombie) QEMU processes of domain `name` in this network namespace."""
    own_net = _net_of("self")
    return [pid for pid in (int(d) for d in os.listdir("/proc") if d.isdigit()) if _is_qemu_of(pid, name, own_net)]


def rbd_guests() -> list:
    """Names of the domains whose live QEMU in this network namespace opens an RBD disk
    (libvirt passes it as `"driver":"rbd"` in a -blockdev argument)."""
    own_net, names = _net_of("self"), set[str]()
    for pid in (int(d) for d in os.listdir("/proc") if d.isdigit()):
        args = _qemu_args(pid, own_net)
        if args and any(b'"driver":"rbd"' in a or a.startswith(b"rbd:") or b"file=rbd:" in a for a in args):
            names.update(a.split(b",")[0][len(b"guest="):].decode(errors="replace")
                         for i, a in enumerate(args[1:], 1) if args[i - 1] == b"-name" and a.startswith(b"guest="))
    return sorted(names)


def _net_of(pid) -> str | None:
    try:
        return os.readlink(f"/proc/{pid}/ns/net")
    except OSError:
        return None


def _qemu_args(pid: int, own_net) -> list | None:
    """The command line of `pid` if it is a live QEMU in network namespace `own_net`."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            args = f.read().split(b"\0")
    except OSError:
        return None
    if not args or not _is_emulator(os.path.basename(args[0])):
        return None
    if own_net and _net_of(pid) != own_net:
        return None
    return args if _alive(pid) else None


def _is_qemu_of(pid: int, name: str, own_net) -> bool:
    wanted = f"guest={name},".encode()
    args = _qemu_args(pid, own_net) or []
    return any(arg == b"-name" and (args[i + 1] + b",").startswith(wanted) for i, arg in enumerate(args[:-1]))


def _is_emulator(program: bytes) -> bool:
    # Debian's /usr/bin/kvm is QEMU under another name
    return b"qemu" in program or program == b"kvm"


def running(name: str) -> bool:
    """Whether a QEMU of domain `name` is alive here: first the PID libvirt wrote for it (two
    small reads, what monitor pays every few seconds), else the whole process table."""
    try:
        with open(os.path.join(PID_DIR, f"{name}.pid")) as f:
            pid = int(f.read().strip())
        if _is_qemu_of(pid, name, _net_of("self")):
            return True
    except (OSError, ValueError):
        pass
    return bool(pids(name))


def _alive(pid: int) -> bool:
    """Running, not a zombie (a zombie holds no disk: its files and sockets are closed)."""
    try:
        with open(f"/proc/{pid}/stat") as st:
            return st.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except OSError:
        return False


def end(name: str, term_until: float, until: float) -> list:
    """End domain `name`'s QEMU processes without libvirt: SIGTERM (QEMU flushes and exits),
    SIGKILL at `term_until`, give up at `until`. Returns the PIDs that survived.

    Each process is held by a pidfd, checked again after it is held, and watched through it:
    a PID reused meanwhile is never signalled nor mistaken for a survivor."""
    import select

    fds = {}
    for pid in pids(name):
        try:
            fds[pid] = os.pidfd_open(pid)
        except OSError:
            continue
    try:
        current = set(pids(name))

        def living():
            return [pid for pid, fd in fds.items() if pid in current
                    and not select.select([fd], [], [], 0)[0] and _alive(pid)]

        for sig, deadline in ((signal.SIGTERM, term_until), (signal.SIGKILL, until)):
            for pid in living():
                try:
                    signal.pidfd_send_signal(fds[pid], sig)
                except OSError:
                    pass
            while living() and time.monotonic() < deadline:
                time.sleep(0.05)
            if not living():
                break
        return living()
    finally:
        for fd in fds.values():
            os.close(fd)

"""fence_rbdvm_check: the node's own half of storage fencing.

fence_rbdvm cuts a node off Ceph, but a node that is only cut off (not powered off) keeps its
guests running: their disks fail, their network side lives on, and a VM restarted elsewhere
would then answer twice on the network. This check looks whether the OSDs refuse this host
(a client made for the purpose, one small read) and, when they do, ends at once (SIGKILL)
every QEMU here that has an RBD disk: a fenced host has no writer to protect, only a network
presence to end. It needs neither libvirtd nor Pacemaker, which may be hung or gone on a
fenced host.

Run it in a loop on every node (`--interval`, e.g. from a service manager), or once from a
watchdog daemon's test directory: exit 0 not fenced (or Ceph not reachable: nothing can be
said), 1 fenced (its QEMUs ended).
"""

import argparse
import os
import socket
import sys
import time

from rbdvm.helpers.core import defaults, events, timeouts

from . import qemuproc

CLEAR, FENCED, UNKNOWN = "clear", "fenced", "unknown"
SPOOL = "/var/lib/rbdvm/history-spool"
# a paused or down OSD makes the look "unknown" after timeouts.OSD_OP_FENCE_CHECK, never "fenced"


def _say(text: str) -> None:
    print(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} fence_rbdvm_check: {text}", file=sys.stderr, flush=True)


def look(conf: str, client_id: str, pool: str, node: str = "", spool: str = "") -> tuple:
    """(CLEAR, FENCED or UNKNOWN, why): whether the OSDs refuse this host. A clear look
    stamps `node` alive (ceph/alive): the moment a crash is dated by, and the self-check's
    own sign of life; and adds to the history what `spool` kept while the node was fenced."""
    from rbdvm.helpers.ceph import alive, fencing
    from rbdvm.helpers.ceph.session import Session
    from rbdvm.helpers.core.errors import RbdvmError
    from rbdvm.helpers.core.settings import CephTarget

    try:
        with Session(CephTarget(conf=conf, client_id=client_id, pool=pool), timeouts.OSD_OP_FENCE_CHECK) as session:
            if fencing.cut_off(session):
                return FENCED, "the OSDs refuse this host: it is on Ceph's blocklist"
            if node:
                alive.stamp(session, node, time.time())
            if spool:
                _flush(session, spool)
            return CLEAR, "the OSDs answer this host"
    except RbdvmError as exc:
        return UNKNOWN, f"Ceph did not answer ({exc}): nothing can be said"


def end_guests(node: str = "", spool: str = "") -> None:
    """SIGKILL every QEMU here with an RBD disk, saying what ended and what did not. Each is
    kept in `spool` for the history: a fenced host cannot write to Ceph, the next clear look
    (once the node is back) adds them."""
    for name in qemuproc.rbd_guests():
        now, at = time.monotonic(), time.time()
        survivors = qemuproc.end(name, term_until=now, until=now + 5)
        _say(f"this host is fenced off Ceph: ended the QEMU of {name}" if not survivors
             else f"this host is fenced off Ceph: the QEMU of {name} did not end ({survivors})")
        if spool:
            _keep(spool, events.Event(at=at, kind="self-check", node=node, vm=name, ok=not survivors,
                                      took=time.time() - at, info={"why": "this host is fenced off Ceph"}))


# what the spool keeps at most: a node fenced again and again keeps its first records
SPOOL_MOST = 200


def _keep(spool: str, event) -> None:
    try:
        os.makedirs(spool, mode=0o700, exist_ok=True)
        if len(os.listdir(spool)) >= SPOOL_MOST:
            return
        path = os.path.join(spool, f"{event.at:.6f}-{os.getpid()}.rec")
        with open(path + ".tmp", "wb") as f:
            f.write(events.encode(event))
        os.replace(path + ".tmp", path)
    except OSError as exc:
        _say(f"the history will not have it: cannot keep it in {spool} ({exc})")


def _flush(session, spool: str) -> None:
    """Add the kept records to the history, oldest first; each removed once added."""
    from rbdvm.helpers.ceph import eventlog

    try:
        kept = sorted(n for n in os.listdir(spool) if n.endswith(".rec"))
    except FileNotFoundError:
        return
    for name in kept:
        path = os.path.join(spool, name)
        with open(path, "rb") as f:
            event = events.decode(f.read(events.MAX_LINE + 1))
        if event is not None:
            eventlog.append(session, event)
        os.unlink(path)


def once(args, last: str = "") -> str:
    """Look, end the QEMUs if fenced; say what changed since the `last` look."""
    state, why = look(args.ceph_conf, args.ceph_id, args.pool, args.node, args.spool)
    if state != last:
        _say(f"{state}: {why}")
    if state == FENCED:
        end_guests(args.node, args.spool)
    return state


def parser() -> argparse.ArgumentParser:
    """The command line, declared once: main parses with it, its man page is made from it."""
    p = argparse.ArgumentParser(
        prog="fence_rbdvm_check",
        description="End this node's RBD-backed QEMUs when Ceph has fenced the node (fence_rbdvm).")
    p.add_argument("--ceph-conf", default=defaults.CEPH_CONF, help="the Ceph configuration file")
    p.add_argument("--ceph-id", default=defaults.CEPH_ID, help="the node's rbdvm Ceph user")
    p.add_argument("--pool", default=defaults.POOL, help="a pool this user may read")
    p.add_argument("--node", default=None, help="this node's name in the cluster, stamped alive at each clear "
                   "look [default: what `crm_node --name` says, else the host name]")
    p.add_argument("--spool", default=SPOOL, metavar="DIR",
                   help="where the QEMUs it ends are kept for the event history while the node is fenced "
                        "(added at the next clear look); empty: not kept")
    p.add_argument("--interval", type=float, default=0, metavar="SECONDS",
                   help=f"look every SECONDS, forever (e.g. {timeouts.FENCE_CHECK_INTERVAL}); "
                        "0: look once and exit 1 if fenced")
    return p


def _this_node() -> str:
    """The node's cluster name, asked once (Pacemaker's name need not be the host's)."""
    from rbdvm.helpers.core.errors import RbdvmError
    from rbdvm.helpers.pacemaker import runner

    try:
        return runner.run(["crm_node", "--name"], timeout=10).strip() or socket.gethostname()
    except RbdvmError:
        return socket.gethostname()


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    if args.node is None:
        args.node = _this_node()
    if args.interval <= 0:
        return 1 if once(args) == FENCED else 0
    _say(f"looking every {args.interval:g} s")
    state = ""
    while True:
        state = once(args, state)
        time.sleep(args.interval)

"""start: read the definition (from Ceph, or a config= file), then create the domain inside
the split-brain guard's critical section (ocf/guard.py), and record its utilization. Loaded
only for a start: Ceph and lxml are imported here, never by monitor."""

import time

import rados
import rbd

from rbdvm.helpers.ceph.session import Session
from rbdvm.helpers.core import domainxml, events, timeouts
from rbdvm.helpers.core.bounded import abandoned
from rbdvm.helpers.core.errors import RbdvmError

from . import basics, definition, domain, guard, hints, history, log, uefi, utilization
from .codes import OCF_ERR_CONFIGURED, OCF_ERR_GENERIC, OCF_ERR_INSTALLED, OCF_SUCCESS, AgentError
from .params import Params


def start(p: Params) -> int:
    """Start the domain; the history gets the start with its phases, or its failure."""
    phases = events.Phases()
    end = time.monotonic() + basics.op_timeout("start") - timeouts.AGENT_ANSWER_MARGIN
    kept: dict = {}     # the start's Ceph session, kept open for its record (no second connection)
    try:
        try:
            code = _start(p, phases, end, kept)
        except AgentError as exc:
            history.record(p, phases.event("start", history.this_node(), p.vm, ok=False, reason=str(exc)),
                           end + timeouts.AGENT_ANSWER_MARGIN / 2, kept.get("session"))
            raise
        if phases.done:
            history.record(p, phases.event("start", history.this_node(), p.vm), end, kept.get("session"))
        return code
    finally:
        # a record given up on still uses the session: the agent leaves without closing it
        if "session" in kept and not abandoned:
            kept["session"].close()


def _start(p: Params, phases: events.Phases, end: float, kept: dict) -> int:
    t0 = time.monotonic()
    budget = basics.op_timeout("start")
    name = definition.domain_name(p)
    conn = basics.connect(p, end)
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
            raise AgentError(OCF_ERR_GENERIC, f"libvirt failed before starting {name}: {basics.why(exc)}") from None
        phases.mark("libvirt")
        if p.vm:
            # before anything of the VM is read from Ceph: a fenced node's OSDs would stall it
            from . import fencedosds

            marked = fencedosds.mark_down(p.ceph_conf, p.pool, end)
            phases.mark("fenced OSDs down")
            if marked:
                phases.info["osds_marked_down"] = ",".join(f"osd.{i}" for _, ids in marked for i in ids)
        # keep a few seconds for libvirt to create the domain after the guard
        xml = _guarded_create(p, conn, name, t0 + budget - max(5.0, budget * 0.1), end, phases, kept)
        log.info(f"domain {name} started in {time.monotonic() - t0:.2f}s")
        definition.remember_name(p, name)
        utilization.apply(p, xml, end)
        phases.mark("utilization")
        return OCF_SUCCESS
    finally:
        domain.close(conn, end)


def _guarded_create(p: Params, conn, name: str, guard_deadline: float, end: float,
                    phases: events.Phases, kept: dict) -> str:
    """Read the definition, then, inside the split-brain guard's critical section: wait for
    the disks to be free, create the domain, wait for its disk watch. Returns the XML."""
    session = _ceph_session(p)
    try:
        try:
            xml = definition.load_xml(p, session)
            root = domainxml.parse(xml, "the domain XML")
        except RbdvmError as exc:
            raise AgentError(OCF_ERR_CONFIGURED, hints.reason(exc)) from None
        if (root.findtext("name") or "").strip() != name:
            raise AgentError(OCF_ERR_CONFIGURED, f"the definition of {name} names the domain "
                                             f"{root.findtext('name')!r}: refusing to start it")
        phases.mark("definition checked")
        try:
            with guard.StartSection(p.ceph_conf, p.ceph_id, guard.rbd_disks(root), session,
                                    hold_until=end) as section:
                _old_writer_gone(section, guard_deadline, phases)
                if session is not None:
                    xml = _variables_in_ceph(session, p.vm, root) or xml
                    phases.mark("UEFI variables")
                try:
                    # transient (nothing stays defined); a definition from Ceph is validated against
                    # libvirt's schema, which the device policy judged it by (a config= file is
                    # root's own, started as ocf:heartbeat:VirtualDomain starts it)
                    flags = domain.libvirt.VIR_DOMAIN_START_VALIDATE if p.vm else 0
                    dom = domain.bounded(end, conn.createXML, xml, flags)
                except domain.Hung as exc:
                    section.keep_locks()
                    raise AgentError(OCF_ERR_GENERIC, f"libvirt did not start {name} in time ({exc}); "
                                                  "the stop that follows ends it if it came up") from None
                except domain.Error as exc:
                    raise AgentError(OCF_ERR_GENERIC,
                                     f"libvirt could not start {name}: {exc.get_error_message()}") from None
                phases.mark("domain created")
                section.wait_visible(end)
                phases.mark("disk watch seen")
                log.debug("start phases: " + ", ".join(f"{n} {s * 1000:.1f} ms" for n, s in phases.done))
        except RbdvmError as exc:
            raise guard.ceph_error(exc) from None
        except (rados.Error, rbd.Error) as exc:
            raise AgentError(OCF_ERR_GENERIC, f"split-brain guard cannot check the disks' clients: {exc}") from None
    finally:
        if session is not None:
            kept["session"] = session     # closed by start() once the history has the start
    try:
        st = domain.bounded(end, domain.state, dom)
    except (domain.Error, domain.Hung) as exc:
        raise AgentError(OCF_ERR_GENERIC, f"libvirt did not say whether {name} runs: {basics.why(exc)}") from None
    if st not in domain.RUNNING_STATES:
        raise AgentError(OCF_ERR_GENERIC, f"domain {name} is {domain.STATE_NAMES.get(st)} right after start")
    return xml


def _old_writer_gone(section, deadline: float, phases: events.Phases) -> None:
    """Take the guard's lock and wait until no client has the disks open; a fenced old
    writer makes this start the end of a failover (so recorded)."""
    section.lock(deadline)
    phases.mark("guard lock")
    section.wait_free(deadline)
    phases.mark("old writer gone")
    fenced = sorted(node for node, fence in section.judged.items() if fence)
    if fenced:
        phases.info["after_fence_of"] = ",".join(fenced)
    if section.released:
        phases.info["released"] = ", ".join(section.released)


def _variables_in_ceph(session, vm: str, root) -> str | None:
    try:
        return uefi.in_ceph(session, vm, root)
    except RbdvmError as exc:
        # no fitting firmware is this node's lack (another node may have it); Ceph failing
        # is generic
        rc = OCF_ERR_INSTALLED if exc.code == "FIRMWARE_NOT_FOUND" else OCF_ERR_GENERIC
        raise AgentError(rc, f"cannot move the UEFI variables of {vm} into Ceph: {hints.reason(exc)}") from None


def _ceph_session(p: Params):
    """One Ceph session for the definition and the guard (vm=); None for config=."""
    if not p.vm:
        return None

    try:
        return Session(definition.ceph_target(p)).__enter__()
    except RbdvmError as exc:
        raise AgentError(OCF_ERR_GENERIC, f"cannot read VM {p.vm} from Ceph: {hints.reason(exc)}") from None

"""start: read the definition (from Ceph, or a config= file), then create the domain inside
the split-brain guard's critical section (ocf/guard.py), and record its utilization. Loaded
only for a start: Ceph and lxml are imported here, never by monitor."""

import time

import rados
import rbd

from rbdvm.helpers.ceph.session import Session
from rbdvm.helpers.core import domainxml, timeouts
from rbdvm.helpers.core.errors import RbdvmError

from . import basics, definition, domain, guard, hints, log, uefi, utilization
from .codes import OCF_ERR_CONFIGURED, OCF_ERR_GENERIC, OCF_ERR_INSTALLED, OCF_SUCCESS, AgentError
from .params import Params


def start(p: Params) -> int:
    t0 = time.monotonic()
    budget = basics.op_timeout("start")
    end = t0 + budget - timeouts.AGENT_ANSWER_MARGIN
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
        if p.vm:
            # before anything of the VM is read from Ceph: a fenced node's OSDs would stall it
            from . import fencedosds

            fencedosds.mark_down(p.ceph_conf, p.pool, end)
        # keep a few seconds for libvirt to create the domain after the guard
        xml = _guarded_create(p, conn, name, t0 + budget - max(5.0, budget * 0.1), end)
        log.info(f"domain {name} started in {time.monotonic() - t0:.2f}s")
        definition.remember_name(p, name)
        utilization.apply(p, xml, end)
        return OCF_SUCCESS
    finally:
        domain.close(conn, end)


def _guarded_create(p: Params, conn, name: str, guard_deadline: float, end: float) -> str:
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
        try:
            with guard.StartSection(p.ceph_conf, p.ceph_id, guard.rbd_disks(root), session,
                                    hold_until=end) as section:
                marks = [time.monotonic()]
                section.lock(guard_deadline)
                marks.append(time.monotonic())
                section.wait_free(guard_deadline)
                if session is not None:
                    xml = _variables_in_ceph(session, p.vm, root) or xml
                marks.append(time.monotonic())
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
        raise AgentError(OCF_ERR_GENERIC, f"libvirt did not say whether {name} runs: {basics.why(exc)}") from None
    if st not in domain.RUNNING_STATES:
        raise AgentError(OCF_ERR_GENERIC, f"domain {name} is {domain.STATE_NAMES.get(st)} right after start")
    return xml


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

"""Where the agent's domain XML comes from: Ceph (vm=) or a local file (config=)."""

from .codes import OCF_ERR_CONFIGURED, OCF_ERR_GENERIC, OCF_ERR_INSTALLED, AgentError
from .params import Params


def domain_name(p: Params) -> str:
    """The libvirt name of the domain, without Ceph: monitor must work when Ceph does not.

    config=: read from the file, else the name remembered when the domain last started or
    arrived here (stop and monitor must work after the file is gone); OCF_ERR_INSTALLED if
    neither is there: then nothing was started here since boot."""
    if p.vm:
        return p.vm
    # the operator's own file, through the one hardened parser; only <name> is needed
    from rbdvm.helpers.core import xmlsafe
    from rbdvm.helpers.core.errors import RbdvmError

    from . import rsctmp

    try:
        name = xmlsafe.parse_file(p.config, p.config).findtext("name")
    except (OSError, RbdvmError) as exc:
        remembered = rsctmp.recall("domain", p.config)
        if remembered:
            return remembered
        raise AgentError(OCF_ERR_INSTALLED, f"cannot read the domain name from {p.config}: {exc}") from None
    if not name or not name.strip():
        raise AgentError(OCF_ERR_CONFIGURED, f"{p.config} has no <name>")
    return name.strip()


def remember_name(p: Params, name: str) -> None:
    """After a start or an incoming migration (config= only: vm= needs no memory)."""
    if p.config:
        from . import rsctmp

        rsctmp.remember("domain", p.config, name)


def load_xml(p: Params, session=None) -> str:
    """The full domain XML, for start and validate-all (`session`: an open Ceph session on
    the VM's pool and namespace, to share with the split-brain guard)."""
    if p.config:
        try:
            with open(p.config) as f:
                return f.read()
        except OSError as exc:
            raise AgentError(OCF_ERR_INSTALLED, f"cannot read {p.config}: {exc.strerror}") from None
    from rbdvm.helpers.ceph.session import Session
    from rbdvm.helpers.core.errors import ClusterUnavailable, RbdvmError

    from . import hints

    try:
        if session is not None:
            return _verified_xml(session, p.vm)
        with Session(ceph_target(p)) as s:
            return _verified_xml(s, p.vm)
    except ClusterUnavailable as exc:
        raise AgentError(OCF_ERR_GENERIC, f"VM {p.vm} cannot start on this node: {hints.reason(exc)}") from None
    except RbdvmError as exc:
        raise AgentError(OCF_ERR_CONFIGURED, f"VM {p.vm} cannot start: {hints.reason(exc)}") from None


def _verified_xml(session, vm: str) -> str:
    """The VM's stored definition, only if this cluster signed it and it is within this
    node's device policy (a Ceph key is not root: the pool is not trusted)."""
    from rbdvm.helpers.ceph import trust, vmstore

    return trust.runnable_xml(session, vm, vmstore.usable_metadata(session, vm))


def check_stored(p: Params, osd_op_timeout: float) -> None:
    """After an incoming live migration (vm= only): the stored definition must still be one
    this node may start, or the next start would be refused. A definite refusal fails the
    action; Ceph not answering does not (the domain runs, its start here was verified on
    the source)."""
    if not p.vm:
        return
    from rbdvm.helpers.ceph.session import Session
    from rbdvm.helpers.core.errors import ClusterUnavailable, RbdvmError

    from . import hints, log

    try:
        with Session(ceph_target(p), osd_op_timeout=osd_op_timeout) as s:
            _verified_xml(s, p.vm)
    except ClusterUnavailable as exc:
        log.warn(f"could not read VM {p.vm} from Ceph to check its definition: {hints.reason(exc)}")
    except RbdvmError as exc:
        raise AgentError(OCF_ERR_CONFIGURED, f"VM {p.vm} arrived but may not run here: {hints.reason(exc)}") from None


def ceph_target(p: Params):
    from rbdvm.helpers.core.settings import CephTarget

    return CephTarget(conf=p.ceph_conf, client_id=p.ceph_id, pool=p.pool, namespace=p.namespace)

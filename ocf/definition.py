"""Where the agent's domain XML comes from: Ceph (vm=) or a local file (config=)."""

import xml.etree.ElementTree as ET

from .params import Params


class DefinitionError(Exception):
    """The definition cannot be had; `code` is the OCF exit code to return."""

    def __init__(self, code: int, message: str):
        super().__init__(message)
        self.code = code


def domain_name(p: Params) -> str:
    """The libvirt name of the domain, without Ceph: monitor must work when Ceph does not."""
    if p.vm:
        return p.vm
    # the operator's own file, read with the standard library (expat resolves no external
    # entities); only <name> is needed
    try:
        name = ET.parse(p.config).getroot().findtext("name")
    except (OSError, ET.ParseError) as exc:
        raise DefinitionError(5, f"cannot read the domain name from {p.config}: {exc}") from None
    if not name:
        raise DefinitionError(6, f"{p.config} has no <name>")
    return name.strip()


def load_xml(p: Params) -> str:
    """The full domain XML, for start and validate-all."""
    if p.config:
        try:
            with open(p.config) as f:
                return f.read()
        except OSError as exc:
            raise DefinitionError(5, f"cannot read {p.config}: {exc.strerror}") from None
    from rbdvm.helpers import vmstore
    from rbdvm.helpers.ceph import Session
    from rbdvm.helpers.errors import ClusterUnavailable, NotFound, RbdvmError

    try:
        with Session(ceph_target(p)) as s:
            rec = vmstore.require_complete(s, p.vm)
            return rec.metadata["xml"]
    except NotFound as exc:
        raise DefinitionError(6, f"VM {p.vm} does not exist in Ceph ({exc.message})") from None
    except ClusterUnavailable as exc:
        raise DefinitionError(1, f"cannot read VM {p.vm} from Ceph: {exc.message}") from None
    except RbdvmError as exc:
        raise DefinitionError(6, f"VM {p.vm} cannot start: {exc.message}") from None


def ceph_target(p: Params):
    from rbdvm.helpers.settings import CephTarget

    return CephTarget(conf=p.ceph_conf, client_id=p.ceph_id, pool=p.pool, namespace=p.namespace)

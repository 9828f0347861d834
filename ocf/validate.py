"""validate-all: the parameters, the hypervisor URI and the definition the resource would
start (read, parsed, naming the right domain)."""

from rbdvm.helpers.core import domainxml
from rbdvm.helpers.core.errors import UsageError

from . import definition, hints
from .codes import OCF_ERR_CONFIGURED, OCF_ERR_INSTALLED, OCF_SUCCESS, AgentError
from .params import Params


def validate(p: Params) -> int:
    if "://" not in p.hypervisor:
        raise AgentError(OCF_ERR_CONFIGURED, f"hypervisor={p.hypervisor!r} is not a libvirt URI")
    try:
        xml = definition.load_xml(p)
    except AgentError as exc:
        if exc.code == OCF_ERR_INSTALLED:   # a file that is missing is a configuration error here
            exc.code = OCF_ERR_CONFIGURED
        raise

    try:
        root = domainxml.parse(xml, "the domain XML")
    except UsageError as exc:
        raise AgentError(OCF_ERR_CONFIGURED, hints.reason(exc)) from None
    if p.vm and root.findtext("name") != p.vm:
        raise AgentError(OCF_ERR_CONFIGURED, f"the XML of VM {p.vm} names the domain {root.findtext('name')!r}")
    return OCF_SUCCESS

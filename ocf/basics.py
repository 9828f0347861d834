"""What every action of the agent starts from: its time budget, the domain's name (as stop
and monitor need it), and a libvirt connection. Standard library only (monitor loads it)."""

import os

from . import definition, log
from .codes import OCF_ERR_GENERIC, OCF_ERR_INSTALLED, AgentError
from .params import ACTIONS, Params


def op_timeout(action: str) -> float:
    """Seconds this operation may take: CRM_meta_timeout (ms), else the declared default."""
    raw = os.environ.get("OCF_RESKEY_CRM_meta_timeout")
    if raw and raw.isdigit() and int(raw) > 0:
        return int(raw) / 1000
    return next(a.timeout for a in ACTIONS if a.name == action)


def why(exc) -> str:
    """What a libvirt error (or any other) says."""
    return exc.get_error_message() if hasattr(exc, "get_error_message") else str(exc)


def connect(p: Params, until: float):
    """libvirt at the resource's hypervisor URI, or AgentError."""
    # not at the top: monitor and stop answer without libvirt's bindings
    from . import domain

    try:
        return domain.open_conn(p.hypervisor, until=until)
    except (domain.Error, domain.Hung) as exc:
        raise AgentError(OCF_ERR_GENERIC, f"cannot reach libvirtd at {p.hypervisor}: {why(exc)}") from None


def known_name(p: Params):
    """The domain's name for stop and monitor; None when config= names a file that is gone
    and no start here remembered its name (so nothing was started here since boot)."""
    try:
        return definition.domain_name(p)
    except AgentError as exc:
        if exc.code != OCF_ERR_INSTALLED:
            raise
        log.info(f"{exc}; no domain of it was started on this node since boot")
        return None

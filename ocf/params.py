"""The agent's parameters and actions, declared once.

The meta-data XML (ocf/metadata.py), the defaults and the validation all derive from these
tables. Names follow ocf:heartbeat:VirtualDomain wherever the meaning is the same, so a
resource moves to this agent by changing its type. Standard library only: monitor imports it.
"""

import os

from rbdvm.helpers.core import timeouts
from rbdvm.helpers.core.agentparams import BY_NAME, FALSE, PARAMS, TRUE, Param, refusal
from rbdvm.helpers.core.names import is_name

from .codes import OCF_ERR_CONFIGURED, AgentError

# typing costs 14 ms of imports, a third of a monitor: only type checkers read it
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = ["ACTIONS", "BY_NAME", "PARAMS", "Param", "Params"]


class Action:
    __slots__ = ("name", "timeout", "interval", "depth")

    def __init__(self, name, timeout, interval=None, depth=None):
        self.name, self.timeout, self.interval, self.depth = name, timeout, interval, depth


ACTIONS = tuple(
    Action(name, timeout, interval=timeouts.MONITOR_INTERVAL, depth=0) if name == "monitor" else Action(name, timeout)
    for name, timeout in timeouts.ACTION_TIMEOUTS.items())


def _wrong(message: str) -> AgentError:
    """A parameter is missing or wrong."""
    return AgentError(OCF_ERR_CONFIGURED, message)


def _convert(p: Param, raw: str):
    if p.kind == "boolean":
        low = raw.strip().lower()
        if low in TRUE:
            return True
        if low in FALSE:
            return False
        raise _wrong(f"parameter {p.name}={raw!r} is not a boolean (true/false)")
    if p.kind == "integer":
        try:
            value = int(raw)
        except ValueError:
            raise _wrong(f"parameter {p.name}={raw!r} is not an integer") from None
        if value < 0:
            raise _wrong(f"parameter {p.name}={raw!r} must not be negative")
        return value
    why = refusal(p.name, raw)
    if why:
        raise _wrong(f"parameter {p.name}={raw!r}: {why}")
    return raw


# what the agent needs to know which domain it is about: never replaced by a default
IDENTITY = ("vm", "config")


class Params:
    """Parameter values: OCF_RESKEY_<name> if Pacemaker passed it, else the default.

    Its attributes are PARAMS' names, set from the declaration (a type checker cannot see
    them: __getattr__ tells it they exist; it is only called for a name PARAMS lacks).

    strict=False (stop, monitor, probe): a bad optional value is replaced by its default and
    noted in `ignored`, because a stop that fails means fencing and a probe that fails means
    recovery; start and validate-all refuse it (strict)."""

    def __getattr__(self, name: str) -> "Any":
        raise AttributeError(f"no agent parameter {name!r}")

    def __init__(self, environ=os.environ, strict: bool = True):
        self.ignored = []
        for p in PARAMS:
            raw = environ.get("OCF_RESKEY_" + p.name)
            try:
                value = p.default if raw is None else _convert(p, raw)
            except AgentError as exc:
                if strict or p.name in IDENTITY:
                    raise
                self.ignored.append(f"{exc}; using {p.default!r}")
                value = p.default
            setattr(self, p.name, value)
        if bool(self.vm) == bool(self.config):
            raise _wrong("give exactly one of the parameters vm (a VM in Ceph) and config "
                             "(a libvirt XML file)")
        if self.vm and not is_name(self.vm):
            raise _wrong(f"parameter vm={self.vm!r} is not a VM name (letters and digits)")
        if self.config and not os.path.isabs(self.config):
            raise _wrong(f"parameter config={self.config!r} must be an absolute path")

"""The agent's parameters and actions, declared once.

The meta-data XML (ocf/metadata.py), the defaults and the validation all derive from these
tables. Names follow ocf:heartbeat:VirtualDomain wherever the meaning is the same, so a
resource moves to this agent by changing its type. Standard library only: monitor imports it.
"""

import os

from rbdvm.helpers.core import defaults, timeouts
from rbdvm.helpers.core.names import is_name

from .codes import OCF_ERR_CONFIGURED, AgentError

# typing costs 14 ms of imports, a third of a monitor: only type checkers read it
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


class Param:
    # a plain class: dataclasses costs ~17 ms of imports, a third of a monitor
    __slots__ = ("name", "kind", "default", "short", "long", "unique", "choices")

    def __init__(self, name, kind, default, short, long="", unique=False, choices=()):
        self.name, self.kind, self.default, self.short = name, kind, default, short  # kind: string | boolean | integer
        self.long, self.unique, self.choices = long, unique, choices


PARAMS = (
    Param("vm", "string", "", "VM name (its definition is read from Ceph)",
          "Name of a VM created with `rbdvm create`: its libvirt XML is the `xml` metadata of "
          "its system disk in Ceph, so no node needs a local file. Give either vm or config.",
          unique=True),
    Param("config", "string", "", "Virtual domain configuration file",
          "Absolute path of a libvirt domain XML file, as with ocf:heartbeat:VirtualDomain. "
          "Give either vm or config.", unique=True),
    Param("pool", "string", defaults.POOL, "RBD pool of the VM"),
    Param("namespace", "string", "", "RBD namespace of the VM (none by default)"),
    Param("ceph_conf", "string", defaults.CEPH_CONF, "Ceph configuration file"),
    Param("ceph_id", "string", defaults.CEPH_ID, "Ceph client name (without 'client.')",
          "The cephx user the agent reads the VM's definition and disk clients with; its "
          "keyring is found the usual way (/etc/ceph/ceph.client.<id>.keyring)."),
    Param("hypervisor", "string", defaults.HYPERVISOR, "Hypervisor URI"),
    Param("force_stop", "boolean", False, "Always force shutdown on stop",
          "Destroy the domain at once on stop instead of a graceful shutdown first."),
    Param("shutdown_mode", "string", "", "Graceful shutdown method",
          "How the graceful stop asks the guest: acpi, agent, initctl, signal or paravirt "
          "(libvirt's shutdown modes); empty lets libvirt choose.",
          choices=("", "acpi", "agent", "initctl", "signal", "paravirt")),
    Param("stop_margin", "integer", 5, "Seconds kept for destroy at the end of stop",
          "A graceful stop may use the stop operation's timeout minus this many seconds; "
          "then the domain is destroyed."),
    Param("migration_transport", "string", "", "Remote hypervisor transport",
          "Transport of the URI to the target node's libvirtd: qemu+<transport>://<node>/system "
          "(tcp, ssh, tls...). Empty: qemu://<node>/system."),
    Param("migration_user", "string", "", "Remote username for the remote URI"),
    Param("migration_network_suffix", "string", "", "Migration network host name suffix",
          "Appended to the target node name in the remote and migration URIs, to use a "
          "dedicated migration network (node2 + -mig = node2-mig)."),
    Param("remoteuri", "string", "", "Custom remote URI of the target libvirtd",
          "Replaces the URI built from the transport, user and node name; %n is the target "
          "node's name."),
    Param("migrateuri", "string", "", "Custom migration URI for the memory transfer",
          "Where QEMU sends the memory (tcp://%n-mig:49152); %n is the target node's name. "
          "Empty lets the target's libvirtd choose."),
    Param("migration_downtime", "integer", 0, "Maximum live migration downtime (ms)",
          "0 keeps QEMU's default."),
    Param("migration_speed", "integer", 0, "Live migration bandwidth (MiB/s)", "0: unlimited."),
    Param("migration_auto_converge", "boolean", False, "Throttle the guest's vCPUs if the "
          "migration does not converge"),
    Param("migrate_margin", "integer", 5, "Seconds kept to abort at the end of migrate_to",
          "A live migration still running this many seconds before migrate_to's timeout is "
          "aborted, so the VM keeps running on the source."),
    Param("autoset_utilization_cpu", "boolean", True, "Set the resource's cpu utilization",
          "From the domain's vCPU count, at start and migration, only when it changed."),
    Param("autoset_utilization_hv_memory", "boolean", True,
          "Set the resource's hv_memory utilization", "From the domain's memory (MiB), at "
          "start and migration, only when it changed."),
)
BY_NAME = {p.name: p for p in PARAMS}


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


_TRUE = {"1", "true", "yes", "on", "y"}
_FALSE = {"0", "false", "no", "off", "n", ""}


def _convert(p: Param, raw: str):
    if p.kind == "boolean":
        low = raw.strip().lower()
        if low in _TRUE:
            return True
        if low in _FALSE:
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
    if p.choices and raw not in p.choices:
        raise _wrong(f"parameter {p.name}={raw!r} must be one of {', '.join(c or '(empty)' for c in p.choices)}")
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

"""Every key rbdvm (and vm_manager) stores on a VM's system disk: its name, its codec, its
validation, and the one typed record (`VmConfig`) the operations, the CLI and the Pacemaker
builders take. Nothing else decodes a `_` key.

The settings are declared once (SETTINGS): the CLI derives its options from them, `encode`
stores them, `VmConfig` reads them back with their defaults.
"""

import ipaddress
import json
import math
import re
from dataclasses import dataclass, field
from enum import StrEnum

from . import agentparams, defaults, durations, names, timeouts
from .domainxml import DISK_BUSES
from .errors import Problems, UsageError


class VmState(StrEnum):
    """What a VM is in storage: the one list of its states (vmstore reads them; the three
    interrupted ones are also what STATE stores while an operation runs). A str, so JSON and
    comparisons with stored text need nothing more."""

    COMPLETE = "complete"
    CREATING = "creating"           # a create or clone is under way, or was interrupted
    REMOVING = "removing"           # a remove is under way, or was interrupted
    ROLLING_BACK = "rolling-back"   # a rollback rewrites the disks: half may be at the snapshot
    ABSENT = "absent"               # nothing of it in storage
    FOREIGN = "foreign"             # another tool's group or image in the shared pool
    BROKEN = "broken"               # a disk librbd cannot open


# the command whose interruption leaves each stored state, to be run again
INTERRUPTED = {VmState.CREATING: "create or clone", VmState.REMOVING: "remove",
               VmState.ROLLING_BACK: "snapshot rollback"}


# ------------------------------------------------------------------ the keys
VM_NAME = "vm_name"                # the VM's name (vm_manager's marker of its system disks)
XML = "xml"                        # the libvirt definition the agent starts
BASE_XML = "_base_xml"             # the operator's definition the xml was built from
ADDITIONAL_DISKS = "_additional_disks"
STATE = "_state"                   # VmState.CREATING | REMOVING | ROLLING_BACK; absent when complete
ROLLBACK_TO = "_rollback_to"       # the snapshot an interrupted rollback was going to
REENABLE = "_reenable"             # the target role a rollback restores after it
CREATED = "_created"
CLONED_FROM = "_cloned_from"       # JSON {"vm", "mode", "at"}
IMPORTED = "_imported"             # on a disk while its image is being imported
ADDING = "_adding"                 # on a data disk being added: the VM it is for (a re-run adopts it)
COPIED = "_copied"                 # on a disk while a full clone copies into it
NVRAM_ORIGIN = "_nvram_origin"     # on a variable store once its content is written: what it came from
RESTORING = "_restoring"           # on a system disk while a restore makes it: the backup id it restores
RESTORED = "_restored"             # on a disk being restored: the last backup of the chain applied to it
RESTORED_FROM = "_restored_from"   # JSON {"backup", "vm", "at"}: the backup the VM was restored from
COLOCATIONS = "_colocations"       # JSON [{"with", "strong", "anti"}]
SNAPSHOT_TIME_PREFIX = "_snapshot_"   # + snapshot name: when it was taken
DEFINITION_AT_PREFIX = "_definition_at_"   # + snapshot name: JSON {"xml", "base", "sig"} it was taken with
PREVIOUS_DEFINITION = "_previous_definition"   # JSON {"xml", "base", "sig"} before the last edit
DEFINITION_SIG = "_definition_sig"   # signing.py: xml and _base_xml, signed by the cluster
SETTINGS_SIG = "_settings_sig"       # signing.py: the settings below and _colocations, signed
# per-snapshot keys: never inherited by a clone (its snapshots are not the source's)
SNAPSHOT_PREFIXES = (SNAPSHOT_TIME_PREFIX, DEFINITION_AT_PREFIX)

# a system disk is rbdvm's (or vm_manager's) only if it carries one of these
OWNER_KEYS = (VM_NAME, STATE)
# rbdvm's bookkeeping: never copied to a clone, never shown as settings
INTERNAL_KEYS = (STATE, CREATED, IMPORTED, COPIED, CLONED_FROM, REENABLE, ROLLBACK_TO, PREVIOUS_DEFINITION,
                 DEFINITION_SIG, SETTINGS_SIG, RESTORING, RESTORED, RESTORED_FROM)
# keys a user's metadata may not set (every `_` key is rbdvm's too)
RESERVED_KEYS = frozenset({VM_NAME, XML, BASE_XML})


@dataclass(frozen=True)
class Setting:
    name: str           # option name: --disk-bus, --live-migration, ...
    # bool | int | str | choice | map, or a duration stored as whole seconds or milliseconds
    # (seconds | ms: given as a number of that unit or as Pacemaker reads durations)
    kind: str
    help: str
    choices: tuple = ()

    @property
    def key(self) -> str:
        return "_" + self.name


SETTINGS = (
    Setting("disk_bus", "choice", "bus of the VM's RBD disks [default: virtio]", DISK_BUSES),
    Setting("live_migration", "bool", "the cluster may live-migrate the VM (allow-migrate)"),
    Setting("pinned_host", "str", "the VM runs only on this node"),
    Setting("preferred_host", "str", "the VM prefers this node when it is up; an ordered list "
                                     "NODE1,NODE2 or with weights NODE1:3,NODE2:1 (higher is preferred)"),
    Setting("priority", "int", "Pacemaker priority of the VM's resource"),
    Setting("stop_timeout", "seconds", "how long a graceful stop may take: seconds, or 2min, 90s..."),
    Setting("migrate_to_timeout", "seconds", "how long a live migration may take: seconds, or 2min, 90s..."),
    Setting("migration_downtime", "ms", "maximum downtime of a live migration: milliseconds, or 1s, 500ms..."),
    # a Pacemaker guest node: pacemaker_remoted in the VM, so Pacemaker runs resources inside it
    Setting("remote_node", "str", "make the VM a Pacemaker guest node of this name (pacemaker_remoted runs in "
                                  "it); empty: no longer one"),
    Setting("remote_addr", "str", "address the cluster reaches the guest node at [default: its name]"),
    Setting("remote_port", "int", "port of the guest's pacemaker_remoted [default: 3121]"),
    Setting("remote_connect_timeout", "seconds", "how long the cluster waits for the guest node to connect "
                                                 "[default: 60s]"),
    Setting("pacemaker_meta", "map", "extra meta attribute of the resource, KEY=VALUE"),
    Setting("pacemaker_params", "map", "extra parameter of the resource agent, KEY=VALUE"),
    Setting("pacemaker_utilization", "map", "utilization attribute of the resource, KEY=VALUE"),
)
BY_NAME = {s.name: s for s in SETTINGS}
# what the cluster's resource is built from: signed together (SETTINGS_SIG)
SIGNED_SETTINGS = tuple(s.key for s in SETTINGS) + (COLOCATIONS,)
PINNED_HOST, PREFERRED_HOST = BY_NAME["pinned_host"].key, BY_NAME["preferred_host"].key
# the guest-node settings: remote_node is the one the others need
REMOTE = ("remote_node", "remote_addr", "remote_port", "remote_connect_timeout")
# each one's meta attribute of the VM's resource (Pacemaker's names)
REMOTE_META = {"remote_node": "remote-node", "remote_addr": "remote-addr", "remote_port": "remote-port",
               "remote_connect_timeout": "remote-connect-timeout"}
DISK_BUS = BY_NAME["disk_bus"].key

# keys of the map settings that rbdvm decides itself. A stored value would make the resource
# run another VM, read another Ceph cluster or hypervisor, or undo what rbdvm manages.
RESERVED_MAP_KEYS = {
    "pacemaker_params": {
        "vm": "the resource always runs its own VM", "config": "the definition is read from Ceph",
        "pool": "the VM's pool is where it is stored", "namespace": "the VM's namespace is where it is stored",
        "ceph_conf": "the Ceph cluster is the one the VM is stored in",
        "ceph_id": "the Ceph user is the one the VM is stored with",
        "hypervisor": "each node runs the VM on its own libvirtd"},
    "pacemaker_meta": {
        "target-role": "enable, disable, start and stop manage it",
        "allow-migrate": "the live_migration setting decides it",
        "priority": "the priority setting decides it",
        **{meta: f"the {name} setting decides it" for name, meta in REMOTE_META.items()}},
}


def check_map(name: str, value) -> dict:
    """A map setting's value as Pacemaker takes it: {str: str}, booleans as true/false.

    Refuses what is not a map of strings, numbers and booleans, and the reserved keys."""
    key = BY_NAME[name].key
    if not isinstance(value, dict):
        raise UsageError(f"setting {key} is not a map of KEY=VALUE", f"got {value!r}",
                         code="INVALID_SETTING", details={"setting": key})
    out = {}
    found = Problems()
    for k, v in value.items():
        with found.check():
            out.update(_map_item(name, key, k, v))
    found.raise_if_any(f"setting {key} has {len(found.errors)} refused entries")
    return out


def _map_item(name: str, key: str, k, v) -> dict:
    """One entry of map setting `name` (stored as `key`), checked and as Pacemaker takes it."""
    why = RESERVED_MAP_KEYS.get(name, {}).get(k)
    if why:
        raise UsageError(f"setting {key} may not set {k!r}", why,
                         f"Remove {k} from {key}", code="INVALID_SETTING", details={"setting": key})
    if not names.is_cib_id(k):
        raise UsageError(f"setting {key} has the key {k!r}",
                         "a Pacemaker attribute name is a letter or '_', then letters, digits, "
                         "'_', '.' or '-'", f"Rename {k!r}", code="INVALID_SETTING", details={"setting": key})
    if isinstance(v, bool):
        value = "true" if v else "false"
    elif isinstance(v, (str, int, float)):
        value = str(v)
    else:
        raise UsageError(f"setting {key}: the value of {k!r} is not a string, number or boolean",
                         f"got {v!r}", code="INVALID_SETTING", details={"setting": key})
    why = _CONTENT[name](k, value)
    if why:
        raise UsageError(f"setting {key}: {k}={value!r} is refused", why, f"Give {k} a valid value, or remove it",
                         code="INVALID_SETTING", details={"setting": key})
    return {k: value}


# a meta attribute's value: a Pacemaker score, boolean, duration, name or address
_META_VALUE = re.compile(r"[A-Za-z0-9_.:+-]{0,128}")

# each map setting's content rule: (key, value) -> why it is refused, or ""
_CONTENT = {
    "pacemaker_params": agentparams.refusal,
    "pacemaker_meta": lambda k, v: "" if _META_VALUE.fullmatch(v) else
    "a meta attribute's value is a score, boolean, duration, name or address (letters, digits, '_.:+-')",
    "pacemaker_utilization": lambda k, v: "" if v.isdigit() and len(v) <= 18 else
    "a utilization value is a whole number",
}


def stored_json(metadata: dict, key: str, default):
    """A JSON value stored under `key` (by rbdvm or any other tool); the one decoder."""
    raw = metadata.get(key)
    if raw is None:
        return default
    try:
        return json.loads(raw)
    except ValueError:
        raise UsageError(f"metadata {key} is not JSON", raw[:200],
                         "Set it again with rbdvm, or remove that metadata key",
                         code="INVALID_SETTING", details={"setting": key}) from None


def stored_map(metadata: dict, name: str) -> dict:
    """A map setting as stored on the system disk, checked as it was at create: what the
    Pacemaker resource is built from."""
    return check_map(name, stored_json(metadata, BY_NAME[name].key, {}))


def _stored_int(metadata: dict, name: str, default):
    key = BY_NAME[name].key
    raw = metadata.get(key)
    if raw is None or raw == "":
        return default
    if not raw.isdigit():
        raise UsageError(f"setting {key} is not a whole number", f"got {raw!r}",
                         "Set it again with rbdvm, or remove that metadata key",
                         code="INVALID_SETTING", details={"setting": key})
    return int(raw)


def colocations(metadata: dict) -> list:
    """The VM's colocations: [{"with": VM, "strong": bool, "anti": bool}, ...]; entries
    that are not of that shape are left out."""
    value = stored_json(metadata, COLOCATIONS, [])
    return [c for c in value if isinstance(c, dict) and isinstance(c.get("with"), str) and c["with"]] \
        if isinstance(value, list) else []


@dataclass(frozen=True)
class VmConfig:
    """What a VM's system disk asks of the cluster, decoded and checked, defaults applied."""

    disk_bus: str = defaults.DISK_BUS
    live_migration: bool = False
    pinned_host: str | None = None
    preferred_host: str | None = None
    priority: int | None = None
    stop_timeout: int = timeouts.ACTION_TIMEOUTS["stop"]
    migrate_to_timeout: int = timeouts.ACTION_TIMEOUTS["migrate_to"]
    migration_downtime: int | None = None
    remote_node: str | None = None
    remote_addr: str | None = None
    remote_port: int | None = None
    remote_connect_timeout: int | None = None
    pacemaker_params: dict = field(default_factory=dict)
    pacemaker_meta: dict = field(default_factory=dict)
    pacemaker_utilization: dict = field(default_factory=dict)
    colocations: list = field(default_factory=list)

    @classmethod
    def of(cls, metadata: dict) -> "VmConfig":
        """From a system disk's metadata; UsageError naming the key if one cannot be used."""
        _check_stored(metadata)
        return cls(
            disk_bus=metadata.get(BY_NAME["disk_bus"].key) or defaults.DISK_BUS,
            live_migration=metadata.get(BY_NAME["live_migration"].key, "").lower() == "true",
            pinned_host=metadata.get(BY_NAME["pinned_host"].key) or None,
            preferred_host=metadata.get(BY_NAME["preferred_host"].key) or None,
            priority=_stored_int(metadata, "priority", None),
            stop_timeout=_stored_int(metadata, "stop_timeout", timeouts.ACTION_TIMEOUTS["stop"]),
            migrate_to_timeout=_stored_int(metadata, "migrate_to_timeout", timeouts.ACTION_TIMEOUTS["migrate_to"]),
            migration_downtime=_stored_int(metadata, "migration_downtime", None),
            remote_node=metadata.get(BY_NAME["remote_node"].key) or None,
            remote_addr=metadata.get(BY_NAME["remote_addr"].key) or None,
            remote_port=_stored_int(metadata, "remote_port", None),
            remote_connect_timeout=_stored_int(metadata, "remote_connect_timeout", None),
            pacemaker_params=stored_map(metadata, "pacemaker_params"),
            pacemaker_meta=stored_map(metadata, "pacemaker_meta"),
            pacemaker_utilization=stored_map(metadata, "pacemaker_utilization"),
            colocations=colocations(metadata),
        )


def _check_stored(metadata: dict) -> None:
    """The content rule of each stored setting that is not a number or a map (those are
    checked as they are decoded): what a CIB is built from is what rbdvm would have stored."""
    def bad(key: str, raw, why: str) -> UsageError:
        return UsageError(f"setting {key} is not valid", f"{raw!r}: {why}",
                          "Set it again with rbdvm, or remove that metadata key",
                          code="INVALID_SETTING", details={"setting": key})

    raw = metadata.get(DISK_BUS)
    if raw and raw not in DISK_BUSES:
        raise bad(DISK_BUS, raw, f"not one of {', '.join(DISK_BUSES)}")
    key = BY_NAME["live_migration"].key
    if metadata.get(key, "").lower() not in ("", "true", "false"):
        raise bad(key, metadata[key], "not true or false")
    if metadata.get(PINNED_HOST) and not _NODE.fullmatch(metadata[PINNED_HOST]):
        raise bad(PINNED_HOST, metadata[PINNED_HOST], "not a node name")
    if metadata.get(PREFERRED_HOST):
        preferred_hosts(metadata[PREFERRED_HOST])
    for name in ("remote_node", "remote_addr"):
        key = BY_NAME[name].key
        why = _host_refusal(metadata[key], ip=name == "remote_addr") if metadata.get(key) else ""
        if why:
            raise bad(key, metadata[key], why)
    port = metadata.get(BY_NAME["remote_port"].key)
    if port and not (port.isdigit() and 0 < int(port) < 65536):
        raise bad(BY_NAME["remote_port"].key, port, "not a port (1 to 65535)")
    for c in colocations(metadata):
        if not names.is_name(c["with"]) or not all(isinstance(c.get(f, False), bool) for f in ("strong", "anti")):
            raise bad(COLOCATIONS, c, "not {\"with\": VM name, \"strong\": true|false, \"anti\": true|false}")


def encode_colocations(wanted: list) -> str:
    return json.dumps(wanted)


def encode_cloned_from(vm: str, mode: str, at: str) -> str:
    return json.dumps({"vm": vm, "mode": mode, "at": at})


def current_definition(metadata: dict) -> dict:
    """The VM's definition as it is now, in the shape a recorded one has: its `xml`, the base
    it was built from, and their signature."""
    return {"xml": metadata.get(XML), "base": metadata.get(BASE_XML), "sig": metadata.get(DEFINITION_SIG)}


def encode_definition(metadata: dict) -> str:
    """The VM's definition as it is now, to record (its signature kept as it is: a recorded
    definition is restored, never signed again)."""
    return json.dumps(current_definition(metadata))


def stored_definition(metadata: dict, key: str) -> dict | None:
    """A definition recorded under `key` (by a snapshot or an edit): {"xml", "base", "sig"},
    or None."""
    value = stored_json(metadata, key, None)
    if isinstance(value, dict) and isinstance(value.get("xml"), str) and isinstance(value.get("base"), str):
        return {"xml": value["xml"], "base": value["base"],
                "sig": value.get("sig") if isinstance(value.get("sig"), str) else None}
    return None


def definition_keys(recorded: dict) -> dict:
    """The metadata that makes a recorded definition the VM's current one again."""
    return {XML: recorded["xml"], BASE_XML: recorded["base"], DEFINITION_SIG: recorded.get("sig") or ""}


def cloned_from(metadata: dict) -> dict | None:
    value = stored_json(metadata, CLONED_FROM, None)
    return value if isinstance(value, dict) else None


def created(metadata: dict) -> str | None:
    """When the VM was made: created, or cloned."""
    return metadata.get(CREATED) or (cloned_from(metadata) or {}).get("at")


def check_user_key(key: str) -> str:
    """A key an operator may set: not one of rbdvm's records (those, and every key starting
    with '_', are rbdvm's), and letters and digits."""
    if key in RESERVED_KEYS or (isinstance(key, str) and key.startswith("_")):
        raise UsageError(f"metadata key {key!r} is reserved",
                         "rbdvm keeps its own records under it",
                         "Choose another key", code="RESERVED_KEY", details={"key": key})
    names.check_name(key, "metadata key")
    return key


def check_user_metadata(metadata) -> dict:
    """Every key of user metadata checked; all the bad ones reported together."""
    found = Problems()
    for key in metadata or {}:
        with found.check():
            check_user_key(key)
    found.raise_if_any(f"{len(found.errors)} metadata keys are refused")
    return dict(metadata or {})


def is_user_key(key: str) -> bool:
    return key not in RESERVED_KEYS and not key.startswith("_")


def encode(values: dict) -> dict:
    """{setting name: python value} -> {metadata key: stored string}; None means unset."""
    out = {}
    found = Problems()
    for name, value in values.items():
        if value is None or value == {} or value == ():
            continue
        with found.check():
            out.update(_encoded(BY_NAME[name], name, value))
    found.raise_if_any(f"{len(found.errors)} settings are not valid")
    if PINNED_HOST in out and PREFERRED_HOST in out:
        raise UsageError("a VM is either pinned or has a preferred host, not both", code="INVALID_SETTING")
    orphans = [BY_NAME[n].key for n in REMOTE[1:] if BY_NAME[n].key in out]
    if orphans and BY_NAME["remote_node"].key not in out:
        raise UsageError(f"{', '.join(orphans)} without a guest node", "they describe the guest node remote_node "
                         "names", "Give remote_node too", code="INVALID_SETTING",
                         details={"setting": orphans[0]})
    return out


def decode(metadata: dict) -> dict:
    """{setting name: python value} of the settings present in a VM's metadata, as stored
    (for showing them: a value another tool wrote badly is shown, not refused)."""
    out = {}
    for s in SETTINGS:
        raw = metadata.get(s.key)
        if raw is None:
            continue
        if s.kind == "bool":
            out[s.name] = raw.lower() == "true"
        elif s.kind in ("int", "seconds", "ms"):
            out[s.name] = int(raw) if raw.lstrip("-").isdigit() else raw
        elif s.kind == "map":
            try:
                out[s.name] = json.loads(raw)
            except ValueError:
                out[s.name] = raw
        else:
            out[s.name] = raw
    return out


# a node's name in a preference: a host name (letters, digits, '-', '.', '_')
_NODE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
MAX_WEIGHT = 999        # times PREFERRED_SCORE (1000) stays below Pacemaker's INFINITY


def _host_refusal(value: str, ip: bool) -> str:
    """Why `value` is no host name (letters, digits, '-', '.', '_'), nor (`ip`) an IP address."""
    if ip:
        try:
            ipaddress.ip_address(value)
            return ""
        except ValueError:
            pass
    if len(value) > 253 or not _NODE.fullmatch(value):
        return "not a host name (letters, digits, '-', '.', '_')" + (" nor an IP address" if ip else "")
    return ""


def preferred_hosts(value: str) -> list:
    """[(node, weight)] of a preferred_host setting, most preferred first: "node1" (weight
    1), an order "node1,node2" (weights n..1) or weights "node1:3,node2:1" (Proxmox's
    node:priority; higher is preferred, equal weights are equal). The one reading of it."""
    entries = [e.strip() for e in str(value).split(",")]
    if not value or not all(entries):
        raise UsageError("the preferred host list has an empty entry", f"got {value!r}",
                         "Give NODE, NODE1,NODE2 or NODE1:WEIGHT,NODE2:WEIGHT", code="INVALID_SETTING",
                         details={"setting": PREFERRED_HOST})
    parsed = [e.partition(":")[::2] for e in entries]
    weighted = [w != "" for _, w in parsed]
    problems = []
    if any(weighted) and not all(weighted):
        problems.append("give a weight to every node or to none")
    for node, weight in parsed:
        if not _NODE.fullmatch(node):
            problems.append(f"{node!r} is not a node name")
        if weight and not (weight.isdigit() and 1 <= int(weight) <= MAX_WEIGHT):
            problems.append(f"weight {weight!r} of {node} is not a whole number from 1 to {MAX_WEIGHT}")
    nodes = [n for n, _ in parsed]
    if len(set(nodes)) != len(nodes):
        problems.append("a node is named twice")
    if problems:
        raise UsageError(f"the preferred host list {value!r} is not valid", "; ".join(problems),
                         "Give NODE, NODE1,NODE2 or NODE1:WEIGHT,NODE2:WEIGHT", code="INVALID_SETTING",
                         details={"setting": PREFERRED_HOST})
    if all(weighted):
        out = [(n, int(w)) for n, w in parsed]
    else:
        out = [(n, len(nodes) - i) for i, n in enumerate(nodes)]
    return sorted(out, key=lambda nw: -nw[1])


def _encoded(s, name: str, value) -> dict:
    """{metadata key: stored string} of one setting's value, checked."""
    if s.kind == "bool":
        return {s.key: "true" if value else "false"}
    if s.kind in ("seconds", "ms"):
        ms = durations.milliseconds(value) if s.kind == "seconds" or not str(value).strip().isdigit() \
            else int(str(value).strip())
        if ms is None:
            raise UsageError(f"setting {s.key} is not a duration", f"got {value!r}; give {durations.SPELLINGS}",
                             code="INVALID_SETTING", details={"setting": s.key})
        return {s.key: str(math.ceil(ms / 1000) if s.kind == "seconds" else ms)}
    if s.kind == "int":
        if not isinstance(value, int) and not str(value).lstrip("-").isdigit():
            raise UsageError(f"setting {s.key} is not a whole number", f"got {value!r}",
                             code="INVALID_SETTING", details={"setting": s.key})
        if int(value) < 0:
            raise UsageError(f"setting {s.key} must not be negative", f"got {value}",
                             code="INVALID_SETTING", details={"setting": s.key})
        if name == "remote_port" and not 0 < int(value) < 65536:
            raise UsageError(f"setting {s.key} is not a port", f"got {value}; give 1 to 65535",
                             code="INVALID_SETTING", details={"setting": s.key})
        return {s.key: str(int(value))}
    if s.kind == "map":
        return {s.key: json.dumps(check_map(name, dict(value)), sort_keys=True)}
    if name == "preferred_host":
        preferred_hosts(value)      # refused here, before it is stored
    if name in ("remote_node", "remote_addr"):
        why = _host_refusal(str(value), ip=name == "remote_addr")
        if why:
            raise UsageError(f"setting {s.key} is not valid", f"{value!r}: {why}", code="INVALID_SETTING",
                             details={"setting": s.key})
    if s.kind == "choice" and value not in s.choices:
        raise UsageError(f"setting {s.key} must be one of {', '.join(s.choices)}",
                         f"got {value!r}", code="INVALID_SETTING", details={"setting": s.key})
    return {s.key: str(value)}

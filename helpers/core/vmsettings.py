"""rbdvm's per-VM settings: declared once here, stored as `_`-prefixed metadata on the system
disk (the keys vm_manager uses), turned into CLI options by rbdvm.cli and read by the
cluster commands."""

import json
from dataclasses import dataclass

from . import names
from .domainxml import DISK_BUSES
from .errors import UsageError


@dataclass(frozen=True)
class Setting:
    name: str           # option name: --disk-bus, --live-migration, ...
    kind: str           # bool | int | str | choice | map
    help: str
    choices: tuple = ()

    @property
    def key(self) -> str:
        return "_" + self.name


SETTINGS = (
    Setting("disk_bus", "choice", "bus of the VM's RBD disks [default: virtio]", DISK_BUSES),
    Setting("live_migration", "bool", "the cluster may live-migrate the VM (allow-migrate)"),
    Setting("pinned_host", "str", "the VM runs only on this node"),
    Setting("preferred_host", "str", "the VM prefers this node when it is up"),
    Setting("priority", "int", "Pacemaker priority of the VM's resource"),
    Setting("stop_timeout", "int", "seconds a graceful stop may take"),
    Setting("migrate_to_timeout", "int", "seconds a live migration may take"),
    Setting("migration_downtime", "int", "maximum downtime of a live migration, in ms"),
    Setting("pacemaker_meta", "map", "extra meta attribute of the resource, KEY=VALUE"),
    Setting("pacemaker_params", "map", "extra parameter of the resource agent, KEY=VALUE"),
    Setting("pacemaker_utilization", "map", "utilization attribute of the resource, KEY=VALUE"),
)
BY_NAME = {s.name: s for s in SETTINGS}
DEFAULT_DISK_BUS = "virtio"

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
        "priority": "the priority setting decides it"},
}


def check_map(name: str, value) -> dict:
    """A map setting's value as Pacemaker takes it: {str: str}, booleans as true/false.

    Refuses what is not a map of strings, numbers and booleans, and the reserved keys."""
    key = BY_NAME[name].key
    if not isinstance(value, dict):
        raise UsageError(f"setting {key} is not a map of KEY=VALUE", f"got {value!r}")
    out = {}
    for k, v in value.items():
        why = RESERVED_MAP_KEYS.get(name, {}).get(k)
        if why:
            raise UsageError(f"setting {key} may not set {k!r}", why,
                             f"Remove {k} from {key}")
        if not names.is_cib_id(k):
            raise UsageError(f"setting {key} has the key {k!r}",
                             "a Pacemaker attribute name is a letter or '_', then letters, digits, "
                             "'_', '.' or '-'", f"Rename {k!r}")
        if isinstance(v, bool):
            out[k] = "true" if v else "false"
        elif isinstance(v, (str, int, float)):
            out[k] = str(v)
        else:
            raise UsageError(f"setting {key}: the value of {k!r} is not a string, number or boolean",
                             f"got {v!r}")
    return out


def stored_map(metadata: dict, name: str) -> dict:
    """A map setting as stored on the system disk (by rbdvm or any other tool), checked as
    it was at create: what the Pacemaker resource is built from."""
    key = BY_NAME[name].key
    raw = metadata.get(key)
    if raw is None:
        return {}
    try:
        value = json.loads(raw)
    except ValueError:
        raise UsageError(f"setting {key} is not JSON", raw[:200],
                         "Set it again with rbdvm, or remove that metadata key") from None
    return check_map(name, value)


def encode(values: dict) -> dict:
    """{setting name: python value} -> {metadata key: stored string}; None means unset."""
    out = {}
    for name, value in values.items():
        if value is None or value == {} or value == ():
            continue
        s = BY_NAME[name]
        if s.kind == "bool":
            out[s.key] = "true" if value else "false"
        elif s.kind == "int":
            if int(value) < 0:
                raise UsageError(f"setting {s.key} must not be negative", f"got {value}")
            out[s.key] = str(int(value))
        elif s.kind == "map":
            out[s.key] = json.dumps(check_map(name, dict(value)), sort_keys=True)
        elif s.kind == "choice" and value not in s.choices:
            raise UsageError(f"setting {s.key} must be one of {', '.join(s.choices)}",
                             f"got {value!r}")
        else:
            out[s.key] = str(value)
    if "_pinned_host" in out and "_preferred_host" in out:
        raise UsageError("a VM is either pinned or has a preferred host, not both")
    return out


def decode(metadata: dict) -> dict:
    """{setting name: python value} of the settings present in a VM's metadata."""
    out = {}
    for s in SETTINGS:
        raw = metadata.get(s.key)
        if raw is None:
            continue
        if s.kind == "bool":
            out[s.name] = raw.lower() == "true"
        elif s.kind == "int":
            out[s.name] = int(raw) if raw.lstrip("-").isdigit() else raw
        elif s.kind == "map":
            try:
                out[s.name] = json.loads(raw)
            except ValueError:
                out[s.name] = raw
        else:
            out[s.name] = raw
    return out


def parse_pairs(pairs, what: str) -> dict:
    """['k=v', ...] -> {k: v}, for --metadata and the map settings."""
    out = {}
    for pair in pairs or ():
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise UsageError(f"{what} {pair!r} is not KEY=VALUE")
        out[key] = value
    return out

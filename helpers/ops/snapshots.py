"""VM snapshots: one atomic RBD group snapshot across all disks of a VM (crash-consistent,
allowed while it runs), and vm_manager's per-disk snapshots, listed and handled alike."""

from datetime import timezone

from ..ceph import snapstore, trust, vmstore
from ..ceph.lease import Lease
from ..core import backupset, hints, names, vmschema
from ..core.errors import Conflict, NotFound, UsageError
from ..core.faults import checkpoint
from ..core.hints import Hint
from ..core.vmschema import VmState
from . import running
from .env import Env


def _iso(t) -> str | None:
    return t.isoformat() if t else None


def list_snapshots(env: Env, vm: str) -> list:
    session = env.session
    rec = vmstore.require_complete(session, vm)
    return [{"name": n, "kind": e["kind"], "time": _iso(e["time"]), "disks": e["disks"],
             "complete": e["complete"], "clones": e["children"]}
            for n, e in snapstore.snapshots(session, rec).items()]


def _require(env: Env, rec, snap):
    session = env.session
    snaps = snapstore.snapshots(session, rec)
    if snap not in snaps:
        raise NotFound("Snapshot does not exist on VM", f"VM {rec.name} has no snapshot {snap}",
                       f"List them with `rbdvm snapshot list {rec.name}`",
                       code="SNAPSHOT_NOT_FOUND", details={"vm": rec.name, "snapshot": snap})
    return snaps[snap]


def create_snapshot(env: Env, vm: str, snap: str) -> dict:
    session = env.session
    names.check_name(snap, "snapshot name")
    with Lease(session, vm, f"snapshot create {snap}"):
        rec = vmstore.require_complete(session, vm)
        snaps = snapstore.snapshots(session, rec)
        time_key = vmschema.SNAPSHOT_TIME_PREFIX + snap
        if snap in snaps and snaps[snap]["kind"] == snapstore.GROUP and not snaps[snap]["complete"] \
                and time_key not in rec.metadata:
            # librbd was interrupted inside the group snapshot: some disks may lack theirs.
            # It holds nothing a rollback could use: removed, then made again
            snapstore.remove_snapshot(session, vm, snap, snaps[snap])
            del snaps[snap]
        if snap in snaps:
            entry = snaps[snap]
            if entry["kind"] == snapstore.GROUP and time_key not in rec.metadata:
                # this very command was interrupted after the snapshot: finish it (the lease
                # kept the definition as it was then)
                when = entry["time"] or env.now()
                vmstore.set_metadata(session, names.system_disk(vm), _recorded(rec, snap, when))
                return {"vm": vm, "name": snap, "time": _iso(when), "disks": rec.disks,
                        "consistency": {"level": "unknown", "why": "an interrupted command took the snapshot"}}
            raise Conflict("Snapshot already exists", f"VM {vm} already has a snapshot {snap}",
                           "Choose another snapshot name", code="SNAPSHOT_EXISTS", details={"vm": vm, "snapshot": snap})
        when = env.now()
        consistency = _group_snapshot(env, rec, snap)
        checkpoint("snapshot:created")
        vmstore.set_metadata(session, names.system_disk(vm), _recorded(rec, snap, when))
    return {"vm": vm, "name": snap, "time": _iso(when), "disks": rec.disks, "consistency": consistency}


def _group_snapshot(env: Env, rec, snap: str) -> dict:
    """The group snapshot, the running guest's filesystems frozen by its agent meanwhile when
    it has one; how consistent it is ({"level", "why"})."""
    session = env.session
    guest = running.running_guest(env, rec)
    if guest is None or not guest[2]:
        snapstore.create_group_snapshot(session, rec.name, snap)
        if guest is None:
            return {"level": backupset.OFFLINE, "why": "the VM was not running"}
        return {"level": backupset.CRASH, "why": "its definition has no QEMU guest agent channel"}
    with env.hold_still(guest[1], rec.name, True, pause=False) as info:
        snapstore.create_group_snapshot(session, rec.name, snap)
    return {"level": info["level"], "why": info["why"]}


def _recorded(rec, snap: str, when) -> dict:
    """What the system disk records of a snapshot: its time and the definition it goes with
    (a rollback restores both: old disks must not boot with a newer definition)."""
    return {vmschema.SNAPSHOT_TIME_PREFIX + snap: _iso(when),
            vmschema.DEFINITION_AT_PREFIX + snap: vmschema.encode_definition(rec.metadata)}


def remove_snapshot(env: Env, vm: str, snap: str) -> dict:
    session = env.session
    names.check_name(snap, "snapshot name")
    with Lease(session, vm, f"snapshot remove {snap}"):
        rec = vmstore.require_complete(session, vm)
        entry = _require(env, rec, snap)
        _remove_one(env, rec, snap, entry)
    return {"vm": vm, "name": snap}


def _remove_one(env: Env, rec, snap: str, entry) -> None:
    session = env.session
    if entry["children"]:
        raise Conflict(f"snapshot {snap} of VM {rec.name} has clones",
                       f"{', '.join(entry['children'])} depend on it",
                       "Remove those clones first (or flatten them with `rbd flatten`)",
                       code="HAS_CLONES", details={"vm": rec.name, "snapshot": snap, "clones": list(entry["children"])})
    snapstore.remove_snapshot(session, rec.name, snap, entry)
    vmstore.set_metadata(session, names.system_disk(rec.name), {},
                         remove=[prefix + snap for prefix in vmschema.SNAPSHOT_PREFIXES])


def check_rollback(env: Env, rec, snap: str) -> dict:
    """The snapshot of the VM (a complete record) a rollback would restore; raises if there
    is none to restore."""
    session = env.session
    names.check_name(snap, "snapshot name")
    entry = _require(env, rec, snap)
    if entry.get("missing"):
        raise Conflict(f"snapshot {snap} of VM {rec.name} is incomplete",
                       f"{', '.join(entry['missing'])} has no snapshot {snap}: a rollback would "
                       "leave that disk at its current content",
                       f"Remove it: rbdvm snapshot remove {rec.name} {snap}",
                       code="SNAPSHOT_INCOMPLETE", details={"vm": rec.name, "snapshot": snap})
    if not entry["complete"]:
        raise Conflict(f"snapshot {snap} of VM {rec.name} is incomplete",
                       "its creation was interrupted: it does not hold every disk",
                       f"Remove it: rbdvm snapshot remove {rec.name} {snap}",
                       code="SNAPSHOT_INCOMPLETE", details={"vm": rec.name, "snapshot": snap})
    recorded = vmschema.stored_definition(rec.metadata, vmschema.DEFINITION_AT_PREFIX + snap)
    if recorded is not None:
        # the definition a rollback restores becomes the one the VM runs: refused before
        # any disk changes unless this cluster signed it, and it passes today's policy
        doing = f"cannot roll VM {rec.name} back to snapshot {snap}"
        trust.require_recorded(session, rec.name, recorded, f"definition of snapshot {snap}", doing, snapshot=snap)
        trust.require_policy(session, rec.name, recorded["xml"], doing)
    return entry


def rollback(env: Env, vm: str, snap: str) -> dict:
    """Every disk back to the snapshot; refused while any client has a disk open."""
    session = env.session
    names.check_name(snap, "snapshot name")
    system = names.system_disk(vm)
    with Lease(session, vm, f"snapshot rollback {snap}") as lease:
        rec = require_rollback_target(env, vm, snap)
        entry = check_rollback(env, rec, snap)
        vmstore.refuse_if_open(session, vm, rec.disks, "roll back")
        # marked before the first disk changes: a rollback cut short leaves a VM nothing boots
        vmstore.set_metadata(session, system, {vmschema.STATE: VmState.ROLLING_BACK,
                                               vmschema.ROLLBACK_TO: snap})
        checkpoint("rollback:marked")
        if entry["kind"] == snapstore.GROUP:
            snapstore.rollback_group(session, vm, snap)
        else:
            for disk in entry["disks"]:
                lease.check()
                snapstore.rollback_disk(session, vm, disk, snap)
                checkpoint("rollback:disk")
        lease.check()
        # the definition the snapshot was taken with, set before the VM is complete again
        recorded = vmschema.stored_definition(rec.metadata, vmschema.DEFINITION_AT_PREFIX + snap)
        restored = vmschema.definition_keys(recorded) if recorded else {}
        vmstore.set_metadata(session, system, restored, remove=[vmschema.STATE, vmschema.ROLLBACK_TO])
    return {"vm": vm, "name": snap, "disks": entry["disks"],
            "definition": "restored" if recorded else "kept (the snapshot recorded none)"}


def require_rollback_target(env: Env, vm: str, snap: str):
    """The VM a rollback to `snap` may run on: complete, or half rolled back to `snap`."""
    session = env.session
    rec = vmstore.require_complete(session, vm, rolling_back_ok=True)
    pending = rec.metadata.get(vmschema.ROLLBACK_TO)
    if rec.state == VmState.ROLLING_BACK and pending != snap:
        raise Conflict(f"VM {vm} is partly rolled back to snapshot {pending}",
                       f"finish that rollback before rolling back to {snap}",
                       f"Run `rbdvm snapshot rollback {vm} {pending}` first",
                       code="VM_INCOMPLETE", details={"vm": vm, "snapshot": pending})
    return rec


def purge(env: Env, vm: str, *, everything=False, oldest=None, before=None, dry_run=False) -> dict:
    """Remove all snapshots, the N oldest, or those older than `before` (a datetime).

    A snapshot that still has clones is kept and reported; the others go on regardless.
    Not transactional, by nature: re-running after an interruption removes the rest.
    `dry_run`: say what would be removed and kept, remove nothing.
    """
    session = env.session
    chosen = [everything, oldest is not None, before is not None]
    if sum(chosen) != 1:
        raise UsageError("purge needs exactly one choice of snapshots", hint=Hint(hints.PURGE_WHICH))
    if oldest is not None and oldest < 0:
        raise UsageError("the number of oldest snapshots to purge must not be negative", f"got {oldest}")
    if before is not None and before.tzinfo is None:
        before = before.replace(tzinfo=timezone.utc)
    if dry_run:
        snaps = _purge_choice(env, vmstore.require_complete(session, vm), oldest, before)
        return {"vm": vm, "removed": [n for n, e in snaps if not e["children"]],
                "kept": [_kept(n, e) for n, e in snaps if e["children"]]}
    with Lease(session, vm, "snapshot purge") as lease:
        rec = vmstore.require_complete(session, vm)
        removed, kept = [], []
        for name, entry in _purge_choice(env, rec, oldest, before):
            lease.check()
            if entry["children"]:
                kept.append(_kept(name, entry))
                continue
            _remove_one(env, rec, name, entry)
            removed.append(name)
    return {"vm": vm, "removed": removed, "kept": kept}


def _purge_choice(env: Env, rec, oldest, before) -> list:
    """[(name, entry)] of the snapshots a purge takes (all when neither `oldest` nor `before`)."""
    session = env.session
    snaps = list(snapstore.snapshots(session, rec).items())
    if oldest is not None:
        return snaps[:oldest]
    if before is not None:
        return [(n, e) for n, e in snaps if e["time"] is not None and e["time"] < before]
    return snaps


def _kept(name: str, entry) -> dict:
    return {"name": name, "reason": f"clones depend on it: {', '.join(entry['children'])}"}

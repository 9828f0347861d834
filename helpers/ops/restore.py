"""Restoring a VM from a backup directory: its full backup, then each incremental up to the
chosen point, applied to new images in this session's pool and namespace (any cluster).

Everything is checked before anything is written: the chain whole (each parent the one
its child was made from), every manifest signed by this cluster (unless the operator vouches
for a foreign one), every file read again against its SHA-256 and parsed as a diff stream.
Then, under the VM's lease, as steps a re-run finishes: images made and marked (restoring
backup X), each disk's streams applied in order (each disk records the last one applied),
the definition built for the new images, checked against the device policy and signed by
this cluster, the settings signed, and the system disk's state cleared last (the commit
point). Under another name the VM gets a new UUID and MACs; under its own it keeps them,
and an existing VM of that name is replaced only when asked and disabled.
Checkpoints restore:images, restore:disk, restore:commit.
"""

import json

from ..backupdir.store import Store
from ..ceph import export, groups, images, nvram, trust, vmstore
from ..ceph.lease import Lease
from ..ceph.vmstore import where
from ..core import backupset, defaults, domainxml, hints, names, rbddiff, vmschema
from ..core.errors import Conflict
from ..core.faults import checkpoint
from ..core.hints import Hint
from ..core.vmschema import VmState
from . import definition
from .backup import require_authentic, signed_ids
from .env import Env
from .history import recorded
from .removal import remove_record

# what a restored VM takes from the backup's metadata: its settings and the user's keys
_SETTING_KEYS = set(vmschema.SIGNED_SETTINGS) | {vmschema.DISK_BUS}


def _taken_metadata(metadata: dict) -> dict:
    return {k: v for k, v in metadata.items() if k in _SETTING_KEYS or vmschema.is_user_key(k)}


def _check_files(store: Store, entry: dict, progress) -> None:
    """Every file of a backup read once: its SHA-256 as the manifest says, and a well-formed
    diff stream (BACKUP_BROKEN naming the file otherwise)."""
    for d in entry["manifest"]["disks"]:
        problem = store.disk_problem(entry, d)
        if problem is None:
            with store.hashed(entry, d) as f:
                try:
                    for rec in rbddiff.read(f):
                        if rec[0] == "size" and rec[1] != d["size"]:
                            problem = f"file {d['file']} is of a {rec[1]}-byte image, its manifest says {d['size']}"
                            break
                        if progress and rec[0] == "write":
                            progress(d["image"], len(rec[2]), d["data_bytes"])
                except rbddiff.Malformed as exc:
                    problem = f"file {d['file']} is not a valid RBD diff stream: {exc}"
                problem = problem or f.mismatch()
        if problem:
            raise Conflict(f"backup {entry['id']} of VM {entry['vm']} cannot be restored",
                           f"{problem} ({entry['path']})",
                           "Restore an earlier point, or bring back an intact copy of that file",
                           code="BACKUP_BROKEN", details={"backup": entry["id"], "file": d["file"]})


@recorded("restore", keep=("id", "name"))
def restore(env: Env, directory: str, vm: str, *, as_name: str | None = None, at=None, force: bool = False,
            accept_foreign: bool = False, progress=None) -> dict:
    """Rebuild VM `vm` (as `as_name`) from `directory` at `at` (a backup id, a datetime, or
    None: the newest). progress(what, bytes, of bytes) as each file is checked, then as
    each disk is written."""
    names.check_name(vm, "VM name")
    target = names.check_new_vm_name(as_name or vm)
    store = Store(directory)
    with store.lock(vm, shared=True):
        return _restore(env, store, vm, target, at, force, accept_foreign, progress)


def _restore(env: Env, store: Store, vm: str, target: str, at, force: bool, accept_foreign: bool,
             progress) -> dict:
    """restore(), under the backup directory's lock (shared: a prune waits)."""
    session = env.session
    new_identity = target != vm
    by_id, bid, chain, verdicts = _verified_chain(env, store, vm, at, accept_foreign, progress)
    last = chain[-1]
    stored = last["definition"]
    base = stored["base"] or stored["xml"]
    bus = last["metadata"].get(vmschema.DISK_BUS) or defaults.DISK_BUS
    doing = f"cannot restore VM {target}"
    trust.require_policy(session, target, base, doing)
    key = trust.signing_key(session)
    roles = [d["role"] for d in last["disks"]]
    disks = names.disk_names(target, roles.count("data"))
    targets = disks + ([names.nvram_image(target)] if "nvram" in roles else [])
    session.ensure_namespace()
    with Lease(session, target, "restore") as lease:
        rec = _replaceable(env, target, force, lease)
        if not new_identity and last["uuid"]:
            definition.check_uuid_free(env, last["uuid"], target)
        _claim(env, rec, target, targets, bid)
        for image, d in zip(targets, last["disks"]):
            lease.check()
            images.ensure_image(session, image, d["size"])
            if image == disks[0]:
                vmstore.set_metadata(session, image, {vmschema.STATE: VmState.CREATING, vmschema.VM_NAME: target,
                                                      vmschema.RESTORING: bid})
                vmstore.mark_making(session, target, False)
        groups.ensure_group(session, target, targets)
        checkpoint("restore:images")
        _write_disks(env, store, vm, target, targets, [(by_id[m["id"]], m) for m in chain], lease, progress)
        if "nvram" in roles:
            nvram.mark_complete(session, target, f"backup {bid} of VM {vm}")
        built_from = base if new_identity else domainxml.keep_identity(base, stored["xml"])
        xml = definition.build(env, built_from, target, disks, bus, new_identity=new_identity)
        signed = trust.new_definition(session, target, xml, base, doing, key)
        origin = json.dumps({"backup": bid, "vm": vm, "at": last["time"]}, sort_keys=True)
        values = {**_taken_metadata(last["metadata"]), vmschema.VM_NAME: target, vmschema.DISK_BUS: bus,
                  vmschema.CREATED: env.now().isoformat(), vmschema.RESTORED_FROM: origin, **signed}
        values.update(trust.signed_settings(session, target, values, key))
        if len(disks) > 1:
            values[vmschema.ADDITIONAL_DISKS] = str(len(disks) - 1)
        for image in targets[1:]:
            vmstore.set_metadata(session, image, {}, remove=[vmschema.RESTORED])
        checkpoint("restore:commit")
        lease.check()
        vmstore.set_metadata(session, disks[0], values, remove=[
            k for k in (vmschema.STATE, vmschema.RESTORING, vmschema.RESTORED, vmschema.ADDITIONAL_DISKS,
                        *vmschema.SIGNED_SETTINGS) if k not in values])
    return {"name": target, "vm": vm, "backup": bid, "chain": [m["id"] for m in chain], "disks": targets,
            "uuid": domainxml.uuid_of(xml), "new_identity": new_identity,
            "signed": sorted(set(verdicts.values())), "consistency": last["consistency"]["level"]}


def _replaceable(env: Env, target: str, force: bool, lease):
    """The record of `target`, which the restore may take: none, or an unfinished one, or
    (`force`) a VM, removed first."""
    rec = vmstore.record(env.session, target)
    if rec.state == VmState.COMPLETE:
        if not force:
            raise Conflict("VM already exists", f"VM {target} exists in {where(env.session)}",
                           hint=Hint(hints.RESTORE_OVER, {"vm": target}), code="VM_EXISTS",
                           details={"vm": target})
        remove_record(env, rec, lease)
        rec = vmstore.record(env.session, target)
    vmstore.refuse_unusable(rec)
    return rec


def _verified_chain(env: Env, store: Store, vm: str, at, accept_foreign: bool, progress) -> tuple:
    """(the VM's backups by id, the one picked, its chain, each one's signature verdict):
    every manifest authenticated and every file checked before anything is written."""
    by_id = store.backups(vm)
    # by time, among what this cluster signed (a forged "newest" is never the default)
    among = None if accept_foreign else signed_ids(trust.signing_key(env.session), by_id)
    bid = backupset.pick(by_id, vm, at, among)
    chain = backupset.require_chain(by_id, bid)
    verdicts = {m["id"]: require_authentic(env, m, accept_foreign) for m in chain}
    for m in chain:
        _check_files(store, by_id[m["id"]],
                     (lambda image, n, total, bid=m["id"]: progress(f"checking {bid}/{image}", n, total))
                     if progress else None)
    return by_id, bid, chain, verdicts


def _write_disks(env: Env, store: Store, vm: str, target: str, targets: list, chain: list, lease,
                 progress) -> None:
    """Apply each backup of `chain` ([(directory entry, manifest)], oldest first) to the
    images `targets`, skipping what an interrupted run already applied (RESTORED)."""
    session = env.session
    for position, image in enumerate(targets):
        applied = vmstore.read_metadata(session, image).get(vmschema.RESTORED)
        to_write = sum(m["disks"][position]["data_bytes"] for _, m in chain)
        for entry, m in chain:
            if applied and backupset.is_id(applied) and backupset.sort_key(m["id"]) <= backupset.sort_key(applied):
                continue
            lease.check()
            d = m["disks"][position]
            # the bytes applied are hashed as they are read: storage that answers this
            # read otherwise than the check's never has its data kept
            with store.hashed(entry, d) as f:
                export.apply(session, image, rbddiff.read(f),
                             (lambda n, image=image, total=to_write: progress(f"writing {image}", n, total))
                             if progress else None)
                changed = f.mismatch()
            if changed:
                _undo(env, target, lease)
                raise Conflict(f"backup {m['id']} of VM {vm} cannot be restored",
                               f"{changed} between its check and its restore ({entry['path']}); what was "
                               f"made of VM {target} is removed again", "Restore from storage that "
                               "does not change under a reader, or bring back an intact copy",
                               code="BACKUP_BROKEN", details={"backup": m["id"], "file": d["file"]})
            vmstore.set_metadata(session, image, {vmschema.RESTORED: m["id"]})
            checkpoint("restore:disk")


def _undo(env: Env, target: str, lease) -> None:
    """Remove what this restore made of `target` (before its commit point: nothing of it is
    a VM yet)."""
    remove_record(env, vmstore.record(env.session, target), lease)


def _claim(env: Env, rec, target: str, targets, bid: str) -> None:
    """Make sure `target`'s images may be written by this restore: new (claimed now), or
    left by an interrupted restore (of another point: cleared first, nothing of it is kept)."""
    session = env.session
    if rec.state != VmState.CREATING:
        vmstore.refuse_taken(session, target, targets)
        vmstore.mark_making(session, target, True)
        return
    if not set(rec.metadata) & {vmschema.STATE, vmschema.VM_NAME}:
        # a restore (or create) that died between making the system disk and marking it:
        # an empty image, nothing else yet (the system disk comes first)
        return
    if vmschema.RESTORING not in rec.metadata:
        raise Conflict(f"VM {target} is being created or cloned", "that command was interrupted; a restore "
                       "does not take its images over", f"Finish it (run it again) or remove VM {target} first",
                       code="VM_INCOMPLETE", details={"vm": target})
    if rec.metadata[vmschema.RESTORING] == bid:
        return
    # an interrupted create, clone or restore of something else: its images are cleared,
    # never trusted to hold what this restore would have written
    present = [i for i in targets if vmstore.image_exists(session, i)]
    vmstore.refuse_if_open(session, target, present, "overwrite the disks of")
    for image in present:
        images.zero(session, image)
        vmstore.set_metadata(session, image, {}, remove=[vmschema.RESTORED])

"""Backups of VMs off the cluster, into a directory (core/backupset: what a backup is;
backupdir/store: the directory; ceph/export: the disks).

A backup snapshots every disk of the VM and its UEFI variable store at one instant (the
running guest frozen by its agent when it has one, and paused while the per-disk snapshots
are made, hypervisor/quiesce), then exports each, all its data (full) or what changed since
the previous backup's snapshot (incremental: the default when the directory holds a whole
chain of the VM whose snapshot the VM still has). The snapshot of the newest backup is kept
(it is the next incremental's start, listed among the VM's snapshots) and the older one
released. The manifest goes last; until then the backup is a partial directory that the
next backup of the VM removes. Checkpoints backup:snapshot, backup:disk, backup:committed.
"""

import time

from ..backupdir.store import Store
from ..ceph import export, trust, vmstore
from ..ceph.lease import Lease
from ..core import backupset, domainxml, hints, names, secret, signing, vmschema
from ..core.errors import Conflict, RbdvmError, Untrusted, UsageError
from ..core.faults import checkpoint
from ..core.hints import Hint
from . import running
from .env import Env
from .history import recorded

# what a backup records of the system disk's metadata: all but snapshot records and rbdvm's
# bookkeeping (a restore signs what it writes again)
_NOT_KEPT = vmschema.INTERNAL_KEYS


def _kept_metadata(metadata: dict) -> dict:
    return {k: v for k, v in metadata.items()
            if k not in _NOT_KEPT and not k.startswith(vmschema.SNAPSHOT_PREFIXES)}


def _binding(source: dict, vm: str) -> signing.Binding:
    return signing.Binding(fsid=source["fsid"], pool=source["pool"], namespace=source["namespace"], vm=vm)


def sign(key, manifest: dict) -> str:
    return signing.sign(key, signing.BACKUP, _binding(manifest["source"], manifest["vm"]),
                        backupset.signed_part(manifest))


def verdict(key, manifest: dict) -> tuple:
    """(signing verdict, key id) of a manifest: made by this cluster's key for its VM."""
    if key is None:
        return "unknown", ""
    return signing.verdict(key, signing.BACKUP, _binding(manifest["source"], manifest["vm"]),
                           backupset.signed_part(manifest), manifest.get("signature"))


def _images(rec) -> list:
    """[(image, role)] a backup of the VM holds, system disk first, the variable store last."""
    return [(d, "system" if i == 0 else "data") for i, d in enumerate(rec.disks)] + \
        ([(rec.nvram, "nvram")] if rec.nvram else [])


def signed_ids(key, by_id: dict) -> set:
    """The backups of `by_id` whose manifests this cluster signed: the only ones a prune
    counts and a backup continues from (a backup directory is not trusted storage)."""
    return {i for i, e in by_id.items() if e.get("manifest") and verdict(key, e["manifest"])[0] == signing.SIGNED}


def _parent(env: Env, rec, images, existing: dict, points: dict, signed: set) -> tuple:
    """(manifest of the backup to continue from, or None; why a full backup). `points`:
    export.backup_points of the images; `signed`: signed_ids of `existing`. Only a chain
    this cluster signed, link by link."""
    session = env.session
    whole = [i for i in backupset.newest_first(existing, signed) if backupset.chain_problem(existing, i) is None
             and all(m["id"] in signed for m in backupset.chain_of(existing, i))]
    if not whole:
        return None, "the directory holds no whole backup of the VM signed by this cluster"
    m = existing[whole[0]]["manifest"]
    uuid = domainxml.stored_uuid(rec.metadata.get(vmschema.XML))
    if m["uuid"] != uuid or [d["image"] for d in m["disks"]] != images:
        return None, f"the VM's identity or disks changed since backup {m['id']}"
    t = session.target
    if (m["source"]["pool"], m["source"]["namespace"], m["source"]["fsid"]) != (t.pool, t.namespace, session.fsid()):
        return None, f"backup {m['id']} was taken of another pool, namespace or cluster"
    if any(points[d["image"]].get(m["snapshot"]) != d["snap_id"] for d in m["disks"]):
        return None, f"the VM no longer has backup {m['id']}'s snapshot {m['snapshot']}"
    return m, ""


def _consistency(env: Env, vm: str, rec, images, snap: str) -> tuple:
    """Snapshot `snap` on every image at one instant; ({"level", "why", ...}, {image: snap id})."""
    session = env.session
    guest = running.running_guest(env, rec)
    if guest is None:
        open_by = vmstore.watchers(session, images)
        if open_by and len(images) > 1:
            # no guest rbdvm can pause: per-disk snapshots would be of different instants
            raise Conflict(f"cannot back up VM {vm} while it runs outside the cluster's control",
                           vmstore.describe_watchers(open_by) + "; its disks could not be snapshotted at one "
                           "instant", f"Enable it (rbdvm enable {vm}) or stop it, then back it up",
                           code="VM_RUNNING", details={"vm": vm})
        level = {"level": backupset.CRASH, "why": "its disk is open outside the cluster's control"} if open_by \
            else {"level": backupset.OFFLINE, "why": "the VM was not running"}
        return level, export.take_point(session, images, snap)
    node, uri, agent = guest
    with env.hold_still(uri, vm, agent) as info:
        ids = export.take_point(session, images, snap)
        checkpoint("backup:held")
    return {**info, "node": node}, ids


@recorded("backup", keep=("id", "kind"))
def backup(env: Env, vm: str, directory: str, *, full: bool = False, progress=None) -> dict:
    """Back VM `vm` up into `directory`; the summary (the manifest's main fields, sizes, the
    snapshots released). progress(image, bytes done, bytes to read)."""
    session = env.session
    names.check_name(vm, "VM name")
    store = Store(directory, create=True)
    key = trust.signing_key(session)
    started = time.monotonic()
    with Lease(session, vm, "backup") as lease:
        rec = vmstore.require_complete(session, vm)
        doing = f"cannot back up VM {vm}"
        # a manifest signed over a definition nobody verified would launder it for a restore
        trust.require_definition(session, vm, rec.metadata, doing)
        trust.require_settings(session, vm, rec.metadata, doing)
        roles = _images(rec)
        store.ensure_vm_dir(vm)
        with store.lock(vm):
            return _backup(env, vm, store, rec, roles, key, full, progress, lease, started)


def _backup(env: Env, vm: str, store: Store, rec, roles, key, full: bool, progress, lease, started) -> dict:
    """backup(), under the VM's lease and its backup directory's lock."""
    session = env.session
    images = [i for i, _ in roles]
    discarded = store.discard_partials(vm)
    existing = store.backups(vm)
    points = export.backup_points(session, images)
    signed = signed_ids(key, existing)
    parent, why_full = (None, "asked for") if full else _parent(env, rec, images, existing, points, signed)
    # never the name of a snapshot a killed backup left (of some disks only, or older)
    snapshot_ids = {backupset.id_of(s) for snaps in points.values() for s in snaps}
    taken = set(store.ids(vm)) | snapshot_ids
    # dated after every backup this cluster signed here and every backup snapshot of the
    # VM, whatever the clock says
    newest = [backupset.time_of(existing[i]["manifest"]) for i in signed] + \
        [backupset.id_time(i) for i in snapshot_ids if backupset.is_id(i)]
    when = backupset.not_before(max((t for t in newest if t), default=None), env.now())
    bid = backupset.new_id(when, taken)
    snap = names.backup_snapshot(bid)
    consistency, snap_ids = _consistency(env, vm, rec, images, snap)
    checkpoint("backup:snapshot")
    partial = store.begin(vm, bid)
    disks = []
    for image, role in roles:
        lease.check()
        with partial.sink(image) as sink:
            stats = export.export(session, image, snap, parent["snapshot"] if parent else None, sink,
                                  (lambda done, total, image=image: progress(image, done, total)) if progress
                                  else None)
        disks.append({"image": image, "role": role, "size": stats["size"], "snap_id": snap_ids[image],
                      "file": backupset.stream_name(image), "bytes": sink.bytes, "sha256": sink.sha256,
                      "data_bytes": stats["data_bytes"]})
        checkpoint("backup:disk")
    t = session.target
    manifest = {
        "format": backupset.FORMAT, "id": bid, "vm": vm, "time": when.isoformat(),
        "uuid": domainxml.stored_uuid(rec.metadata.get(vmschema.XML)),
        "kind": backupset.INCREMENTAL if parent else backupset.FULL,
        "parent": {"id": parent["id"], "manifest_sha256": existing[parent["id"]]["digest"]} if parent else None,
        "snapshot": snap, "source": {"fsid": session.fsid(), "pool": t.pool, "namespace": t.namespace},
        "consistency": consistency, "definition": vmschema.current_definition(rec.metadata),
        "metadata": _kept_metadata(rec.metadata), "disks": disks,
    }
    manifest["signature"] = sign(key, manifest)
    lease.check()
    path = partial.commit(backupset.encode(manifest))
    checkpoint("backup:committed")
    released = export.release(session, images, keep=snap)
    return {"vm": vm, "id": bid, "kind": manifest["kind"], "parent": parent["id"] if parent else None,
            "why_full": why_full if not parent else None, "consistency": consistency, "path": path,
            "snapshot": snap, "released": released, "discarded": discarded, "disks": disks,
            "bytes": sum(d["bytes"] for d in disks), "data_bytes": sum(d["data_bytes"] for d in disks),
            "seconds": round(time.monotonic() - started, 3)}


# ------------------------------------------------------------------ reading a directory
def _key_here(env: Env):
    """This node's signing key to check manifests with; None where it cannot be read (a
    backup server that is no cluster node: signatures shown as unknown)."""
    if env.session is not None:
        return trust.key_here(env.session)
    try:
        return secret.load()
    except RbdvmError:
        return None


def _all(store: Store, vm: str | None) -> dict:
    """{vm: {id: entry}} of the directory (or of one VM)."""
    vms = [vm] if vm is not None else store.vms()
    return {v: store.backups(v) for v in vms}


def _row(entry: dict, by_id: dict, key) -> dict:
    m = entry["manifest"]
    problem = entry["problem"] or (backupset.chain_problem(by_id, entry["id"]) if m else None)
    row = {"vm": entry["vm"], "id": entry["id"], "path": entry["path"], "ok": problem is None, "problem": problem}
    if m:
        state, _ = verdict(key, m)
        row.update({"kind": m["kind"], "time": m["time"], "parent": (m["parent"] or {}).get("id"),
                    "consistency": m["consistency"]["level"], "uuid": m["uuid"], "signed": state,
                    "bytes": sum(d["bytes"] for d in m["disks"]),
                    "disks": [d["image"] for d in m["disks"]]})
    return row


def list_backups(env: Env, directory: str, vm: str | None = None) -> dict:
    """Every backup in `directory` (of VM `vm`), oldest first, each checked: its manifest,
    its files present at their sizes, its chain unbroken; interrupted ones counted apart."""
    store = Store(directory)
    key = _key_here(env)
    rows, partial = [], {}
    for v, by_id in _all(store, vm).items():
        rows += [_row(by_id[i], by_id, key) for i in sorted(by_id, key=backupset.sort_key)]
        if store.partials(v):
            partial[v] = store.partials(v)
    return {"directory": store.root, "backups": rows, "interrupted": partial}


def verify(env: Env, directory: str, vm: str | None = None, progress=None) -> dict:
    """list_backups, every file read again and compared with its SHA-256, and every
    manifest's signature checked against this cluster's key."""
    store = Store(directory)
    key = _key_here(env)
    rows = []
    for by_id in _all(store, vm).values():
        for i in sorted(by_id, key=backupset.sort_key):
            entry = by_id[i]
            if entry["manifest"] and not entry["problem"]:
                entry["problem"] = store.file_problem(entry, rehash=True, progress=progress)
        rows += [_row(by_id[i], by_id, key) for i in sorted(by_id, key=backupset.sort_key)]
    for row in rows:
        if row["ok"] and row.get("signed") not in (signing.SIGNED, "unknown"):
            row["ok"], row["problem"] = False, "its manifest is not signed by this cluster"
    return {"directory": store.root, "backups": rows, "ok": all(r["ok"] for r in rows)}


def prune(env: Env, directory: str, keep: int, vm: str | None = None, dry_run: bool = False) -> dict:
    """Keep the newest `keep` restore points per VM and what their chains need; remove the
    rest, newest first. Left alone: backups that cannot be restored (for a person to judge)."""
    if keep < 1:
        raise UsageError("prune must keep at least one restore point per VM", f"asked to keep {keep}")
    store = Store(directory)
    key = _key_here(env)
    if key is None:
        raise Untrusted("cannot prune: this node cannot read the cluster's signing key",
                        "prune counts and removes only backups whose manifests this cluster signed; "
                        "without the key it cannot tell them from anything else in the directory",
                        "Run the prune as root on a cluster node")
    removed, kept, left = [], [], []
    for v in ([vm] if vm is not None else store.vms()):
        with store.lock(v):
            by_id = store.backups(v)
            plan = backupset.prune_plan(by_id, keep, signed_ids(key, by_id))
            kept += [f"{v}/{i}" for i in plan["keep"]]
            left += [f"{v}/{i}" for i in plan["left"]]
            for bid in plan["remove"]:
                if not dry_run:
                    store.remove(v, bid)
                removed.append(f"{v}/{bid}")
            if not dry_run:
                store.discard_partials(v)
    return {"directory": store.root, "removed": removed, "kept": kept, "left": left, "dry_run": dry_run}


def require_authentic(env: Env, manifest: dict, accept_foreign: bool) -> str:
    """Refuse a manifest this cluster did not sign (unless the operator vouches for it);
    the verdict."""
    key = trust.signing_key(env.session)
    state, key_id = verdict(key, manifest)
    if state != signing.SIGNED and not accept_foreign:
        raise Untrusted(f"backup {manifest['id']} of VM {manifest['vm']} is not signed by this cluster",
                        signing.explain(state, key_id, key) if state in signing.MEANING else state,
                        hint=Hint(hints.RESTORE_FOREIGN, {"vm": manifest["vm"], "backup": manifest["id"]}),
                        details={"vm": manifest["vm"], "backup": manifest["id"], "verdict": state})
    return state

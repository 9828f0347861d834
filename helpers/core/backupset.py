"""Backups as data: the manifest of one backup (its codec and its checks), backup ids, and
the decisions made on a set of them: which chain a restore point needs, whether a chain is
unbroken, what a prune may remove.

A backup is a full export of every disk of a VM (and its UEFI variable store) at one
snapshot, or an incremental one: what changed since its parent's snapshot. Its manifest
names the VM, its identity, definition and settings, each disk's file with its size and
SHA-256, and its parent by id and by the SHA-256 of the parent's manifest, so a chain
cannot be spliced. The manifest is signed with the cluster's key (signing.py) bound to the
VM's pool and namespace: a backup directory lies outside the cluster, and a restore acts on
what it reads as root.

Pure: the directory is helpers/backupdir's, the disks helpers/ceph's.
"""

import hashlib
import json
import re
from datetime import datetime, timedelta, timezone

from . import names
from .errors import Conflict, NotFound

FORMAT = "rbdvm-backup-v1"
MANIFEST = "manifest.json"
STREAM_SUFFIX = ".rbdiff"
FULL, INCREMENTAL = "full", "incremental"
# how consistent the disks are with each other and with the guest's filesystems
APPLICATION, CRASH, OFFLINE = "application-consistent", "crash-consistent", "offline"
ROLES = ("system", "data", "nvram")

_ID = re.compile(r"[0-9]{8}T[0-9]{6}Z(-[0-9]{1,4})?")
_SHA = re.compile(r"[0-9a-f]{64}")


def new_id(now: datetime, taken) -> str:
    """A backup id: the UTC time to the second, sortable; -2, -3... if taken already."""
    base = now.astimezone(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    bid, n = base, 1
    while bid in taken:
        n += 1
        bid = f"{base}-{n}"
    return bid


def id_of(snapshot: str) -> str:
    """The backup id in a backup snapshot's name."""
    return snapshot[len(names.BACKUP_SNAP_PREFIX):]


def is_id(text) -> bool:
    return isinstance(text, str) and bool(_ID.fullmatch(text))


def sort_key(bid: str) -> tuple:
    base, _, n = bid.partition("-")
    return base, int(n or 1)


def digest(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()


def stream_name(image: str) -> str:
    return image + STREAM_SUFFIX


# ------------------------------------------------------------------ the manifest
def encode(manifest: dict) -> bytes:
    return (json.dumps(manifest, indent=1, sort_keys=True, ensure_ascii=False) + "\n").encode()


def signed_part(manifest: dict) -> dict:
    """What the manifest's signature covers: all of it but the signature."""
    return {k: v for k, v in manifest.items() if k != "signature"}


class Invalid(ValueError):
    """A manifest that is not one rbdvm wrote; the message says what is wrong."""


def _want(cond: bool, what: str) -> None:
    if not cond:
        raise Invalid(what)


def _str(d: dict, key: str, allow_none: bool = False) -> None:
    v = d.get(key)
    _want(isinstance(v, str) or (allow_none and v is None), f"{key!r} is not text")


def _int(d: dict, key: str) -> None:
    v = d.get(key)
    _want(isinstance(v, int) and not isinstance(v, bool) and v >= 0, f"{key!r} is not a count")


def decode(raw: bytes) -> dict:
    """The manifest in `raw`, checked field by field (a backup directory is untrusted:
    every name used later as a file or image name is checked here). Raises Invalid."""
    try:
        m = json.loads(raw.decode())
    except (UnicodeDecodeError, ValueError) as exc:
        raise Invalid(f"it is not JSON ({exc})") from None
    except RecursionError:
        raise Invalid("it nests deeper than a manifest does") from None
    try:
        # JSON's \\ud800 escapes decode to lone surrogates, which no later step can write
        json.dumps(m, ensure_ascii=False).encode()
    except UnicodeEncodeError:
        raise Invalid("it holds a lone surrogate (not text)") from None
    except RecursionError:
        raise Invalid("it nests deeper than a manifest does") from None
    _want(isinstance(m, dict), "it is not a JSON object")
    _want(m.get("format") == FORMAT, f"its format is {m.get('format')!r}, not {FORMAT}")
    _want(is_id(m.get("id")), f"its id {m.get('id')!r} is not a backup id")
    _want(names.is_name(m.get("vm")), f"its VM name {m.get('vm')!r} is not letters and digits")
    for key in ("uuid", "time", "snapshot", "signature"):
        _str(m, key, allow_none=key == "uuid")
    _want(m.get("kind") in (FULL, INCREMENTAL), f"its kind {m.get('kind')!r} is neither full nor incremental")
    _want(m["snapshot"] == names.backup_snapshot(m["id"]), "its snapshot is not its id's")
    parent = m.get("parent")
    if m["kind"] == FULL:
        _want(parent is None, "a full backup with a parent")
    else:
        _want(isinstance(parent, dict) and is_id(parent.get("id")) and isinstance(parent.get("manifest_sha256"), str)
              and bool(_SHA.fullmatch(parent["manifest_sha256"])), "an incremental backup without a valid parent")
        _want(sort_key(parent["id"]) < sort_key(m["id"]), "a parent newer than the backup")
    source = m.get("source")
    _want(isinstance(source, dict), "no source")
    for key in ("fsid", "pool", "namespace"):
        _str(source, key)
    consistency = m.get("consistency")
    _want(isinstance(consistency, dict) and consistency.get("level") in (APPLICATION, CRASH, OFFLINE),
          "no consistency level")
    definition = m.get("definition")
    _want(isinstance(definition, dict), "no definition")
    _str(definition, "xml")
    _str(definition, "base", allow_none=True)
    _str(definition, "sig", allow_none=True)
    metadata = m.get("metadata")
    _want(isinstance(metadata, dict) and all(isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()),
          "its metadata is not text keys and values")
    disks = m.get("disks")
    _want(isinstance(disks, list) and len(disks) > 0, "no disks")
    _check_disks(m["vm"], disks)
    return m


def _check_disks(vm: str, disks: list) -> None:
    """Each disk entry of VM `vm`'s manifest: the system disk first, the data disks in
    order, the variable store last if any, each with its file, sizes and SHA-256."""
    seen = set()
    for i, d in enumerate(disks):
        _want(isinstance(d, dict), "a disk entry is not an object")
        role = "system" if i == 0 else "nvram" if i == len(disks) - 1 and d.get("role") == "nvram" else "data"
        _want(d.get("role") == role, f"disk {i} has role {d.get('role')!r}, not {role}")
        expected = {"system": names.system_disk(vm), "nvram": names.nvram_image(vm)}.get(
            role, names.data_disk(vm, i - 1))
        _want(d.get("image") == expected, f"disk {i} is {d.get('image')!r}, not {expected}")
        _want(d["image"] not in seen, f"disk {d['image']} twice")
        seen.add(d["image"])
        _want(d.get("file") == stream_name(d["image"]), f"disk {d['image']}'s file is {d.get('file')!r}")
        for key in ("size", "bytes", "data_bytes", "snap_id"):
            _int(d, key)
        _want(isinstance(d.get("sha256"), str) and bool(_SHA.fullmatch(d["sha256"])),
              f"disk {d['image']} has no SHA-256")


def time_of(m: dict) -> datetime | None:
    try:
        t = datetime.fromisoformat(m["time"])
    except (TypeError, ValueError):
        return None
    return t if t.tzinfo else t.replace(tzinfo=timezone.utc)


# ------------------------------------------------------------------ chains
def chain_problem(by_id: dict, bid: str) -> str | None:
    """Why the restore point `bid` cannot be rebuilt from `by_id` ({id: entry} of one
    directory, entry = {"manifest", "digest", "problem"}), or None. Walks to the full
    backup: every link present, whole, of the same VM, and the parent it names."""
    seen = set()
    while True:
        entry = by_id.get(bid)
        if entry is None:
            return f"backup {bid} is missing"
        if entry.get("problem"):
            return f"backup {bid}: {entry['problem']}"
        m = entry["manifest"]
        if m["kind"] == FULL:
            return None
        seen.add(bid)
        parent = m["parent"]
        pentry = by_id.get(parent["id"])
        if pentry is None:
            return f"backup {bid} needs backup {parent['id']}, which is missing"
        if pentry.get("problem"):
            return f"backup {bid} needs backup {parent['id']}: {pentry['problem']}"
        if pentry.get("digest") != parent["manifest_sha256"]:
            return f"backup {bid} names a parent {parent['id']} whose manifest is not the one it was made from"
        if pentry.get("manifest") and (pentry["manifest"]["vm"], pentry["manifest"]["uuid"]) != (m["vm"], m["uuid"]):
            return f"backup {bid}'s parent {parent['id']} is another VM's"
        if pentry.get("manifest") and _disk_list(pentry["manifest"]) != _disk_list(m):
            return f"backup {bid} holds other disks than its parent {parent['id']}"
        if parent["id"] in seen:
            return f"backup {bid}'s chain loops"
        bid = parent["id"]


def _disk_list(m: dict) -> list:
    return [(d["image"], d["role"]) for d in m["disks"]]


def chain_of(by_id: dict, bid: str) -> list:
    """[full, ..., bid] manifests (chain_problem(by_id, bid) must be None)."""
    out = []
    while True:
        m = by_id[bid]["manifest"]
        out.append(m)
        if m["kind"] == FULL:
            return out[::-1]
        bid = m["parent"]["id"]


def pick(by_id: dict, vm: str, at=None, among=None) -> str:
    """The id of VM `vm`'s restore point: `at` a backup id, a datetime (the newest backup
    taken at or before it), or None (the newest), by the manifests' times; `among`: the
    backups that may be chosen by time (those whose signatures verified), None for all."""
    mine = newest_first(by_id, [i for i, e in by_id.items() if e.get("manifest") and e["manifest"]["vm"] == vm
                                and (among is None or i in among or i == at)])[::-1]
    if not mine:
        raise NotFound(f"no backup of VM {vm}", "the backup directory holds none of it",
                       code="BACKUP_NOT_FOUND", details={"vm": vm})
    if isinstance(at, str):
        if at not in mine:
            raise NotFound(f"VM {vm} has no backup {at}", f"its backups: {', '.join(mine)}",
                           code="BACKUP_NOT_FOUND", details={"vm": vm, "backup": at})
        return at
    if at is None:
        return mine[-1]
    when = at if at.tzinfo else at.replace(tzinfo=timezone.utc)
    before = [i for i in mine if (time_of(by_id[i]["manifest"]) or when) <= when]
    if not before:
        raise NotFound(f"VM {vm} has no backup taken at or before {when.isoformat()}",
                       f"its oldest is {mine[0]}", code="BACKUP_NOT_FOUND", details={"vm": vm})
    return before[-1]


def require_chain(by_id: dict, bid: str) -> list:
    problem = chain_problem(by_id, bid)
    if problem:
        raise Conflict(f"backup {bid} cannot be restored", problem,
                       "Restore an earlier point (rbdvm backup list shows which are whole), or bring "
                       "the missing or damaged files back", code="BACKUP_BROKEN", details={"backup": bid})
    return chain_of(by_id, bid)


def newest_first(by_id: dict, ids) -> list:
    """`ids` newest first by the time their (signed) manifests give, the id breaking ties:
    never by a directory's name alone."""
    epoch = datetime.min.replace(tzinfo=timezone.utc)
    return sorted(ids, key=lambda i: (time_of(by_id[i]["manifest"]) or epoch, sort_key(i)), reverse=True)


def prune_plan(by_id: dict, keep: int, trusted) -> dict:
    """{"keep": [...], "left": [...], "remove": [...]} (ids, the removals newest first, so an interrupted
    prune never leaves a backup whose parent is gone). Only backups in `trusted` (their
    manifests verified: signed by this cluster) count: per VM, the newest `keep` restore
    points by signed time whose whole chain is trusted and whole stay, with every backup
    their chains need. Everything else is left as it is, for an operator to judge, and so
    is every backup it names as an ancestor (a file missing for a moment must not cost
    the chain it needs once it is back: when in doubt, keep)."""
    by_vm: dict = {}
    for bid, e in by_id.items():
        if e.get("manifest"):
            by_vm.setdefault(e["manifest"]["vm"], []).append(bid)
    kept: set = set()
    left: set = set()      # not counted, not removed: unverified, broken, or what those name
    removed: list = []
    for ids in by_vm.values():
        whole = [i for i in newest_first(by_id, ids) if chain_problem(by_id, i) is None
                 and all(m["id"] in trusted for m in chain_of(by_id, i))]
        for point in whole[:keep]:
            kept.update(m["id"] for m in chain_of(by_id, point))
        for doubt in set(ids) - set(whole):
            left.update(_ancestors(by_id, doubt))
        removed += [i for i in whole if i not in kept and i not in left]
    return {"keep": sorted(kept, key=sort_key), "left": sorted(left - kept, key=sort_key),
            "remove": sorted(removed, key=sort_key, reverse=True)}


def _ancestors(by_id: dict, bid: str) -> set:
    """Every backup present that `bid`'s manifest names as a parent, and theirs."""
    out: set = set()
    while bid in by_id and by_id[bid].get("manifest") and by_id[bid]["manifest"]["parent"] and bid not in out:
        out.add(bid)
        bid = by_id[bid]["manifest"]["parent"]["id"]
    if bid in by_id:
        out.add(bid)
    return out


def not_before(newest: datetime | None, now: datetime) -> datetime:
    """When a new backup is dated: now, or a second after the newest one a chain could
    continue from when the clock stepped back (a chain's ids and times stay in order
    whatever the clock does)."""
    if newest is not None and now <= newest:
        return newest + timedelta(seconds=1)
    return now


def id_time(bid: str) -> datetime:
    """The UTC time a backup id names (to the second)."""
    return datetime.strptime(bid.partition("-")[0], "%Y%m%dT%H%M%SZ").replace(tzinfo=timezone.utc)

"""A backup directory: DIR/<vm>/<backup id>/ holds one backup (one diff stream per disk and
manifest.json). A backup is written under DIR/<vm>/.partial-<id>/ and renamed into place
only once its manifest is on disk (fsynced): an interrupted backup never leaves a
directory that looks complete, and the next backup of the VM removes the partial one.

rbdvm writes here as root, in a directory others may share: names read from it are checked
before use, files are opened without following links, and anything that is not rbdvm's
(another tool's files, foreign names) is left alone and never listed.
"""

import hashlib
import os
import queue
import shutil
import stat
import threading

from ..core import backupset, names
from ..core.errors import UsageError

PARTIAL_PREFIX = ".partial-"
REMOVING_PREFIX = ".removing-"
CHUNK = 4 << 20
SMALL = 64 << 10


def _bad_dir(path: str, why: str) -> UsageError:
    return UsageError(f"cannot use backup directory {path}", why,
                      "Give a directory root owns, on a file system with room for the backups",
                      details={"directory": path})


def _fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _real_dir(path: str) -> bool:
    try:
        return stat.S_ISDIR(os.lstat(path).st_mode)
    except FileNotFoundError:
        return False


class Sink:
    """A stream file being written: counts and hashes what goes through; fsynced at close."""

    def __init__(self, path: str):
        self.path = path
        self.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        self.hash = hashlib.sha256()
        self.bytes = 0
        self.buffer = bytearray()
        # SHA-256 costs as much as reading and writing: it runs beside them, in order, in a
        # thread (hashlib lets go of the GIL on large buffers)
        self.pending: queue.Queue = queue.Queue(maxsize=16)
        self.hasher = threading.Thread(target=self._hash, daemon=True)
        self.hasher.start()

    def _hash(self) -> None:
        while (data := self.pending.get()) is not None:
            self.hash.update(data)

    def write(self, data) -> None:
        self.pending.put(data)     # bytes, or a view of bytes: never changed afterwards
        self.bytes += len(data)
        if len(data) < SMALL:     # record headers: gathered, written with what follows
            self.buffer += data
            return
        self._flush()
        self._write(data)

    def _write(self, data) -> None:
        view = memoryview(data)
        while view:
            view = view[os.write(self.fd, view):]

    def _flush(self) -> None:
        if self.buffer:
            self._write(self.buffer)
            self.buffer = bytearray()

    def close(self) -> None:
        self._flush()
        os.fsync(self.fd)
        os.close(self.fd)
        self._stop_hashing()

    def _stop_hashing(self) -> None:
        self.pending.put(None)
        self.hasher.join()

    def __enter__(self):
        return self

    def __exit__(self, kind, *exc) -> None:
        if kind is None:
            self.close()
        else:
            os.close(self.fd)
            self._stop_hashing()

    @property
    def sha256(self) -> str:
        return self.hash.hexdigest()


class Hashed:
    """A backup file read through its SHA-256 (the one reading `verify` and `restore` share)."""

    def __init__(self, f, disk: dict):
        self.f, self.disk, self.hash = f, disk, hashlib.sha256()

    def read(self, n: int) -> bytes:
        raw = self.f.read(n)
        self.hash.update(raw)
        return raw

    def mismatch(self) -> str | None:
        """What is wrong once the file is read: its SHA-256 is not the manifest's."""
        if self.hash.hexdigest() != self.disk["sha256"]:
            return f"file {self.disk['file']} does not match its SHA-256 (damaged or changed)"
        return None

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.f.close()


class Partial:
    """A backup being written; commit() makes it one."""

    def __init__(self, store: "Store", vm: str, bid: str):
        self.store, self.vm, self.bid = store, vm, bid
        self.path = os.path.join(store.vm_dir(vm), PARTIAL_PREFIX + bid)
        os.mkdir(self.path, 0o700)

    def sink(self, image: str) -> Sink:
        return Sink(os.path.join(self.path, backupset.stream_name(image)))

    def commit(self, manifest: bytes) -> str:
        tmp = os.path.join(self.path, backupset.MANIFEST + ".tmp")
        with Sink(tmp) as s:
            s.write(manifest)
        os.rename(tmp, os.path.join(self.path, backupset.MANIFEST))
        _fsync_dir(self.path)
        final = os.path.join(self.store.vm_dir(self.vm), self.bid)
        os.rename(self.path, final)
        _fsync_dir(self.store.vm_dir(self.vm))
        return final


class Store:
    """The backup directory `root` (made if missing, its parent must exist)."""

    def __init__(self, root: str, create: bool = False):
        self.root = os.path.abspath(root)
        if create and not os.path.lexists(self.root):
            try:
                os.mkdir(self.root, 0o700)
            except OSError as exc:
                raise _bad_dir(self.root, exc.strerror or str(exc)) from None
        if not _real_dir(self.root):
            raise _bad_dir(self.root, "it is not a directory" if os.path.lexists(self.root) else "it does not exist")

    def vm_dir(self, vm: str) -> str:
        names.check_name(vm, "VM name")
        return os.path.join(self.root, vm)

    def ensure_vm_dir(self, vm: str) -> str:
        path = self.vm_dir(vm)
        if not os.path.lexists(path):
            os.mkdir(path, 0o700)
        if not _real_dir(path):
            raise _bad_dir(path, "it is not a directory (a link or a file is in the way)")
        return path

    def vms(self) -> list:
        try:
            entries = sorted(os.listdir(self.root))
        except OSError as exc:
            raise _bad_dir(self.root, exc.strerror or str(exc)) from None
        return [e for e in entries if names.is_name(e) and _real_dir(os.path.join(self.root, e))]

    def _listing(self, vm: str) -> list:
        path = self.vm_dir(vm)
        return sorted(os.listdir(path)) if _real_dir(path) else []

    def partials(self, vm: str) -> list:
        return [e[len(PARTIAL_PREFIX):] for e in self._listing(vm) if e.startswith(PARTIAL_PREFIX)
                and backupset.is_id(e[len(PARTIAL_PREFIX):])]

    def ids(self, vm: str) -> list:
        """Every backup id in use under `vm` (complete, partial or being removed)."""
        out = []
        for e in self._listing(vm):
            for prefix in ("", PARTIAL_PREFIX, REMOVING_PREFIX):
                if e.startswith(prefix) and backupset.is_id(e[len(prefix):]):
                    out.append(e[len(prefix):])
        return out

    def backups(self, vm: str) -> dict:
        """{id: {"vm", "id", "path", "manifest" (None if unreadable), "digest", "problem"}}
        of the complete backups under `vm`. Cheap checks only: the manifest, and each
        file present with the size the manifest gives (files(rehash=True) reads them)."""
        out = {}
        for e in self._listing(vm):
            if not backupset.is_id(e):
                continue
            path = os.path.join(self.vm_dir(vm), e)
            entry = {"vm": vm, "id": e, "path": path, "manifest": None, "digest": None, "problem": None}
            out[e] = entry
            if not _real_dir(path):
                entry["problem"] = "it is not a directory"
                continue
            try:
                raw = self._read_small(os.path.join(path, backupset.MANIFEST))
                entry["digest"] = backupset.digest(raw)
                m = backupset.decode(raw)
            except (OSError, backupset.Invalid) as exc:
                entry["problem"] = f"its manifest is unreadable: {getattr(exc, 'strerror', None) or exc}"
                continue
            if (m["vm"], m["id"]) != (vm, e):
                entry["problem"] = f"its manifest is backup {m['id']} of VM {m['vm']}, not {e} of {vm}"
                continue
            entry["manifest"] = m
            entry["problem"] = self.file_problem(entry, rehash=False)
        return out

    @staticmethod
    def _read_small(path: str, limit: int = 64 << 20) -> bytes:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        with os.fdopen(fd, "rb") as f:
            raw = f.read(limit + 1)
        if len(raw) > limit:
            raise backupset.Invalid(f"it is larger than {limit} bytes")
        return raw

    def file_problem(self, entry: dict, rehash: bool, progress=None) -> str | None:
        """What is wrong with the files of a backup (None: nothing): one missing, of
        another size than its manifest says, or (rehash) of another SHA-256."""
        for d in entry["manifest"]["disks"]:
            problem = self.disk_problem(entry, d)
            if problem is None and rehash:
                with self.hashed(entry, d) as f:
                    while chunk := f.read(CHUNK):
                        if progress:
                            progress(len(chunk))
                problem = f.mismatch()
            if problem:
                return problem
        return None

    @staticmethod
    def disk_problem(entry: dict, disk: dict) -> str | None:
        """One file of a backup missing, not a file, or of another size than its manifest says."""
        try:
            st = os.lstat(os.path.join(entry["path"], disk["file"]))
        except FileNotFoundError:
            return f"file {disk['file']} is missing"
        if not stat.S_ISREG(st.st_mode):
            return f"file {disk['file']} is not a regular file"
        if st.st_size != disk["bytes"]:
            return f"file {disk['file']} has {st.st_size} bytes, its manifest says {disk['bytes']}"
        return None

    @staticmethod
    def open_stream(entry: dict, disk: dict):
        fd = os.open(os.path.join(entry["path"], disk["file"]), os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        return os.fdopen(fd, "rb", buffering=CHUNK)

    def hashed(self, entry: dict, disk: dict) -> "Hashed":
        """One file of a backup, hashed as it is read (mismatch() once read through)."""
        return Hashed(self.open_stream(entry, disk), disk)

    def begin(self, vm: str, bid: str) -> Partial:
        self.ensure_vm_dir(vm)
        return Partial(self, vm, bid)

    def discard_partials(self, vm: str) -> list:
        """Remove what interrupted backups and prunes of `vm` left; returns their ids."""
        gone = []
        for e in self._listing(vm):
            for prefix in (PARTIAL_PREFIX, REMOVING_PREFIX):
                if e.startswith(prefix) and backupset.is_id(e[len(prefix):]):
                    shutil.rmtree(os.path.join(self.vm_dir(vm), e))
                    gone.append(e[len(prefix):])
        return gone

    def remove(self, vm: str, bid: str) -> None:
        """One backup: renamed out of the listing first (atomic), then deleted."""
        if not backupset.is_id(bid):
            raise ValueError(bid)
        doomed = os.path.join(self.vm_dir(vm), REMOVING_PREFIX + bid)
        os.rename(os.path.join(self.vm_dir(vm), bid), doomed)
        _fsync_dir(self.vm_dir(vm))
        shutil.rmtree(doomed)

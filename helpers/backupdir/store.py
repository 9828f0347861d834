"""A backup directory: DIR/<vm>/<backup id>/ holds one backup (one diff stream per disk and
manifest.json). A backup is written under DIR/<vm>/.partial-<id>/ and renamed into place
only once its manifest is on disk (fsynced): an interrupted backup never leaves a
directory that looks complete, and the next backup of the VM removes the partial one.

rbdvm reads and writes here as root, in a directory on a NAS, a USB disk or a backup host
that others may write: it is not trusted storage. Names read from it are checked before use;
everything below the directory the operator named is reached through opened directory
handles, one component at a time and never through a link (a directory swapped for a link
between two steps leads nowhere); only regular files of one link are read, opened without
blocking (a FIFO hangs nothing); what manifests are read is bounded, per file and in total,
before any signature is checked; a VM's directory is locked by the command writing or
removing in it; anything that is not rbdvm's (another tool's files, foreign names) is left
alone and never listed.
"""

import contextlib
import fcntl
import hashlib
import os
import queue
import shutil
import stat
import threading

from ..core import backupset, names
from ..core.errors import Conflict, UsageError

PARTIAL_PREFIX = ".partial-"
REMOVING_PREFIX = ".removing-"
CHUNK = 4 << 20
SMALL = 64 << 10
MANIFEST_LIMIT = 16 << 20        # one manifest (a definition and metadata: kilobytes)
MANIFESTS_TOTAL = 256 << 20      # every manifest one command reads, before signatures are checked
_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


class NotOurs(OSError):
    """A name in the directory that is not a file rbdvm would have written (a FIFO, a device,
    a file with other links)."""


def _bad_dir(path: str, why: str) -> UsageError:
    return UsageError(f"cannot use backup directory {path}", why,
                      "Give a directory root owns, on a file system with room for the backups",
                      details={"directory": path})


def _why(exc: OSError) -> str:
    return exc.strerror or str(exc)


class Sink:
    """A stream file being written: counts and hashes what goes through; fsynced at close."""

    def __init__(self, name: str, dir_fd: int):
        self.fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600,
                          dir_fd=dir_fd)
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
        self.vm_fd = store.open_dir(vm)
        os.mkdir(PARTIAL_PREFIX + bid, 0o700, dir_fd=self.vm_fd)
        self.fd = os.open(PARTIAL_PREFIX + bid, _DIR, dir_fd=self.vm_fd)
        self.path = os.path.join(store.vm_dir(vm), PARTIAL_PREFIX + bid)

    def sink(self, image: str) -> Sink:
        return Sink(backupset.stream_name(image), self.fd)

    def commit(self, manifest: bytes) -> str:
        tmp = backupset.MANIFEST + ".tmp"
        with Sink(tmp, self.fd) as s:
            s.write(manifest)
        os.rename(tmp, backupset.MANIFEST, src_dir_fd=self.fd, dst_dir_fd=self.fd)
        os.fsync(self.fd)
        os.rename(PARTIAL_PREFIX + self.bid, self.bid, src_dir_fd=self.vm_fd, dst_dir_fd=self.vm_fd)
        os.fsync(self.vm_fd)
        self.close()
        return os.path.join(self.store.vm_dir(self.vm), self.bid)

    def close(self) -> None:
        """Once only: a number closed twice may be another file's by then."""
        fds, self.fd, self.vm_fd = (self.fd, self.vm_fd), -1, -1
        for fd in fds:
            if fd >= 0:
                os.close(fd)

    def __del__(self):
        with contextlib.suppress(OSError, AttributeError):
            self.close()


class Store:
    """The backup directory `root` (made if missing, its parent must exist), opened once:
    every name below it is reached from that handle."""

    def __init__(self, root: str, create: bool = False):
        self.root = os.path.abspath(root)
        if create and not os.path.lexists(self.root):
            try:
                os.mkdir(self.root, 0o700)
            except OSError as exc:
                raise _bad_dir(self.root, _why(exc)) from None
        try:
            # the operator's own path: resolved once, here
            self.fd = os.open(self.root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError as exc:
            raise _bad_dir(self.root, "it is not a directory" if os.path.lexists(self.root) else
                           "it does not exist" if exc.errno == 2 else _why(exc)) from None
        self.budget = MANIFESTS_TOTAL

    def __del__(self):
        with contextlib.suppress(OSError, AttributeError):
            fd, self.fd = self.fd, -1
            os.close(fd)

    # ---------------------------------------------------------------- handles
    def open_dir(self, *parts: str) -> int:
        """A directory below the root, each component opened without following a link."""
        fd = self.fd
        try:
            for part in parts:
                new = os.open(part, _DIR, dir_fd=fd)
                if fd != self.fd:
                    os.close(fd)
                fd = new
        except OSError:
            if fd != self.fd:
                os.close(fd)
            raise
        return os.dup(fd) if fd == self.fd else fd

    def _open_file(self, *parts: str) -> tuple:
        """(fd, stat) of a regular file of one link below the root (NotOurs otherwise)."""
        d = self.open_dir(*parts[:-1])
        try:
            fd = os.open(parts[-1], _FILE, dir_fd=d)
        finally:
            os.close(d)
        st = os.fstat(fd)
        why = "it is not a regular file" if not stat.S_ISREG(st.st_mode) else \
            f"it has {st.st_nlink} links (a hard link to a file elsewhere)" if st.st_nlink != 1 else None
        if why:
            os.close(fd)
            raise NotOurs(why)
        return fd, st

    def _is_dir(self, *parts: str) -> bool:
        try:
            os.close(self.open_dir(*parts))
            return True
        except OSError:
            return False

    @contextlib.contextmanager
    def lock(self, vm: str, shared: bool = False):
        """The VM directory's lock: backup and prune hold it alone, restore shared (a prune
        never removes what a backup is writing or a restore is reading)."""
        names.check_name(vm, "VM name")
        fd = self.open_dir(vm)
        try:
            try:
                fcntl.flock(fd, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
            except BlockingIOError:
                raise Conflict(f"the backups of VM {vm} in {self.root} are in use",
                               "another backup, prune or restore of this VM is using them",
                               "Run it again once that command is done", code="BACKUP_DIR_BUSY",
                               details={"vm": vm, "directory": self.root}) from None
            yield
        finally:
            os.close(fd)

    # ---------------------------------------------------------------- names
    def vm_dir(self, vm: str) -> str:
        names.check_name(vm, "VM name")
        return os.path.join(self.root, vm)

    def ensure_vm_dir(self, vm: str) -> str:
        path = self.vm_dir(vm)
        try:
            os.mkdir(vm, 0o700, dir_fd=self.fd)
        except FileExistsError:
            pass
        if not self._is_dir(vm):
            raise _bad_dir(path, "it is not a directory (a link or a file is in the way)")
        return path

    def vms(self) -> list:
        try:
            entries = sorted(os.listdir(self.fd))
        except OSError as exc:
            raise _bad_dir(self.root, _why(exc)) from None
        return [e for e in entries if names.is_name(e) and self._is_dir(e)]

    def _listing(self, vm: str) -> list:
        names.check_name(vm, "VM name")
        try:
            fd = self.open_dir(vm)
        except OSError:
            return []
        try:
            return sorted(os.listdir(fd))
        finally:
            os.close(fd)

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

    # ---------------------------------------------------------------- reading
    def backups(self, vm: str) -> dict:
        """{id: {"vm", "id", "path", "manifest" (None if unreadable), "digest", "problem"}}
        of the complete backups under `vm`. Cheap checks only: the manifest, and each
        file present with the size the manifest gives (files(rehash=True) reads them). An
        entry that cannot be read is one entry with a problem, never an error for all."""
        out = {}
        for e in self._listing(vm):
            if not backupset.is_id(e):
                continue
            entry = {"vm": vm, "id": e, "path": os.path.join(self.vm_dir(vm), e), "manifest": None,
                     "digest": None, "problem": None}
            out[e] = entry
            try:
                raw = self._read_manifest(vm, e)
                entry["digest"] = backupset.digest(raw)
                m = backupset.decode(raw)
            except (OSError, backupset.Invalid) as exc:
                entry["problem"] = f"its manifest is unreadable: {_why(exc) if isinstance(exc, OSError) else exc}"
                continue
            if (m["vm"], m["id"]) != (vm, e):
                entry["problem"] = f"its manifest is backup {m['id']} of VM {m['vm']}, not {e} of {vm}"
                continue
            entry["manifest"] = m
            entry["problem"] = self.file_problem(entry, rehash=False)
        return out

    def _read_manifest(self, vm: str, bid: str) -> bytes:
        fd, st = self._open_file(vm, bid, backupset.MANIFEST)
        with os.fdopen(fd, "rb") as f:
            if st.st_size > MANIFEST_LIMIT:
                raise backupset.Invalid(f"it is larger than {MANIFEST_LIMIT} bytes")
            if st.st_size > self.budget:
                raise backupset.Invalid(f"not read: the manifests this command read exceed {MANIFESTS_TOTAL} "
                                        "bytes in all")
            raw = f.read(st.st_size + 1)
        self.budget -= len(raw)
        if len(raw) != st.st_size:
            raise backupset.Invalid("it changed while it was read")
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

    def disk_problem(self, entry: dict, disk: dict) -> str | None:
        """One file of a backup missing, not a regular file of its own, or of another size
        than its manifest says."""
        try:
            fd, st = self._open_file(entry["vm"], entry["id"], disk["file"])
        except FileNotFoundError:
            return f"file {disk['file']} is missing"
        except OSError as exc:
            return f"file {disk['file']}: {_why(exc)}"
        os.close(fd)
        if st.st_size != disk["bytes"]:
            return f"file {disk['file']} has {st.st_size} bytes, its manifest says {disk['bytes']}"
        return None

    def open_stream(self, entry: dict, disk: dict):
        fd, _ = self._open_file(entry["vm"], entry["id"], disk["file"])
        return os.fdopen(fd, "rb", buffering=CHUNK)

    def hashed(self, entry: dict, disk: dict) -> "Hashed":
        """One file of a backup, hashed as it is read (mismatch() once read through)."""
        return Hashed(self.open_stream(entry, disk), disk)

    # ---------------------------------------------------------------- writing, removing
    def begin(self, vm: str, bid: str) -> Partial:
        self.ensure_vm_dir(vm)
        return Partial(self, vm, bid)

    def discard_partials(self, vm: str) -> list:
        """Remove what interrupted backups and prunes of `vm` left; returns their ids."""
        gone = []
        fd = self.open_dir(vm)
        try:
            for e in sorted(os.listdir(fd)):
                for prefix in (PARTIAL_PREFIX, REMOVING_PREFIX):
                    if e.startswith(prefix) and backupset.is_id(e[len(prefix):]):
                        shutil.rmtree(e, dir_fd=fd)
                        gone.append(e[len(prefix):])
        finally:
            os.close(fd)
        return gone

    def remove(self, vm: str, bid: str) -> None:
        """One backup: renamed out of the listing first (atomic), then deleted, both inside
        the VM's directory as it was opened."""
        if not backupset.is_id(bid):
            raise ValueError(bid)
        fd = self.open_dir(vm)
        try:
            os.rename(bid, REMOVING_PREFIX + bid, src_dir_fd=fd, dst_dir_fd=fd)
            os.fsync(fd)
            shutil.rmtree(REMOVING_PREFIX + bid, dir_fd=fd)
        finally:
            os.close(fd)

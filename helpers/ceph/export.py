"""A VM's images as backups read and write them: the per-disk snapshots a backup is taken at
(names.backup_snapshot), a disk's content at one snapshot, or what changed between two, as
an RBD diff stream (core/rbddiff), and a stream applied to an image.

Reads go through librbd's asynchronous reads, several in flight, so a backup keeps up with
`rbd export`. Only allocated data is read (librbd's diff of the image): a sparse disk
exports sparsely, and all-zero pieces are not stored.
"""

import threading
from collections import deque

import rbd

from ..core import names, rbddiff
from . import vmstore
from .session import Session, ceph_errors

PIECE = 4 << 20
IN_FLIGHT = 16
# the granularity at which all-zero data is left out: librbd reports a new object from its
# start, however little of it a guest wrote
BLOCK = 64 << 10
_ZEROS = bytes(BLOCK)


def _snaps(img) -> dict:
    return {s["name"]: s["id"] for s in img.list_snaps()}


def take_point(session: Session, images, snap: str) -> dict:
    """The snapshot `snap` made on each image, back to back; {image: snap id}. One already
    there is an error (the caller picks a name no image has: see backup_points)."""
    out = {}
    for image in images:
        with ceph_errors(f"snapshotting {image} for a backup", session.target):
            with session.rbd.Image(session.ioctx, image) as img:
                img.create_snap(snap)
                out[image] = img.snap_get_id(snap)
    return out


def backup_points(session: Session, images) -> dict:
    """{image: {backup snapshot name: snapshot id}} of the images (a killed backup's among them)."""
    out = {}
    for image in images:
        with ceph_errors(f"reading the snapshots of {image}", session.target):
            with session.rbd.Image(session.ioctx, image, read_only=True) as img:
                out[image] = {n: i for n, i in _snaps(img).items() if names.is_backup_snapshot(n)}
    return out


def release(session: Session, images, keep: str | None) -> list:
    """Remove every backup snapshot of the images but `keep`; returns the names removed."""
    gone = set()
    for image in images:
        with ceph_errors(f"removing the backup snapshots of {image}", session.target):
            try:
                img = session.rbd.Image(session.ioctx, image)
            except rbd.ImageNotFound:
                continue
            with img:
                for snap in _snaps(img):
                    if names.is_backup_snapshot(snap) and snap != keep:
                        vmstore.remove_snapshot(img, snap)
                        gone.add(snap)
    return sorted(gone)


class _Read:
    __slots__ = ("offset", "done", "data", "error")

    def __init__(self, offset: int):
        self.offset = offset
        self.done = threading.Event()
        self.data = None
        self.error = 0


def _pieces(extents):
    for offset, length, exists in extents:
        if not exists:
            yield offset, length, False
            continue
        end = offset + length
        while offset < end:
            n = min(PIECE, end - offset)
            yield offset, n, True
            offset += n


def _write_nonzero(writer, offset: int, data: bytes, incremental: bool) -> int:
    """Write the non-zero blocks of `data` (read at `offset`) as data records, merged; its
    all-zero blocks are left out of a full export and written as zero ranges in an
    incremental one (they may be data overwritten with zeros). Returns the bytes stored."""
    view = memoryview(data)
    stored, run = 0, None            # run: start of the pending non-zero blocks
    for at in range(0, len(data), BLOCK):
        zero = view[at:at + BLOCK] == _ZEROS[:min(BLOCK, len(data) - at)]
        if zero and run is not None:
            writer.data(offset + run, view[run:at])
            stored += at - run
            run = None
        if zero and incremental:
            writer.zero(offset + at, min(BLOCK, len(data) - at))
        elif not zero and run is None:
            run = at
    if run is not None:
        writer.data(offset + run, view[run:])
        stored += len(data) - run
    return stored


def export(session: Session, image: str, snap: str, from_snap: str | None, sink, progress=None) -> dict:
    """Write `image` at `snap` (what changed since `from_snap`, or all its data) to `sink`
    as an RBD diff stream; {"size", "data_bytes"}. progress(bytes done, bytes to read)."""
    with ceph_errors(f"exporting {image} at {snap}", session.target):
        with session.rbd.Image(session.ioctx, image, snapshot=snap, read_only=True) as img:
            size = img.size()
            extents: list = []
            img.diff_iterate(0, size, from_snap, lambda o, n, e: extents.append((o, n, e)),
                             include_parent=True, whole_object=False)
            writer = rbddiff.Writer(sink, snap, size, from_snap)
            total = sum(n for _, n, e in extents if e)
            done = stored = 0
            pending: deque = deque()
            pieces = _pieces(extents)

            def submit() -> bool:
                for offset, n, exists in pieces:
                    if not exists:
                        pending.append((offset, n, None))
                        continue
                    req = _Read(offset)

                    def finished(completion, data, req=req):
                        req.error = completion.get_return_value()
                        req.data = data
                        req.done.set()
                    img.aio_read(offset, n, finished)
                    pending.append((offset, n, req))
                    return True
                return False

            for _ in range(IN_FLIGHT):
                if not submit():
                    break
            while pending:
                offset, n, req = pending.popleft()
                if req is None:
                    if from_snap is not None:
                        writer.zero(offset, n)
                    continue
                req.done.wait()
                if req.error < 0:
                    raise rbd.IOError(f"reading {image} at {offset}: error {req.error}")
                data = req.data
                submit()
                stored += _write_nonzero(writer, offset, data, from_snap is not None)
                done += n
                if progress:
                    progress(done, total)
            writer.end()
    return {"size": size, "data_bytes": stored}


def apply(session: Session, image: str, records, progress=None) -> None:
    """Apply an RBD diff stream's records (rbddiff.read) to `image`: resized to the stream's
    size, its data written, its zero ranges zeroed. progress(bytes written)."""
    with ceph_errors(f"restoring {image}", session.target):
        with session.rbd.Image(session.ioctx, image) as img:
            for rec in records:
                kind = rec[0]
                if kind == "size":
                    if img.size() != rec[1]:
                        img.resize(rec[1])
                elif kind == "write":
                    img.write(rec[2], rec[1])
                    if progress:
                        progress(len(rec[2]))
                elif kind == "zero":
                    img.write_zeroes(rec[1], rec[2])
            img.flush()


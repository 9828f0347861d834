"""The RBD diff stream, format v1 (Ceph's `rbd export-diff` / `rbd import-diff` format):
rbdvm's backups store each disk in it, so a backup can also be applied by hand with
`rbd import-diff` on a node without rbdvm.

    "rbd diff v1\\n"
    'f' le32 len, name      the snapshot the diff starts from (absent: from nothing)
    't' le32 len, name      the snapshot it ends at
    's' le64 size           the image's size at that snapshot
    'w' le64 off, le64 len, data     data written
    'z' le64 off, le64 len           a range that reads as zeros
    'e'                     the end; nothing may follow

Reading treats the stream as hostile (a backup directory is outside the cluster): records
in order, names and lengths bounded, every range inside the image, nothing after 'e'.
Pure: the caller brings the file.
"""

import struct

HEADER = b"rbd diff v1\n"
# a 'w' record's data is handed on in pieces of at most this size (memory stays bounded
# whatever length a record claims)
PIECE = 4 << 20
MAX_NAME = 4096


class Malformed(ValueError):
    """The stream is not a well-formed RBD diff v1 stream; the message says where."""


class Writer:
    """Writes a diff stream to `sink` (anything with write(bytes))."""

    def __init__(self, sink, to_snap: str, size: int, from_snap: str | None = None):
        self.sink = sink
        sink.write(HEADER)
        if from_snap is not None:
            self._name(b"f", from_snap)
        self._name(b"t", to_snap)
        sink.write(b"s" + struct.pack("<Q", size))

    def _name(self, tag: bytes, name: str) -> None:
        raw = name.encode()
        self.sink.write(tag + struct.pack("<I", len(raw)) + raw)

    def data(self, offset: int, data) -> None:
        self.sink.write(b"w" + struct.pack("<QQ", offset, len(data)))
        self.sink.write(data)

    def zero(self, offset: int, length: int) -> None:
        self.sink.write(b"z" + struct.pack("<QQ", offset, length))

    def end(self) -> None:
        self.sink.write(b"e")


def _exact(stream, n: int, what: str) -> bytes:
    raw = stream.read(n)
    if len(raw) != n:
        raise Malformed(f"the stream ends inside {what}")
    return raw


def read(stream):
    """Yield ("from", name), ("to", name), ("size", n), then ("write", offset, bytes) and
    ("zero", offset, length) in stream order, then ("end",). Raises Malformed."""
    if stream.read(len(HEADER)) != HEADER:
        raise Malformed("it does not start with the RBD diff v1 header")
    size = None
    seen = set()
    while True:
        tag = stream.read(1)
        if not tag:
            raise Malformed("the stream ends without its end record")
        if tag in (b"f", b"t"):
            if size is not None or tag in seen:
                raise Malformed(f"record {tag.decode()!r} out of place")
            seen.add(tag)
            (n,) = struct.unpack("<I", _exact(stream, 4, "a snapshot name"))
            if n > MAX_NAME:
                raise Malformed(f"a snapshot name of {n} bytes")
            try:
                name = _exact(stream, n, "a snapshot name").decode()
            except UnicodeDecodeError:
                raise Malformed("a snapshot name that is not UTF-8") from None
            yield ("from" if tag == b"f" else "to", name)
        elif tag == b"s":
            if size is not None:
                raise Malformed("a second size record")
            (size,) = struct.unpack("<Q", _exact(stream, 8, "the size record"))
            yield ("size", size)
        elif tag in (b"w", b"z"):
            if size is None:
                raise Malformed("data before the size record")
            offset, length = struct.unpack("<QQ", _exact(stream, 16, "a data record"))
            if offset + length > size:
                raise Malformed(f"a range {offset}+{length} beyond the image's size {size}")
            if tag == b"z":
                yield ("zero", offset, length)
                continue
            done = 0
            while done < length:
                piece = _exact(stream, min(PIECE, length - done), "a data record")
                yield ("write", offset + done, piece)
                done += len(piece)
        elif tag == b"e":
            if size is None:
                raise Malformed("the end record before the size record")
            if stream.read(1):
                raise Malformed("data after the end record")
            yield ("end",)
            return
        else:
            raise Malformed(f"an unknown record type {tag!r}")

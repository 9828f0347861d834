"""Disk image files: what format they really are, and their import into RBD.

The format comes from the file's content, never from its name. The import is done by
qemu-img (already on every hypervisor with QEMU's RBD driver): it reads qcow2 and raw,
writes out of order with several coroutines, and, told the new RBD image is zero, never
writes a zero block, so a 1 GiB disk holding 10 MiB of data stores about 10 MiB.
"""

import ctypes
import os
import re
import signal
import struct
import subprocess
from dataclasses import dataclass

from ..core.errors import RbdvmError, UsageError
from ..core.faults import checkpoint
from ..core.settings import CephTarget

QCOW2_MAGIC = b"QFI\xfb"
# formats recognised only to refuse them clearly (qemu-img could read some, but rbdvm
# promises qcow2 and raw and tests exactly those)
_OTHER_MAGIC = ((0, b"KDMV", "vmdk"), (0, b"vhdxfile", "vhdx"), (0, b"QED\0", "qed"),
                (0x40, b"\x7f\x10\xda\xbe", "vdi"), (0, b"conectix", "vpc"))


@dataclass(frozen=True)
class DiskFile:
    path: str
    format: str          # "qcow2" or "raw"
    virtual_size: int    # bytes the guest sees
    # an RBD image instead of a file: qemu-img's --image-opts for it (path is pool/image)
    rbd_opts: str | None = None

    @property
    def fingerprint(self) -> str:
        """Identifies this very file content for resuming an import (path, size, mtime)."""
        if self.rbd_opts:
            return f"rbd:{self.path}:{self.virtual_size}"
        st = os.stat(self.path)
        return f"{os.path.abspath(self.path)}:{st.st_size}:{st.st_mtime_ns}"


def inspect(path: str) -> DiskFile:
    try:
        with open(path, "rb") as f:
            head = f.read(512)
            size = os.fstat(f.fileno()).st_size
    except FileNotFoundError:
        raise UsageError(f"disk image {path} does not exist", "", "Check the path",
                         code="INVALID_DISK_IMAGE", details={"path": path}) from None
    except IsADirectoryError:
        raise UsageError(f"disk image {path} is a directory", "", "Give a qcow2 or raw file",
                         code="INVALID_DISK_IMAGE", details={"path": path}) from None
    except PermissionError:
        raise UsageError(f"cannot read disk image {path}", "permission denied",
                         code="INVALID_DISK_IMAGE", details={"path": path}) from None
    if head.startswith(QCOW2_MAGIC):
        with open(path, "rb") as f:
            header = f.read(QCOW2_HEADER_READ)
        try:
            virtual_size = qcow2_virtual_size(header)
        except Qcow2Refused as exc:
            raise UsageError(f"disk image {path} {exc.args[0]}", "rbdvm imports self-contained, "
                             "unencrypted qcow2 images whose every header field it understands",
                             f"Convert it to a plain image first: qemu-img convert -O qcow2 {path} plain.qcow2"
                             , code="INVALID_DISK_IMAGE", details={"path": path}) from None
        return DiskFile(os.path.abspath(path), "qcow2", virtual_size)
    for offset, magic, name in _OTHER_MAGIC:
        if head[offset:offset + len(magic)] == magic:
            raise UsageError(f"disk image {path} is in {name} format", "rbdvm imports qcow2 and raw",
                             f"Convert it: qemu-img convert -O qcow2 {path} disk.qcow2",
                             code="INVALID_DISK_IMAGE", details={"path": path})
    if size == 0:
        raise UsageError(f"disk image {path} is empty", code="INVALID_DISK_IMAGE", details={"path": path})
    return DiskFile(os.path.abspath(path), "raw", size)


# ------------------------------------------------------------------ qcow2 headers
# Allow-lists, from the qcow2 specification (docs/interop/qcow2.txt in QEMU): anything else
# in a header is refused, because qemu-img would act on it (the lesson of OpenStack's qcow2
# CVEs: an external data file or backing file makes qemu-img read a host file into the disk)
QCOW2_HEADER_READ = 2 << 20            # the header and its extensions live in the first cluster
_INCOMPATIBLE_OK = {0: "dirty", 3: "compression type", 4: "extended L2 entries"}
_INCOMPATIBLE_NAMES = {1: "corrupt", 2: "external data file"}
_AUTOCLEAR_OK = {0: "bitmaps consistent"}
_EXTENSIONS_OK = {0x6803F857: "feature name table", 0x23852875: "bitmaps"}
_EXTENSION_NAMES = {0xE2792ACA: "backing file format", 0x0537BE77: "full disk encryption",
                    0x44415441: "external data file"}


class Qcow2Refused(ValueError):
    """What in a qcow2 header rbdvm will not pass to qemu-img (a phrase: 'has ...')."""


def qcow2_virtual_size(header: bytes) -> int:
    """The guest size of a qcow2 image from the start of its file, after checking every
    field qemu-img would act on; raises Qcow2Refused otherwise."""
    if len(header) < 72:
        raise Qcow2Refused("is a truncated qcow2 file")
    (version, backing_offset, _backing_size, cluster_bits, virtual_size,
     crypt_method) = struct.unpack_from(">IQIIQI", header, 4)
    if version not in (2, 3):
        raise Qcow2Refused(f"is qcow2 version {version}")
    if backing_offset:
        raise Qcow2Refused("is a qcow2 overlay with a backing file")
    if crypt_method:
        raise Qcow2Refused("is an encrypted qcow2 image")
    if not 9 <= cluster_bits <= 21:
        raise Qcow2Refused(f"has an invalid cluster size (2^{cluster_bits})")
    header_length = 72
    if version == 3:
        if len(header) < 104:
            raise Qcow2Refused("is a truncated qcow2 file")
        incompatible, _compatible, autoclear, _refcount_order, header_length = \
            struct.unpack_from(">QQQII", header, 72)
        _refuse_bits(incompatible, _INCOMPATIBLE_OK, _INCOMPATIBLE_NAMES, "incompatible")
        _refuse_bits(autoclear, _AUTOCLEAR_OK, {1: "raw external data"}, "autoclear")
        if header_length < 104 or header_length % 8:
            raise Qcow2Refused(f"has an invalid header length ({header_length})")
    _check_extensions(header, header_length, min(len(header), 1 << cluster_bits))
    return virtual_size


def _refuse_bits(value: int, allowed: dict, names: dict, kind: str) -> None:
    for bit in range(64):
        if value >> bit & 1 and bit not in allowed:
            raise Qcow2Refused(f"has the {kind} feature {names.get(bit, f'bit {bit}')!s}")


def _check_extensions(header: bytes, at: int, end: int) -> None:
    while True:
        if at + 8 > end:
            raise Qcow2Refused("has header extensions that run past its first cluster")
        kind, length = struct.unpack_from(">II", header, at)
        if kind == 0:
            return
        if kind not in _EXTENSIONS_OK:
            raise Qcow2Refused(f"has the header extension {_EXTENSION_NAMES.get(kind, hex(kind))}")
        at += 8 + (length + 7) // 8 * 8


def _die_with_parent() -> None:
    PR_SET_PDEATHSIG = 1
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


_PROGRESS = re.compile(rb"\((\d+(?:\.\d+)?)/100%\)")


def _rbd_opts(target: CephTarget, image: str) -> str:
    """qemu-img's image options of RBD image `image` as `target`'s client."""
    return ",".join(f"{k}={v.replace(',', ',,')}" for k, v in (
        ("driver", "rbd"), ("pool", target.pool), ("namespace", target.namespace),
        ("image", image), ("user", target.client_id), ("conf", target.conf)) if v)


def rbd_source(target: CephTarget, image: str, size: int) -> DiskFile:
    """An existing raw RBD image of `target`'s pool/namespace as the source of an import."""
    return DiskFile("/".join(p for p in (target.pool, target.namespace, image) if p), "raw", size,
                    _rbd_opts(target, image))


def import_into(disk: DiskFile, target: CephTarget, image: str, progress=None, adopt=None) -> None:
    """Write the file's (or source image's) data into the existing, all-zero RBD image `image`.

    `progress(fraction)` is called as qemu-img advances; `adopt(proc)` is given the qemu-img
    process as soon as it runs (the lease kills it if it is lost).
    """
    opts = _rbd_opts(target, image)
    source = ["--image-opts", disk.rbd_opts] if disk.rbd_opts else ["-f", disk.format, disk.path]
    # -W: out-of-order writes (QEMU's default 8 coroutines measured as fast as more here);
    # -p only when someone watches the progress
    argv = ["qemu-img", "convert", *(["-p"] if progress else []), "-n", "--target-is-zero", "-W",
            *source, "--target-image-opts", opts]
    try:
        # qemu-img dies with us: an orphan import still writing while a re-run starts over
        # would interleave two writers on the image
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                preexec_fn=_die_with_parent)
    except FileNotFoundError:
        raise RbdvmError("qemu-img is not installed", "it imports disk images into RBD",
                         "apt-get install qemu-utils qemu-block-extra") from None
    if adopt:
        adopt(proc)
    checkpoint("import:started")
    assert proc.stdout is not None and proc.stderr is not None   # both are pipes
    buf = b""
    while True:
        chunk = proc.stdout.read1(256)  # type: ignore[attr-defined]  # a BufferedReader
        if not chunk:
            break
        buf = (buf + chunk)[-64:]
        found = _PROGRESS.findall(buf)
        if found and progress:
            progress(float(found[-1]) / 100)
    err = proc.stderr.read().decode(errors="replace").strip()
    if proc.wait() != 0:
        raise RbdvmError(f"importing {disk.path} into {target.pool}/{image} failed",
                         err or f"qemu-img exited with {proc.returncode}")
    if progress:
        progress(1.0)

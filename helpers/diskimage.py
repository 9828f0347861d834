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

from .errors import RbdvmError, UsageError
from .settings import CephTarget

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

    @property
    def fingerprint(self) -> str:
        """Identifies this very file content for resuming an import (path, size, mtime)."""
        st = os.stat(self.path)
        return f"{os.path.abspath(self.path)}:{st.st_size}:{st.st_mtime_ns}"


def inspect(path: str) -> DiskFile:
    try:
        with open(path, "rb") as f:
            head = f.read(512)
            size = os.fstat(f.fileno()).st_size
    except FileNotFoundError:
        raise UsageError(f"disk image {path} does not exist", "", "Check the path") from None
    except IsADirectoryError:
        raise UsageError(f"disk image {path} is a directory", "", "Give a qcow2 or raw file") from None
    except PermissionError:
        raise UsageError(f"cannot read disk image {path}", "permission denied") from None
    if head.startswith(QCOW2_MAGIC):
        if len(head) < 32:
            raise UsageError(f"disk image {path} is a truncated qcow2 file")
        backing_offset, = struct.unpack(">Q", head[8:16])
        if backing_offset:
            raise UsageError(f"disk image {path} is a qcow2 overlay with a backing file",
                             "rbdvm imports self-contained images",
                             f"Flatten it first: qemu-img convert -O qcow2 {path} flat.qcow2")
        virtual_size, = struct.unpack(">Q", head[24:32])
        return DiskFile(path, "qcow2", virtual_size)
    for offset, magic, name in _OTHER_MAGIC:
        if head[offset:offset + len(magic)] == magic:
            raise UsageError(f"disk image {path} is in {name} format", "rbdvm imports qcow2 and raw",
                             f"Convert it: qemu-img convert -O qcow2 {path} disk.qcow2")
    if size == 0:
        raise UsageError(f"disk image {path} is empty")
    return DiskFile(path, "raw", size)


def _die_with_parent() -> None:
    PR_SET_PDEATHSIG = 1
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


_PROGRESS = re.compile(rb"\((\d+(?:\.\d+)?)/100%\)")


def import_into(disk: DiskFile, target: CephTarget, image: str, progress=None) -> None:
    """Write the file's data into the existing, all-zero RBD image `image`.

    `progress(fraction)` is called as qemu-img advances.
    """
    opts = ",".join(f"{k}={v.replace(',', ',,')}" for k, v in (
        ("driver", "rbd"), ("pool", target.pool), ("namespace", target.namespace),
        ("image", image), ("user", target.client_id), ("conf", target.conf)) if v)
    # -W: out-of-order writes (QEMU's default 8 coroutines measured as fast as more here);
    # -p only when someone watches the progress
    argv = ["qemu-img", "convert", *(["-p"] if progress else []), "-n", "--target-is-zero", "-W",
            "-f", disk.format, disk.path, "--target-image-opts", opts]
    try:
        # qemu-img dies with us: an orphan import still writing while a re-run starts over
        # would interleave two writers on the image
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                preexec_fn=_die_with_parent)
    except FileNotFoundError:
        raise RbdvmError("qemu-img is not installed", "it imports disk images into RBD",
                         "apt-get install qemu-utils qemu-block-extra") from None
    buf = b""
    while True:
        chunk = proc.stdout.read1(256)
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

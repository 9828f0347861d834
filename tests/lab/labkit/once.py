"""Files the tests share (the boot disk, the UEFI disk, the Linux guest's kernel): made once,
under a lock, and put in place whole, so tests running side by side never read one half
written."""

import contextlib
import fcntl
import os
from pathlib import Path


@contextlib.contextmanager
def locked(path: Path):
    """An exclusive lock named after `path` (`path`.lock), held for the block."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def made_once(path: Path, write) -> Path:
    """`path`, made by `write(temporary path)` unless it exists; renamed into place whole."""
    if path.exists():
        return path
    with locked(path):
        if not path.exists():
            tmp = path.with_name(f".{path.name}.{os.getpid()}")
            write(tmp)
            os.replace(tmp, path)
    return path

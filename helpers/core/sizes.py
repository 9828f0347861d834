"""Disk sizes as operators write them: 20G, 512M, 1.5T, 1048576 (bytes). Units are binary
(K = KiB = 1024 bytes), as qemu-img and rbd count them."""

import re

from .errors import UsageError

_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(?:i?B)?\s*$", re.I)


def parse_size(text: str) -> int:
    """Bytes; UsageError for anything that is not a positive size."""
    m = _SIZE.match(str(text))
    if not m:
        raise UsageError(f"size {text!r} is not a size", "write it as bytes or with K, M, G or T (binary units)",
                         "For example 20G or 512M")
    value = int(float(m.group(1)) * _UNITS[m.group(2).upper()])
    if value <= 0:
        raise UsageError(f"size {text!r} is not positive")
    # RBD sizes are whole 512-byte sectors to QEMU
    return (value + 511) // 512 * 512

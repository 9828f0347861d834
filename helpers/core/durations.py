"""Durations as Pacemaker reads them, the one reading of them in rbdvm. SEAPATH's
vm_manager hands an operation's timeout to Pacemaker as the operator wrote it ("120",
"120s", "2min", "1h"), so a VM's timeout settings take those spellings and are stored as
whole seconds (rounded up: a timeout is never made shorter). Standard library only."""

import math
import re

# Pacemaker's units (crm_get_msec): no unit means seconds
_UNITS = {"": 1000, "s": 1000, "sec": 1000, "ms": 1, "msec": 1, "us": 0.001, "usec": 0.001,
          "m": 60000, "min": 60000, "h": 3600000, "hr": 3600000}
_PLAIN = re.compile(r"\s*(\d+)\s*([a-z]*)\s*")
# ISO 8601 durations Pacemaker also reads, without years and months (their length varies)
_ISO = re.compile(r"P(?:(\d+)W)?(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?")


def milliseconds(value) -> int | None:
    """The duration `value` (a whole number of seconds, or text as Pacemaker reads it) in
    milliseconds; None if it is none of those."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value * 1000 if value >= 0 else None
    text = str(value).strip()
    m = _PLAIN.fullmatch(text.lower())
    if m and m[2] in _UNITS:
        return math.ceil(int(m[1]) * _UNITS[m[2]])
    m = _ISO.fullmatch(text.upper())
    if m and text.upper() not in ("P", "PT") and not text.upper().endswith("T"):
        weeks, days, hours, minutes, seconds = (int(g or 0) for g in m.groups())
        return ((((weeks * 7 + days) * 24 + hours) * 60 + minutes) * 60 + seconds) * 1000
    return None


def seconds(value) -> int | None:
    """The duration in whole seconds, rounded up; None if it is not a duration."""
    ms = milliseconds(value)
    return None if ms is None else math.ceil(ms / 1000)


SPELLINGS = "a number of seconds, or a number with a unit (ms, s, m or min, h), or ISO 8601 (PT2M)"

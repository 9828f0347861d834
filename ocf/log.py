"""Logging the Pacemaker way: stderr (the cluster captures it), HA_LOGFILE if set, debug
lines only with HA_debug=1, and `ocf-exit-reason:` lines for failures."""

import os
import sys
import time

_TAG = None


def _tag() -> str:
    global _TAG
    if _TAG is None:
        _TAG = f"VirtualDomain({os.environ.get('OCF_RESOURCE_INSTANCE', '?')})[{os.getpid()}]"
    return _TAG


def _write(level: str, msg: str) -> None:
    line = f"{_tag()}:\t{level}: {msg}\n"
    sys.stderr.write(line)
    logfile = os.environ.get("HA_LOGFILE")
    if logfile:
        try:
            with open(logfile, "a") as f:
                f.write(time.strftime("%b %d %H:%M:%S ") + line)
        except OSError:
            pass


def info(msg: str) -> None:
    _write("INFO", msg)


def warn(msg: str) -> None:
    _write("WARNING", msg)


def error(msg: str) -> None:
    _write("ERROR", msg)


def debug(msg: str) -> None:
    if os.environ.get("HA_debug", "0") not in ("", "0"):
        _write("DEBUG", msg)


def exit_reason(msg: str) -> None:
    """The one line Pacemaker shows the operator next to the failed operation."""
    error(msg)
    prefix = os.environ.get("OCF_EXIT_REASON_PREFIX", "ocf-exit-reason:")
    sys.stderr.write(f"{prefix}{msg}\n")

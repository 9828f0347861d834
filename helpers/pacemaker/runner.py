"""The one runner of Pacemaker's command-line tools: an argument list (never a shell), a
timeout on every call, and failures as ClusterUnavailable naming the tool. Standard library
and core only: the agent runs Pacemaker's tools through it too."""

import shutil
import subprocess
import time

from ..core import timeouts
from ..core.errors import ClusterUnavailable


def run(argv, timeout: float = timeouts.PACEMAKER_CALL, until: float | None = None,
        stdin: str | None = None) -> str:
    """The tool's stdout. `until` (a time.monotonic() deadline) shortens the timeout for a
    caller with a budget of its own (the agent); `stdin`: what the tool reads (a CIB for
    crm_simulate, which then needs no file)."""
    if until is not None:
        timeout = min(timeout, until - time.monotonic())
        if timeout <= 0:
            raise ClusterUnavailable(f"no time left to run {argv[0]}", code="PACEMAKER_UNAVAILABLE")
    if shutil.which(argv[0]) is None:
        raise ClusterUnavailable(f"{argv[0]} is not installed", "this host is not a Pacemaker node",
                                 "Run the command on a cluster node", code="PACEMAKER_UNAVAILABLE")
    try:
        res = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, input=stdin)
    except OSError as exc:
        raise ClusterUnavailable(f"cannot run {argv[0]}", exc.strerror or str(exc),
                                 code="PACEMAKER_UNAVAILABLE") from None
    except subprocess.TimeoutExpired:
        raise ClusterUnavailable(f"{argv[0]} did not answer within {timeout:.0f} s",
                                 "Pacemaker is starting or stuck", "Check `crm_mon -1`",
                                 code="PACEMAKER_UNAVAILABLE") from None
    if res.returncode != 0:
        raise ClusterUnavailable(f"{' '.join(argv[:2])} failed", (res.stderr or res.stdout).strip(),
                                 "Check that Pacemaker runs on this node (`crm_mon -1`)", code="PACEMAKER_UNAVAILABLE")
    return res.stdout

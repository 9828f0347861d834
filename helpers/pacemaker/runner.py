"""The one runner of Pacemaker's command-line tools: an argument list (never a shell), a
timeout on every call, and failures as ClusterUnavailable naming the tool."""

import shutil
import subprocess

from ..core import timeouts
from ..core.errors import ClusterUnavailable


def run(argv, timeout: float = timeouts.PACEMAKER_CALL) -> str:
    if shutil.which(argv[0]) is None:
        raise ClusterUnavailable(f"{argv[0]} is not installed", "this host is not a Pacemaker node",
                                 "Run the command on a cluster node", code="PACEMAKER_UNAVAILABLE")
    try:
        res = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise ClusterUnavailable(f"{argv[0]} did not answer within {timeout:.0f} s",
                                 "Pacemaker is starting or stuck", "Check `crm_mon -1`",
                                 code="PACEMAKER_UNAVAILABLE") from None
    if res.returncode != 0:
        raise ClusterUnavailable(f"{' '.join(argv[:2])} failed", (res.stderr or res.stdout).strip(),
                                 "Check that Pacemaker runs on this node (`crm_mon -1`)", code="PACEMAKER_UNAVAILABLE")
    return res.stdout

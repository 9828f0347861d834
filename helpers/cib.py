"""Whether the cluster has a resource for a VM, as the storage commands ask it: a host
without Pacemaker's tools is not a cluster node and has none (helpers/cluster.py does the rest)."""

import shutil
import subprocess

from lxml import etree

from .errors import ClusterUnavailable

AGENT = ("ocf", "rbdvm", "VirtualDomain")


def is_enabled(vm: str) -> bool:
    """True if the cluster has a resource for the VM. A host without Pacemaker's tools is not
    a cluster node: nothing can be enabled there. A cluster that does not answer is an error,
    not a guess."""
    if shutil.which("cibadmin") is None:
        return False
    try:
        res = subprocess.run(["cibadmin", "--query", "--scope", "resources"], capture_output=True,
                             timeout=15)
    except subprocess.TimeoutExpired:
        res = None
    if res is None or res.returncode != 0:
        why = "cibadmin timed out" if res is None else res.stderr.decode(errors="replace").strip()
        raise ClusterUnavailable(f"cannot tell whether VM {vm} is enabled in the cluster", why,
                                 "Run this on a cluster node whose Pacemaker is running")
    root = etree.fromstring(res.stdout, etree.XMLParser(resolve_entities=False, no_network=True))
    return bool(root.xpath("//primitive[@id=$vm]", vm=vm))

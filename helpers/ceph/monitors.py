"""Where the Ceph monitors are, for the <host> entries of a VM's RBD disks."""

import json
import re

from ..core.errors import ClusterUnavailable
from .session import Session, mon_command


def monitor_hosts(session: Session) -> list:
    """[(address, port)] of every monitor, v1 (msgr1) address preferred: QEMU's librbd
    treats a <host> without protocol as a legacy address. The monitors' own list, else
    (refused, or no answer in time) the configuration's `mon host`."""
    try:
        out = mon_command(session, {"prefix": "mon dump", "format": "json"}, "listing the monitors")
    except ClusterUnavailable:
        out = None
    hosts = []
    if out is not None:
        for mon in json.loads(out).get("mons", []):
            addrs = mon.get("public_addrs", {}).get("addrvec", [])
            pick = next((a for a in addrs if a["type"] == "v1"), addrs[0] if addrs else None)
            if pick:
                host, _, port = pick["addr"].rpartition(":")
                hosts.append((host, int(port)))
    return hosts or _from_conf(session.cluster.conf_get("mon_host") or "")


def _from_conf(mon_host: str) -> list:
    """Parse `mon host`: monitors separated by commas or spaces, each an address or an
    address vector [v2:a:3300,v1:a:6789]."""
    hosts = []
    for mon in re.findall(r"\[[^\]]*\]|[^,\s\[\]]+", mon_host):
        addrs = [a for a in mon.strip("[]").split(",") if a]
        v1 = [a[3:] for a in addrs if a.startswith("v1:")]
        plain = [a for a in addrs if not a.startswith(("v1:", "v2:"))]
        chosen = (v1 or plain or [a[3:] for a in addrs])[0]
        host, sep, port = chosen.rpartition(":")
        hosts.append((host, int(port)) if sep else (chosen, 6789))
    return hosts

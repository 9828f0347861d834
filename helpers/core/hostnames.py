"""Address -> host name, the one owner (always bounded): which cluster node an address
belongs to, for messages about disk clients (the agent's guard, the fence agent, the CLI).

From the cluster's own node list first (corosync.conf: `ringN_addr` and `name`), so a
partition with an unreachable DNS server costs nothing; then one reverse lookup bounded to
timeouts.DNS_LOOKUP per address and remembered for the rest of the action (glibc's resolver would
take timeout x attempts per call, 10 s and more). Standard library only.
"""

import re
import socket
import time

from . import timeouts
from .bounded import Hung, bounded

COROSYNC_CONF = "/etc/corosync/corosync.conf"
_cache: dict = {}
_NODE = re.compile(r"\bnode\s*\{([^{}]*)\}")
_ITEM = re.compile(r"^\s*(ring\d+_addr|name)\s*:\s*(\S+)\s*$", re.M)


def cluster_addresses(path: str = COROSYNC_CONF) -> dict:
    """{address: node name} of corosync's nodelist; {} without one."""
    try:
        with open(path) as f:
            text = f.read()
    except OSError:
        return {}
    out = {}
    for block in _NODE.findall(text):
        items = _ITEM.findall(block)
        name = next((v for k, v in items if k == "name"), None)
        for key, value in items:
            if key != "name":
                out[value] = name or value
    return out


def name_of(addr: str):
    """The node (or host) name of an address, None if none is known quickly."""
    addr = addr.strip("[]")
    if addr not in _cache:
        _cache[addr] = cluster_addresses().get(addr) or _reverse(addr)
    return _cache[addr]


def _reverse(addr: str):
    try:
        return bounded(time.monotonic() + timeouts.DNS_LOOKUP, socket.gethostbyaddr, addr)[0]
    except (OSError, Hung):
        return None

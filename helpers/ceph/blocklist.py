"""The OSD blocklist: clients Ceph refuses from now on (their watches dropped, their writes
rejected). rbdvm adds only exact client instances (address and nonce) that Pacemaker has
confirmed fenced, each with an expiry (they lapse by themselves)."""

import json

from ..core.errors import ClusterUnavailable
from .session import Session

# long enough for any fenced node to be rebooted (its new clients have new nonces)
DEFAULT_SECONDS = 3600


def _mon(session: Session, cmd: dict, doing: str) -> str:
    ret, out, err = session.cluster.mon_command(json.dumps(cmd), b"", timeout=10)
    if ret != 0:
        raise ClusterUnavailable(f"Ceph refused {doing}", f"{err or ret}",
                                 f"Check that client.{session.target.client_id} has 'profile rbd' on the monitors")
    return out.decode() if isinstance(out, bytes) else out


def add(session: Session, entity: str, seconds: int = DEFAULT_SECONDS) -> None:
    """Blocklist one client instance (`IP:PORT/NONCE`, as a watcher shows it)."""
    _mon(session, {"prefix": "osd blocklist", "blocklistop": "add", "addr": entity, "expire": float(seconds)},
         f"blocklisting {entity}")

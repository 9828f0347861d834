"""A connection to the Ceph cluster as rbdvm's client, and Ceph errors turned into
messages an operator can act on."""

import contextlib
import errno
import json
import os
from typing import Any

import rados
import rbd

from ..core import hints, timeouts
from ..core.errors import ClusterUnavailable, Conflict, NotFound, RbdvmError
from ..core.hints import Hint
from ..core.settings import CephTarget


class Session:
    """One client connection and an I/O context on the target pool and namespace."""

    # the bindings every Ceph adapter calls through this session (a scripted session in the
    # operations' unit tests brings in-memory ones: tests/unit/scripted.py)
    rbd = rbd
    rados = rados
    # a node's trust material: None reads this node's own (core/secret, core/devpolicy)
    signing_key = None
    device_policy = None

    def __init__(self, target: CephTarget, osd_op_timeout: float = timeouts.OSD_OP, follow_map: bool = False):
        """`osd_op_timeout`: what one OSD request may wait (a paused or down OSD), shorter for
        callers that must answer within a budget of their own. `follow_map`: a request that
        waits on an OSD asks the monitors for a newer map after a second, not librados' ten
        (a client that writes right after a node's loss: its OSD marked down meanwhile, the
        request goes to the new primary at once)."""
        self.target = target
        self.osd_op_timeout = osd_op_timeout
        self.follow_map = follow_map
        # librados' handles (untyped bindings), set by __enter__
        self.cluster: Any = None
        self.ioctx: Any = None
        self._fsid: str | None = None

    def __enter__(self):
        t = self.target
        try:
            self.cluster = rados.Rados(conffile=t.conf, rados_id=t.client_id)
        except (rados.Error, OSError) as exc:
            why = "the file does not exist" if not os.path.exists(t.conf) else str(exc)
            raise ClusterUnavailable(f"cannot read the Ceph configuration {t.conf}", why,
                                     hint=Hint(hints.CEPH_CONF), code="CEPH_UNAVAILABLE") from exc
        for key, value in (("client_mount_timeout", timeouts.CEPH_CONNECT),
                           ("rados_mon_op_timeout", timeouts.CEPH_CONNECT),
                           ("rados_osd_op_timeout", self.osd_op_timeout),
                           *((("objecter_tick_interval", 1), ("objecter_timeout", 1)) if self.follow_map else ())):
            self.cluster.conf_set(key, str(value))
        try:
            self.cluster.connect(timeout=timeouts.CEPH_CONNECT)
        except rados.Error as exc:
            raise self._connect_error(exc) from exc
        try:
            self.ioctx = self.cluster.open_ioctx(t.pool)
        except rados.ObjectNotFound as exc:
            self.close()
            raise NotFound(f"pool {t.pool} does not exist", hint=Hint(hints.POOL)) from exc
        except rados.Error as exc:
            self.close()
            raise translate(exc, f"opening pool {t.pool}", t) from exc
        # a namespace that does not exist yet reads as empty; create makes it
        self.ioctx.set_namespace(t.namespace)
        return self

    def _connect_error(self, exc) -> RbdvmError:
        t = self.target
        try:
            mons = self.cluster.conf_get("mon_host")
        except rados.Error:
            mons = "?"
        if isinstance(exc, rados.TimedOut) or getattr(exc, "errno", None) in (errno.ETIMEDOUT, errno.EINTR):
            return ClusterUnavailable("cannot reach the Ceph cluster",
                                      f"no monitor answered within {timeouts.CEPH_CONNECT} s (tried {mons})",
                                      "Check the network to the monitors and `mon host` in " + t.conf,
                                      code="CEPH_UNAVAILABLE")
        if isinstance(exc, (rados.PermissionDeniedError, rados.PermissionError)) or \
                getattr(exc, "errno", None) in (errno.EACCES, errno.EPERM):
            return ClusterUnavailable(f"Ceph refused client.{t.client_id}",
                                      f"authentication failed against {mons}: {exc}",
                                      f"Check /etc/ceph/ceph.client.{t.client_id}.keyring and the user's key",
                                      code="CEPH_UNAVAILABLE")
        if isinstance(exc, rados.ObjectNotFound) or getattr(exc, "errno", None) == errno.ENOENT:
            return ClusterUnavailable(f"no keyring for client.{t.client_id}",
                                      "none in the keyring paths of " + t.conf,
                                      hint=Hint(hints.CEPH_ID, {"client_id": t.client_id}), code="CEPH_UNAVAILABLE")
        return ClusterUnavailable("cannot connect to the Ceph cluster", f"{exc} (monitors {mons})",
                                  code="CEPH_UNAVAILABLE")

    def fsid(self) -> str:
        """The Ceph cluster's id (what a signature is bound to, with pool and namespace)."""
        if self._fsid is None:
            with ceph_errors("reading the Ceph cluster's id", self.target):
                self._fsid = self.cluster.get_fsid()
        return self._fsid

    def namespace_exists(self) -> bool:
        return not self.target.namespace or self.rbd.RBD().namespace_exists(self.ioctx, self.target.namespace)

    def ensure_namespace(self) -> None:
        """Create the RBD namespace on first use (creating a VM in it)."""
        if not self.namespace_exists():
            with self.cluster.open_ioctx(self.target.pool) as root:
                with ceph_errors(f"creating namespace {self.target.namespace}", self.target):
                    try:
                        self.rbd.RBD().namespace_create(root, self.target.namespace)
                    except rbd.ImageExists:
                        pass

    def close(self) -> None:
        if self.ioctx is not None:
            self.ioctx.close()
            self.ioctx = None
        if self.cluster is not None:
            self.cluster.shutdown()
            self.cluster = None

    def __exit__(self, *exc):
        self.close()


def refused_by_blocklist(exc: Exception) -> bool:
    """Whether a Ceph error says the OSDs refuse this client: its address is blocklisted
    (librados reports it as a shut-down connection)."""
    return getattr(exc, "errno", None) == errno.ESHUTDOWN


def translate(exc: Exception, doing: str, target: CephTarget) -> RbdvmError:
    """A Ceph exception as an operator-facing error about `doing`."""
    code = getattr(exc, "errno", None)
    if isinstance(exc, (rbd.PermissionError, rados.PermissionError)) or code in (errno.EPERM, errno.EACCES):
        return ClusterUnavailable(
            f"permission denied {doing}",
            f"client.{target.client_id} lacks the capability for it",
            f"Grant it: ceph auth caps client.{target.client_id} mon 'profile rbd' "
            f"osd 'profile rbd pool={target.pool}'", code="CEPH_UNAVAILABLE")
    if refused_by_blocklist(exc):
        return ClusterUnavailable(f"Ceph refused this host while {doing}",
                                  "its address is on the OSD blocklist: it has been fenced off the storage",
                                  "Reboot this host; it is unfenced when it rejoins the cluster",
                                  code="CEPH_UNAVAILABLE")
    if isinstance(exc, (rbd.Timeout, rados.TimedOut)) or code == errno.ETIMEDOUT:
        return ClusterUnavailable(f"Ceph timed out {doing}", "an OSD or monitor did not answer",
                                  "Check `ceph -s` for down OSDs", code="CEPH_UNAVAILABLE")
    if isinstance(exc, (rbd.ImageNotFound, rados.ObjectNotFound)) or code == errno.ENOENT:
        return NotFound(f"not found while {doing}", str(exc))
    if isinstance(exc, (rbd.ImageExists, rados.ObjectExists)) or code == errno.EEXIST:
        return Conflict(f"already exists while {doing}", str(exc))
    if isinstance(exc, rbd.ImageBusy) or code == errno.EBUSY:
        return Conflict(f"busy while {doing}", str(exc))
    return RbdvmError(f"Ceph error while {doing}", str(exc))


@contextlib.contextmanager
def ceph_errors(doing: str, target: CephTarget):
    """Turn any rados/rbd error raised inside into an RbdvmError about `doing`."""
    try:
        yield
    except (rados.Error, rbd.Error) as exc:
        raise translate(exc, doing, target) from exc


def mon_command(session: Session, cmd: dict, doing: str, timeout: float = timeouts.MON_COMMAND) -> str:
    """A monitor command's output (bounded: `timeout` s, at least 1); refused or failed, an
    error naming the client whose capabilities to check. The one runner of mon commands."""
    try:
        ret, out, err = session.cluster.mon_command(json.dumps(cmd), b"", timeout=max(1, int(timeout)))
    except rados.Error as exc:
        raise ClusterUnavailable(f"Ceph did not answer {doing}", str(exc), code="CEPH_UNAVAILABLE") from None
    if ret != 0:
        who = f"client.{session.target.client_id}"
        raise ClusterUnavailable(f"Ceph refused {doing}", f"{err or ret}",
                                 f"Check {who}'s monitor capabilities (ceph auth get {who})",
                                 code="CEPH_UNAVAILABLE", details={"client": who, "errno": -ret})
    return out.decode() if isinstance(out, bytes) else out

"""A per-VM lease: one mutating command at a time on a VM, cluster-wide.

The lease is an exclusive RADOS object lock with an expiry on a small object beside the
VM's images (never an advisory lock on the disk images themselves: those share the header
lock with the exclusive-lock feature and freeze every writer, QEMU included). A thread renews
it while the command runs; a command killed mid-way leaves a lease that expires after
LEASE_SECONDS and is then taken over by the next command.
"""

import json
import os
import socket
import threading
import uuid
from datetime import datetime, timezone

import rados

from .ceph import Session, ceph_errors
from .errors import Conflict, RbdvmError
from .names import lease_object

# how long a killed command's lease blocks the VM; RBDVM_LEASE_SECONDS shortens it (tests)
LEASE_SECONDS = int(os.environ.get("RBDVM_LEASE_SECONDS", "30"))
LOCK_NAME = "rbdvm-lease"
LOCK_FLAG_RENEW = 1          # LIBRADOS_LOCK_FLAG_MAY_RENEW
HOLDER_XATTR = "rbdvm.holder"


class LeaseLost(RbdvmError):
    """The lease expired under a running command (the host stalled for LEASE_SECONDS)."""


class Lease:
    """`with Lease(session, vm, "create"):` — raises Conflict at once if another command holds it."""

    def __init__(self, session: Session, vm: str, operation: str, seconds: int = LEASE_SECONDS):
        self.session, self.vm, self.operation, self.seconds = session, vm, operation, seconds
        self.obj = lease_object(vm)
        self.cookie = uuid.uuid4().hex
        self._stop = threading.Event()
        self._lost = None
        self._thread = None

    def _lock(self, flags: int = 0) -> None:
        self.session.ioctx.lock_exclusive(self.obj, LOCK_NAME, self.cookie, desc=self.operation,
                                          duration=self.seconds, flags=flags)

    def __enter__(self):
        ioctx = self.session.ioctx
        try:
            self._lock()
        except rados.ObjectBusy:
            raise Conflict(f"VM {self.vm} is busy", self._holder(),
                           "Wait for that command to finish (a killed command's lease expires "
                           f"after {self.seconds} s), then run yours again") from None
        except rados.Error as exc:
            with ceph_errors(f"taking the lease of VM {self.vm}", self.session.target):
                raise exc
        holder = {"operation": self.operation, "host": socket.gethostname(), "pid": os.getpid(),
                  "since": datetime.now(timezone.utc).isoformat(timespec="seconds")}
        with ceph_errors(f"recording the lease holder of VM {self.vm}", self.session.target):
            ioctx.set_xattr(self.obj, HOLDER_XATTR, json.dumps(holder).encode())
        self._thread = threading.Thread(target=self._renew, name=f"lease-{self.vm}", daemon=True)
        self._thread.start()
        return self

    def _holder(self) -> str:
        try:
            h = json.loads(self.session.ioctx.get_xattr(self.obj, HOLDER_XATTR))
            return f"{h['operation']} by {h['host']} since {h['since']} (pid {h['pid']})"
        except (rados.Error, ValueError, KeyError):
            return "another rbdvm command holds its lease"

    def _renew(self) -> None:
        while not self._stop.wait(self.seconds / 3):
            try:
                self._lock(LOCK_FLAG_RENEW)
            except rados.Error as exc:
                self._lost = exc
                return

    def check(self) -> None:
        """Call between steps: stop before doing anything under a lease that was lost."""
        if self._lost is not None:
            raise LeaseLost(f"lost the lease of VM {self.vm}", str(self._lost),
                            "Run the command again: it resumes where it stopped")

    def __exit__(self, *exc):
        self._stop.set()
        if self._thread:
            self._thread.join()
        try:
            self.session.ioctx.unlock(self.obj, LOCK_NAME, self.cookie)
        except rados.Error:
            pass   # expired or gone with the VM: nothing to release

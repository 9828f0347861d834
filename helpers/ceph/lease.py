"""A per-VM lease: one mutating command at a time on a VM, cluster-wide.

The lease is an exclusive RADOS object lock with an expiry on a small object beside the
VM's images (never an advisory lock on the disk images themselves: those share the header
lock with the exclusive-lock feature and freeze every writer, QEMU included). A thread renews
it while the command runs; a command killed mid-way leaves a lease that expires after
timeouts.LEASE and is then taken over by the next command.
"""

import json
import os
import socket
import threading
import time
from datetime import datetime, timezone

import rados

from ..core import timeouts
from ..core.errors import Conflict, RbdvmError
from ..core.names import lease_object
from .radoslock import RadosLock
from .session import Session, ceph_errors

LOCK_NAME = "rbdvm-lease"
HOLDER_XATTR = "rbdvm.holder"
STALLED = "it was not renewed in time (this host or Ceph stalled)"


def remove_object(session: Session, vm: str) -> None:
    """The lease object of a VM that is gone (its last step: nothing is left of the VM)."""
    with ceph_errors(f"removing the lease of {vm}", session.target):
        try:
            session.ioctx.remove_object(lease_object(vm))
        except rados.ObjectNotFound:
            pass


class LeaseLost(RbdvmError):
    """The lease expired under a running command (the host or Ceph stalled), or another
    command took it."""


class Lease:
    """`with Lease(session, vm, "create"):` — raises Conflict at once if another command holds it.

    The lease is valid until the expiry of the last renewal that succeeded, counted from
    the moment that renewal was *sent* (the OSD counts from when it got it, later). A
    renewal that fails is retried until then; a renewal that blocks (Ceph paused) is
    outlived by a watchdog. Once that moment passes the lease is lost for good, even if a
    later renewal would succeed: another command may have held the VM meanwhile. Losing it
    kills the children the command adopted (qemu-img) and makes check() raise.
    """

    def __init__(self, session: Session, vm: str, operation: str, seconds: int = timeouts.LEASE):
        self.session, self.vm, self.operation, self.seconds = session, vm, operation, seconds
        self.obj = lease_object(vm)
        self.lock = RadosLock(session.ioctx, self.obj, LOCK_NAME, seconds, desc=operation)
        self._stop = threading.Event()
        self._guard = threading.Lock()
        self._lost: str | None = None
        self._valid_until = 0.0
        self._children: set = set()
        self._threads: list = []
        # stop acting a little before the OSD lets the lock go
        self._margin = min(1.0, seconds / 4)


    def __enter__(self):
        ioctx = self.session.ioctx
        sent = time.monotonic()
        try:
            taken = self.lock.try_take()
        except rados.Error as exc:
            with ceph_errors(f"taking the lease of VM {self.vm}", self.session.target):
                raise exc
        if not taken:
            raise Conflict(f"VM {self.vm} is busy", self._holder(),
                           "Wait for that command to finish (a killed command's lease expires "
                           f"after {self.seconds} s), then run yours again",
                           code="VM_BUSY", details={"vm": self.vm})
        self._valid_until = sent + self.seconds
        holder = {"operation": self.operation, "host": socket.gethostname(), "pid": os.getpid(),
                  "since": datetime.now(timezone.utc).isoformat(timespec="seconds")}
        with ceph_errors(f"recording the lease holder of VM {self.vm}", self.session.target):
            ioctx.set_xattr(self.obj, HOLDER_XATTR, json.dumps(holder).encode())
        for target, role in ((self._renew, "renew"), (self._watch, "watch")):
            t = threading.Thread(target=target, name=f"lease-{role}-{self.vm}", daemon=True)
            t.start()
            self._threads.append(t)
        return self

    def _holder(self) -> str:
        try:
            h = json.loads(self.session.ioctx.get_xattr(self.obj, HOLDER_XATTR))
            return f"{h['operation']} by {h['host']} since {h['since']} (pid {h['pid']})"
        except (rados.Error, ValueError, KeyError):
            return "another rbdvm command holds its lease"

    def _expired(self) -> bool:
        return time.monotonic() >= self._valid_until - self._margin

    def _renew(self) -> None:
        pause, failing = self.seconds / 3, None
        while not self._stop.wait(pause):
            sent = time.monotonic()
            if self._expired() or self._lost is not None:
                return self._lose(STALLED + (f"; the last renewal failed: {failing}" if failing else ""))
            try:
                if not self.lock.try_take(renew=True):
                    return self._lose("another command took it")
            except rados.Error as exc:
                pause, failing = min(1.0, self.seconds / 6), exc     # retried until the lease runs out
                continue
            with self._guard:
                if self._lost is None:
                    self._valid_until = sent + self.seconds
            pause, failing = self.seconds / 3, None

    def _watch(self) -> None:
        while not self._stop.wait(min(0.5, self.seconds / 6)):
            if self._expired():
                return self._lose(STALLED)

    def _lose(self, why: str) -> None:
        with self._guard:
            if self._lost is None:
                self._lost = why
            children = list(self._children)
        for proc in children:
            if proc.poll() is None:
                proc.kill()

    def adopt(self, proc) -> None:
        """A child process (subprocess.Popen) that writes the VM's disks: killed the moment
        the lease is lost."""
        with self._guard:
            self._children.add(proc)
            lost = self._lost is not None
        if lost:
            proc.kill()

    def check(self) -> None:
        """Call between steps: stop before doing anything under a lease that was lost."""
        if self._lost is None and self._expired():
            self._lose(STALLED)
        if self._lost is not None:
            raise LeaseLost(f"lost the lease of VM {self.vm}", self._lost,
                            "Nothing more was written after that. Run the command again: it "
                            "resumes where it stopped")

    def __exit__(self, *exc):
        self._stop.set()
        for t in self._threads:
            t.join()      # a renewal in flight would take the lock again after the unlock
        self.lock.release()

"""Holding a running guest still for a snapshot: its filesystems frozen by the QEMU guest
agent when it has one (application-consistent: a restored filesystem mounts clean), its
vCPUs paused while every disk is snapshotted (one instant across disks: rbdvm's backup
snapshots are per-disk, made back to back), then resumed and thawed.

Whatever happens to the command, the guest is not left frozen or paused: a watcher process
(thawguard), started first, in its own session, resumes and thaws it when the command dies
(kill -9 included), is stopped, or holds it longer than timeouts.GUEST_FROZEN_MAX.
"""

import contextlib
import subprocess
import sys
import time
from typing import Any

import libvirt

from ..core import backupset, timeouts
from ..core.bounded import Hung
from ..core.errors import RbdvmError
from . import live
from .thawguard import FROZE, PAUSED, RESUMED, THAWED


class _Guard:
    def __init__(self, uri: str, vm: str):
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "rbdvm.helpers.hypervisor.thawguard", uri, vm, str(timeouts.GUEST_FROZEN_MAX)],
            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        self.pipe: Any = self.proc.stdin

    def tell(self, what: str) -> None:
        try:
            self.pipe.write(what.encode() + b"\n")
            self.pipe.flush()
        except OSError:
            pass

    def done(self) -> None:
        try:
            self.pipe.close()
        except OSError:
            pass
        try:
            self.proc.wait(timeout=timeouts.LIBVIRT_CALL)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@contextlib.contextmanager
def held(uri: str, vm: str, agent: bool, pause: bool = True):
    """`with held(uri, vm, agent) as info:` the guest held still for the body (its vCPUs
    paused unless `pause` is False: an RBD group snapshot is one instant by itself); info
    says how consistent a snapshot taken in the body is: {"level", "why", "frozen", "paused_ms"}."""
    info = {"level": backupset.CRASH, "why": "", "frozen": 0, "paused_ms": None}
    with live.Domain(uri, vm) as d:
        guard = _Guard(uri, vm)
        froze = False
        try:
            if not agent:
                info["why"] = "its definition has no QEMU guest agent channel"
            else:
                guard.tell(FROZE)
                froze = True
                try:
                    info["frozen"] = d.fs_freeze(time.monotonic() + timeouts.GUEST_FREEZE)
                    info["level"] = backupset.APPLICATION
                    info["why"] = f"the guest agent froze {info['frozen']} filesystem(s)"
                except Hung:
                    info["why"] = f"the guest agent did not freeze the filesystems within {timeouts.GUEST_FREEZE} s"
                except libvirt.libvirtError as exc:
                    info["why"] = f"the guest agent did not freeze the filesystems: {exc.get_error_message()}"
            if not pause or d.is_paused():
                # paused already (by an operator): held still, and left as it was found
                yield info
                return
            guard.tell(PAUSED)
            d.pause()
            paused = time.monotonic()
            try:
                yield info
            finally:
                d.resume()
                guard.tell(RESUMED)
                info["paused_ms"] = round((time.monotonic() - paused) * 1000)
        finally:
            if froze:
                # also when the freeze failed or timed out: it may have happened after all
                with contextlib.suppress(Hung, libvirt.libvirtError, RbdvmError):
                    d.fs_thaw(time.monotonic() + timeouts.GUEST_FREEZE)
                guard.tell(THAWED)
            guard.done()

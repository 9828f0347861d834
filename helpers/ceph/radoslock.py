"""The one way rbdvm takes a RADOS lock: an exclusive object lock (cls_lock) with an expiry,
named and described so `rados lock info` says who holds it and why. Used by the VM lease,
the fence lock and the split-brain guard's start locks: a holder killed inside blocks nobody
for longer than the lock's duration."""

import time
import uuid

import rados

MAY_RENEW = 1          # LIBRADOS_LOCK_FLAG_MAY_RENEW


class RadosLock:
    """`name` on object `obj` of `ioctx`, held under a cookie of its own for `seconds`."""

    def __init__(self, ioctx, obj: str, name: str, seconds: float, desc: str = "", cookie: str = ""):
        self.ioctx, self.obj, self.name, self.seconds, self.desc = ioctx, obj, name, seconds, desc
        self.cookie = cookie or uuid.uuid4().hex

    def try_take(self, renew: bool = False) -> bool:
        """Take (or, `renew`, extend) the lock: False if someone else holds it. Any other
        RADOS error (a blocklisted host, a paused pool) is raised for the caller to word."""
        try:
            self.ioctx.lock_exclusive(self.obj, self.name, self.cookie, desc=self.desc, duration=int(self.seconds),
                                      flags=MAY_RENEW if renew else 0)
            return True
        except (rados.ObjectBusy, rados.ObjectExists):
            return False

    def take(self, until: float, every: float) -> bool:
        """Try until `until` (monotonic clock), every `every` seconds: False if still held."""
        while not self.try_take():
            if time.monotonic() >= until:
                return False
            time.sleep(every)
        return True

    def release(self) -> None:
        """Let the lock go; one that expired or whose object is gone is nothing to release."""
        try:
            self.ioctx.unlock(self.obj, self.name, self.cookie)
        except rados.Error:
            pass

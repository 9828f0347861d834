"""The one bounded call: a call that must not outlive its deadline. Standard library only (`_thread`,
not `threading`: 4 ms of imports on every monitor).

A libvirt call blocks in C without a timeout of its own when libvirtd is stopped (its
socket still accepts), and so does a reverse DNS lookup towards a dead server; libvirt-python
and the resolver release the GIL, so the call can run in a thread that is given up on.
"""

import _thread
import time

# calls given up on: their threads still run, so the agent leaves with os._exit (agent.main)
abandoned: list = []


class Hung(Exception):
    """A call did not return before its deadline."""


def bounded(until: float, fn, *args):
    """fn(*args), or Hung once time.monotonic() reaches `until`."""
    what = getattr(fn, "__name__", "a call")
    left = until - time.monotonic()
    if left <= 0:
        raise Hung(f"no time left to call {what}")
    box = []
    done = _thread.allocate_lock()
    done.acquire()

    def run():
        try:
            box.append((True, fn(*args)))
        except BaseException as exc:  # noqa: BLE001 - handed to the caller
            box.append((False, exc))
        finally:
            done.release()

    _thread.start_new_thread(run, ())
    if not done.acquire(timeout=left):
        abandoned.append(what)
        raise Hung(f"{what} did not return within {left:.1f} s")
    ok, value = box[0]
    if not ok:
        raise value
    return value

#!/usr/bin/python3
"""reaper.py CMD ARGS...: run CMD as the child of a child-subreaper.

libvirtd double-forks QEMU, which is then re-parented to the nearest subreaper, normally
PID 1. PID 1 in this sandbox reaps orphans only every ~1.5 s, and libvirt's destroy() waits
for the reaping: 2 s instead of 0.2 s. Under this wrapper QEMU is reaped at once.
TERM/INT/HUP are forwarded to the child; the wrapper exits with the child's status.
"""
import ctypes
import os
import signal
import sys

PR_SET_CHILD_SUBREAPER = 36
libc = ctypes.CDLL(None, use_errno=True)
if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
    sys.exit("prctl(PR_SET_CHILD_SUBREAPER) failed: errno %d" % ctypes.get_errno())

child = os.fork()
if child == 0:
    os.execvp(sys.argv[1], sys.argv[1:])


def forward(sig, _frame):
    try:
        os.kill(child, sig)
    except ProcessLookupError:
        pass


for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
    signal.signal(s, forward)

rc = 0
while True:
    try:
        pid, status = os.wait()
    except ChildProcessError:
        break
    if pid == child:
        rc = os.waitstatus_to_exitcode(status)
        break
sys.exit(rc if rc >= 0 else 128 - rc)

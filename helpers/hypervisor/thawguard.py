"""The watcher quiesce.held starts before it freezes or pauses a guest:
`python -m rbdvm.helpers.hypervisor.thawguard URI VM SECONDS`. It reads what the command
did on its stdin (one word a line); when the pipe closes (the command finished, or died)
or SECONDS pass, it undoes what is left undone: resumes the vCPUs it paused, thaws the
filesystems it froze. Its own session: a kill of the command's process group spares it."""

import os
import select
import signal
import sys
import time

FROZE, THAWED, PAUSED, RESUMED = "froze", "thawed", "paused", "resumed"


def watch(stream, seconds: float) -> set:
    """What is left undone once `stream` closes or `seconds` pass."""
    undone: set = set()
    deadline = time.monotonic() + seconds
    buffer = b""
    fd = stream.fileno()
    while True:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            return undone
        chunk = os.read(fd, 4096)
        if not chunk:
            return undone
        buffer += chunk
        *lines, buffer = buffer.split(b"\n")
        for line in lines:
            word = line.decode(errors="replace").strip()
            if word in (FROZE, PAUSED):
                undone.add(word)
            elif word == THAWED:
                undone.discard(FROZE)
            elif word == RESUMED:
                undone.discard(PAUSED)


def undo(uri: str, vm: str, undone: set) -> None:
    import libvirt

    if not undone:
        return
    conn = libvirt.open(uri)
    try:
        dom = conn.lookupByName(vm)
        if PAUSED in undone and dom.state()[0] == libvirt.VIR_DOMAIN_PAUSED:
            dom.resume()
        if FROZE in undone:
            dom.fsThaw()
    finally:
        conn.close()


def main(argv) -> int:
    uri, vm, seconds = argv[1], argv[2], float(argv[3])
    undone = watch(sys.stdin, seconds)
    # a libvirtd or guest agent that does not answer does not keep this process for ever
    signal.alarm(int(seconds) + 30)
    try:
        undo(uri, vm, undone)
    except Exception:  # noqa: BLE001 - nobody to tell: the guest is as libvirt left it
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

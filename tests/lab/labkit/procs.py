"""Processes the lab started: a registry of PID + start time (guards against PID reuse)."""

import os
import signal
import subprocess
import time
from pathlib import Path


class LabError(Exception):
    """A lab step failed; the message says which and why."""


def run(argv, *, timeout=60, check=True, input=None, env=None) -> subprocess.CompletedProcess:
    """Run argv (never through a shell) and capture its output; raise LabError on failure."""
    try:
        res = subprocess.run(list(map(str, argv)), capture_output=True, text=True, timeout=timeout,
                             input=input, env=env)
    except subprocess.TimeoutExpired as exc:
        raise LabError(f"timed out after {timeout}s: {' '.join(map(str, argv))}") from exc
    except FileNotFoundError as exc:
        raise LabError(f"{argv[0]} not found: install the lab's packages (make deps)") from exc
    if check and res.returncode != 0:
        raise LabError(f"failed (rc {res.returncode}): {' '.join(map(str, argv))}\n"
                       f"{(res.stderr or res.stdout).strip()}")
    return res


def wait_for(seconds: float, predicate, interval: float = 0.1) -> bool:
    """Call predicate until it is true or `seconds` have passed."""
    end = time.monotonic() + seconds
    while True:
        try:
            if predicate():
                return True
        except (OSError, LabError):
            pass
        if time.monotonic() >= end:
            return False
        time.sleep(interval)


def _stat_fields(pid: int):
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()


def starttime(pid: int):
    try:
        return _stat_fields(pid)[19]
    except (OSError, IndexError):
        return None


def is_live(pid: int) -> bool:
    """The process exists and is not a zombie."""
    try:
        return _stat_fields(pid)[0] != "Z"
    except (OSError, IndexError):
        return False


class Registry:
    """$STATE/pids/NAME holds 'PID STARTTIME' for every process the lab started."""

    def __init__(self, directory: Path):
        self.dir = directory

    def register(self, name: str, pid: int) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        st = starttime(pid)
        if st is None:
            raise LabError(f"{name} (pid {pid}) exited right after start")
        (self.dir / name).write_text(f"{pid} {st}\n")

    def names(self):
        return sorted(p.name for p in self.dir.glob("*")) if self.dir.is_dir() else []

    def _entry(self, name: str):
        try:
            pid, st = (self.dir / name).read_text().split()
            return int(pid), st
        except (OSError, ValueError):
            return None

    def pid(self, name: str):
        """PID of NAME if that very process still lives, else None."""
        entry = self._entry(name)
        if entry and starttime(entry[0]) == entry[1] and is_live(entry[0]):
            return entry[0]
        return None

    def alive(self, name: str) -> bool:
        return self.pid(name) is not None

    def exists(self, name: str) -> bool:
        """The registered process (zombie or not) has not been reaped yet."""
        reap_children()
        entry = self._entry(name)
        return bool(entry) and starttime(entry[0]) == entry[1]

    def stop(self, names, grace: float, log=lambda msg: None):
        """SIGTERM the live ones among `names`, SIGKILL whatever ignores it for `grace` s."""
        live = [n for n in names if self.alive(n)]
        for n in live:
            _kill(self.pid(n), signal.SIGTERM)
        if not wait_for(grace, lambda: not any(self.alive(n) for n in live), 0.05):
            for n in live:
                pid = self.pid(n)
                if pid:
                    log(f"WARN {n} (pid {pid}) ignored SIGTERM for {grace}s: SIGKILL")
                    _kill(pid, signal.SIGKILL)
        return live


def _kill(pid, sig) -> None:
    try:
        if pid:
            os.kill(pid, sig)
    except ProcessLookupError:
        pass


def netns_inode(name: str):
    try:
        return os.stat(f"/run/netns/{name}").st_ino
    except OSError:
        return None


def pids_in_netns(names) -> list:
    """Live (non-zombie) PIDs whose network namespace is one of `names`."""
    wanted = {f"net:[{ino}]" for ino in map(netns_inode, names) if ino}
    if not wanted:
        return []
    found = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            if os.readlink(f"/proc/{d}/ns/net") in wanted and is_live(int(d)):
                found.append(int(d))
        except OSError:
            continue
    return sorted(found)


def reap_children() -> None:
    """Reap exited children of this process (daemons this very process started)."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def kill_pids(pids) -> None:
    for p in pids:
        _kill(p, signal.SIGKILL)


def rss_kib(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return "?"

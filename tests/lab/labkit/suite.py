"""The whole suite, as `make test` (and so CI) runs it, in two phases:

1. the lab tests marked `side_by_side` (each touches only its own VMs and asserts nothing
   about the cluster as a whole) in three worker processes (pytest-xdist, a test file per
   worker at a time) on lab 0: the lab's waits on guests, Pacemaker and Ceph leave the
   machine's cores idle otherwise (a fourth worker gained nothing: the phase keeps both
   cores busy);
2. every other lab test, one at a time on each lab: they crash, partition, fence, pause or
   reconfigure what the others of their lab use. Two workers, each with a lab of its own
   (RBDVM_LAB_PER_WORKER: worker gwN uses lab N, which its lab fixture brings up if it
   is not, and then takes down), a test file at a time: these tests
   mostly wait on timers (failure detection, fencing, boots), so two independent clusters
   halve the phase. Beside them, in a pytest of their own, the unit and host tests (~100 s
   of one core, which the first phase has none of).

A lab is brought up first if it is not healthy, and taken down at the end if this run
started it (RBDVM_LAB_KEEP=1 keeps them). Arguments are passed to every pytest run."""

import os
import subprocess
import sys
import tempfile

from . import layout as L
from . import lifecycle

WORKERS = "3"
LABS = 2                  # the one-at-a-time phase's workers, a lab each
SIDE_BY_SIDE = ["-n", WORKERS, "--dist", "loadfile", "-m", "lab and side_by_side"]
OFF_LAB = ["-m", "not lab"]
# in the order the lab's plugin gives (longest files first, the lab's own life cycle last)
ALONE = ["-n", str(LABS), "--dist", "loadfile", "--no-loadscope-reorder", "-m", "lab and not side_by_side"]
PER_WORKER = {"RBDVM_LAB_PER_WORKER": "1"}


def pytest(args: list, env: dict = None) -> int:
    print(f"+ {' '.join(f'{k}={v}' for k, v in (env or {}).items())} pytest {' '.join(args)}", flush=True)
    return subprocess.call([sys.executable, "-m", "pytest", *args], env={**os.environ, **(env or {})})


def beside_off_lab(args: list, argv: list) -> tuple:
    """pytest `args` and, at the same time, the tests that need no lab, whose output is shown
    once both are done. Their return codes."""
    with tempfile.TemporaryFile("w+") as out:
        print(f"+ pytest {' '.join(OFF_LAB + argv)} (beside the next, shown after it)", flush=True)
        off_lab = subprocess.Popen([sys.executable, "-m", "pytest", *OFF_LAB, *argv], stdout=out,
                                   stderr=subprocess.STDOUT)
        try:
            lab = pytest(args + argv, PER_WORKER)
        finally:
            off = off_lab.wait()
        out.seek(0)
        print(f"+ (the tests that need no lab)\n{out.read()}", flush=True)
    return lab, off


def main(argv: list) -> int:
    lab = str(L.LAB_SRC / "lab")
    started = False
    if not lifecycle.healthy():
        res = subprocess.run([lab, "up"], capture_output=True, text=True)
        if res.returncode != 0:
            # the lab tests would fail one by one with this; the others still run
            print(f"the lab did not come up (tests/lab/lab up, rc {res.returncode}):\n{res.stdout}\n{res.stderr}",
                  flush=True)
            pytest(["-m", "not lab", *argv])
            return 1
        started = True
    try:
        first = pytest(SIDE_BY_SIDE + argv)
        # the other labs are brought up by their worker's lab fixture, and taken down by it
        # (not during the first phase: an idle lab's daemons cost that phase ~30 s)
        second, off_lab = beside_off_lab(ALONE, argv)
    finally:
        if started and os.environ.get("RBDVM_LAB_KEEP") != "1":
            subprocess.run([lab, "down"], check=False)
    # pytest's "no tests collected" (5) is not a failure of a phase a selection emptied
    return max(rc if rc != 5 else 0 for rc in (first, off_lab, second))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

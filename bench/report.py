"""What the benchmarks share: running a worker on the lab, the verdict and machine lines, and
writing one benchmark's section into docs/benchmarks.md, replacing its previous run."""

import json
import os
import platform
import re
import time
from pathlib import Path

DOC = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"
# `python -c COUNTING_CLI ARGS...`: the rbdvm command, then on stderr how many processes it
# started (Python's audit hook on subprocess.Popen): each one a CIB or status round trip
COUNTING_CLI = """
import sys
count = [0]
sys.addaudithook(lambda event, args: count.__setitem__(0, count[0] + (event == "subprocess.Popen")))
from rbdvm.cli.main import main
try:
    main(sys.argv[1:])
finally:
    print("SUBPROCESSES", count[0], file=sys.stderr)
"""


def write_section(name: str, body: str) -> None:
    begin, end = f"<!-- bench:{name} begin -->", f"<!-- bench:{name} end -->"
    section = f"{begin}\n{body}\n{end}"
    print(section)
    text = DOC.read_text() if DOC.exists() else "# Benchmarks\n"
    if begin in text:
        text = re.sub(re.escape(begin) + ".*?" + re.escape(end), lambda _: section, text, flags=re.S)
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    DOC.write_text(text)


def verdict(ok: bool) -> str:
    return "met" if ok else "**missed**"


def machine() -> str:
    """When and where a benchmark ran, for its Command line."""
    return f"{time.strftime('%Y-%m-%d')}, {platform.node()}: {os.cpu_count()} cores"


def run_worker(script: str, *args, env=(), timeout: float = 1800) -> dict:
    """Run bench/<script> on node1 with the venv's python (as client.rbdvm); its last line
    of output is its JSON result."""
    from labkit import layout as L  # the caller has put the lab on sys.path
    from labkit import ops

    res = ops.on("node1", "env", *env, str(L.VENV / "bin" / "python"), str(Path(__file__).parent / script),
                 *map(str, args), timeout=timeout)
    return json.loads(res.stdout.strip().splitlines()[-1])

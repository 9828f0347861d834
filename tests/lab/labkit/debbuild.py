"""The Debian package of the committed tree, built once per commit (debian/build-deb from a
clean clone, lintian clean): the first phase of the suite builds it (a host test), the lab
test of the package, which runs alone in the second phase, installs that same file."""

import shutil
import subprocess
import tempfile
from pathlib import Path

from . import once

REPO = Path(__file__).resolve().parents[3]
# beside the lab, not in it: `lab down` keeps it; the nodes see the host's /tmp
CACHE = Path("/tmp/rbdvm-lab-cache/deb")


def _run(*argv, cwd=None) -> str:
    res = subprocess.run([str(a) for a in argv], cwd=cwd, capture_output=True, text=True, timeout=900)
    if res.returncode != 0:
        raise AssertionError(f"{' '.join(map(str, argv))} failed ({res.returncode}):\n{res.stdout}\n{res.stderr}")
    return res.stdout


def package() -> Path:
    """The .deb of the committed tree (HEAD), built now unless it was for this commit."""
    commit = _run("git", "-C", REPO, "rev-parse", "HEAD").strip()
    target = CACHE / commit / "rbdvm_all.deb"

    def build(tmp: Path) -> None:
        with tempfile.TemporaryDirectory(dir=CACHE) as work:
            clone = Path(work) / "clone"
            _run("git", "clone", "-q", REPO, clone)
            _run("git", "-C", clone, "checkout", "-q", commit)
            built = _run(clone / "debian" / "build-deb", Path(work) / "dist").strip().splitlines()[-1]
            Path(built).rename(tmp)
    CACHE.mkdir(parents=True, exist_ok=True)
    with once.locked(CACHE / "builds"):
        for old in CACHE.iterdir():       # another commit's package: never needed again
            if old.is_dir() and old.name != commit:
                shutil.rmtree(old, ignore_errors=True)
    return once.made_once(target, build)

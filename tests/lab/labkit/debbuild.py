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
WORK = CACHE / ".work"


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
        WORK.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=WORK) as work:
            clone = Path(work) / "clone"
            _run("git", "clone", "-q", REPO, clone)
            _run("git", "-C", clone, "checkout", "-q", commit)
            built = _run(clone / "debian" / "build-deb", Path(work) / "dist").strip().splitlines()[-1]
            Path(built).rename(tmp)
    forget_other_commits(commit)
    return once.made_once(target, build)


def forget_other_commits(commit: str) -> None:
    """Remove the packages of other commits (never needed again). A build under way, even of
    another commit, keeps its work directory: a test beside it may be building the package
    (seen: a lab test's cleanup removed the host test's build, which then failed)."""
    CACHE.mkdir(parents=True, exist_ok=True)
    with once.locked(CACHE / "builds"):
        for old in CACHE.iterdir():
            if old.is_dir() and old.name != commit and old != WORK:
                shutil.rmtree(old, ignore_errors=True)

"""`rbdvm install-agent` makes an agent every user can run, wherever rbdvm was installed
from (issue 11: a clone in a `mktemp -d` directory, mode 0700, gave an agent whose meta-data
failed for ocf-tester's unprivileged user, rc 126). Needs root (to run as nobody), not the lab."""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.host
REPO = Path(__file__).resolve().parents[2]
SYSTEM_PYTHON = "/usr/bin/python3"


@pytest.fixture
def private_checkout(tmp_path):
    """rbdvm's code inside a directory only root may enter, as `mktemp -d` makes it."""
    d = Path(subprocess.run(["mktemp", "-d"], capture_output=True, text=True, check=True).stdout.strip())
    for package in ("ocf", "helpers"):
        shutil.copytree(REPO / package, d / "pkg" / "rbdvm" / package,
                        ignore=shutil.ignore_patterns("__pycache__"))
    assert oct(d.stat().st_mode & 0o777) == "0o700"
    yield d
    shutil.rmtree(d)


@pytest.fixture
def public_dir():
    d = Path(subprocess.run(["mktemp", "-d"], capture_output=True, text=True, check=True).stdout.strip())
    d.chmod(0o755)
    yield d
    shutil.rmtree(d)


def install(checkout: Path, agents: Path, lib: Path) -> subprocess.CompletedProcess:
    """install-agent run by a Python whose rbdvm lives in `checkout` (fence agents beside
    the resource agent); prints the resource agent's path."""
    code = ("import sys; sys.path.insert(0, sys.argv[1])\n"
            "from rbdvm.ocf import install\n"
            "try:\n    print(install.install(sys.argv[2], sys.argv[3], sys.argv[2], sys.argv[2])['VirtualDomain'])\n"
            "except install.InstallError as exc:\n    print(exc, file=sys.stderr); sys.exit(1)\n")
    return subprocess.run([SYSTEM_PYTHON, "-c", code, str(checkout / "pkg"), str(agents), str(lib)],
                          capture_output=True, text=True, timeout=60)


def as_nobody(*args) -> subprocess.CompletedProcess:
    return subprocess.run(list(args), capture_output=True, text=True, timeout=30, cwd="/",
                          user="nobody", group="nogroup", extra_groups=[],
                          env={"PATH": "/usr/bin:/bin", "OCF_ROOT": "/usr/lib/ocf"})


def test_an_agent_installed_from_a_private_directory_works_for_every_user(private_checkout, public_dir):
    assert os.geteuid() == 0, "this test switches to the user nobody"
    res = install(private_checkout, public_dir / "agents", public_dir / "lib")
    assert res.returncode == 0, res.stderr
    agent = res.stdout.strip()
    meta = as_nobody(agent, "meta-data")
    assert meta.returncode == 0 and "<resource-agent" in meta.stdout, meta.stderr
    fence = as_nobody(str(Path(agent).parent / "fence_rbdvm"), "-o", "metadata")
    assert fence.returncode == 0 and 'name="fence_rbdvm"' in fence.stdout, fence.stderr
    first_line = Path(agent).read_text().splitlines()[0]
    assert str(private_checkout) not in Path(agent).read_text(), "the agent needs nothing from the checkout"
    assert first_line.startswith("#!/usr/bin/python3")
    # nothing in the agent's code is writable by others, nor by its runs (compiled at install)
    for path in (public_dir / "lib").rglob("*"):
        assert not path.stat().st_mode & 0o022, path
    assert list((public_dir / "lib").rglob("*.pyc"))


def test_install_refuses_a_place_other_users_cannot_enter_and_keeps_the_previous_agent(
        private_checkout, public_dir):
    good = install(private_checkout, public_dir / "agents", public_dir / "lib")
    assert good.returncode == 0, good.stderr
    before = Path(good.stdout.strip()).read_text()
    res = install(private_checkout, public_dir / "agents", private_checkout / "lib")
    assert res.returncode == 1
    assert f"{private_checkout} has mode drwx------" in res.stderr and "chmod o+x" in res.stderr
    assert Path(good.stdout.strip()).read_text() == before, "the previous agent is untouched"
    assert not list((public_dir / "agents").glob("*.new"))


def test_reinstall_reuses_the_copy_and_keeps_one_previous_version(private_checkout, public_dir):
    agents, lib = public_dir / "agents", public_dir / "lib"
    assert install(private_checkout, agents, lib).returncode == 0
    assert install(private_checkout, agents, lib).returncode == 0
    assert len(list(lib.iterdir())) == 1, "the same code is copied once"
    for version in range(2):   # two upgrades: the oldest copy goes, the one before stays
        (private_checkout / "pkg" / "rbdvm" / "ocf" / "log.py").open("a").write(f"# upgrade {version}\n")
        assert install(private_checkout, agents, lib).returncode == 0
    assert len(list(lib.iterdir())) == 2
    assert as_nobody(str(agents / "VirtualDomain"), "meta-data").returncode == 0


def test_installs_run_at_once_all_succeed_and_leave_one_working_agent(private_checkout, public_dir):
    """Two operators (or a playbook and the Debian package's hook) installing at the same
    moment: each install is whole or waits; none fails on the other's temporary files or
    prunes the copy the other is making."""
    agents, lib = public_dir / "agents", public_dir / "lib"
    code = ("import sys; sys.path.insert(0, sys.argv[1])\n"
            "from rbdvm.ocf import install\n"
            "install.install(sys.argv[2], sys.argv[3], sys.argv[2], sys.argv[2])\n")
    for round_ in range(3):
        # a new version each round: every install copies code, the later ones prune
        (private_checkout / "pkg" / "rbdvm" / "ocf" / "log.py").open("a").write(f"# round {round_}\n")
        procs = [subprocess.Popen([SYSTEM_PYTHON, "-c", code, str(private_checkout / "pkg"), str(agents), str(lib)],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(4)]
        results = [(p.wait(timeout=120), p.stderr.read()) for p in procs]
        assert all(rc == 0 for rc, _ in results), results
        assert not list(agents.glob("*.new")) and not [p for p in lib.iterdir() if ".tmp" in p.name]
        assert as_nobody(str(agents / "VirtualDomain"), "meta-data").returncode == 0

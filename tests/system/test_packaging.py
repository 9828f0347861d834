"""rbdvm installed the way Python software is installed: a wheel and an sdist built from a
clean clone, the wheel installed into a fresh venv (with Debian's Ceph and libvirt bindings
through --system-site-packages), and every entry point run from there. An editable install
(`make deps`) hides a module missing from the wheel: this test is what sees it."""

import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.host
REPO = Path(__file__).resolve().parents[2]
PRODUCT = ("ocf", "helpers", "cli")


def run(*argv, cwd=None, timeout=600) -> subprocess.CompletedProcess:
    res = subprocess.run([str(a) for a in argv], cwd=cwd, capture_output=True, text=True, timeout=timeout)
    assert res.returncode == 0, f"{' '.join(map(str, argv))} failed ({res.returncode}):\n{res.stdout}\n{res.stderr}"
    return res


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """(clone, dist folder, venv python) for the committed tree."""
    tmp = tmp_path_factory.mktemp("pkg")
    clone = tmp / "clone"
    run("git", "clone", "-q", REPO, clone)
    dist = tmp / "dist"
    run(sys.executable, "-m", "build", "--no-isolation", "--sdist", "--wheel", "--outdir", dist, cwd=clone)
    venv = tmp / "venv"
    run("/usr/bin/python3", "-m", "venv", "--system-site-packages", venv)
    wheel = next(dist.glob("rbdvm-*.whl"))
    run(venv / "bin" / "python", "-m", "pip", "install", "-q", "--disable-pip-version-check", wheel)
    return clone, dist, venv / "bin" / "python"


def _product_modules(clone: Path) -> set:
    files = run("git", "ls-files", *PRODUCT, cwd=clone).stdout.split()
    return {f"rbdvm/{f}" for f in files if f.endswith(".py")}


def test_the_wheel_and_the_sdist_hold_every_module_of_the_product(built):
    clone, dist, _ = built
    wanted = _product_modules(clone)
    with zipfile.ZipFile(next(dist.glob("rbdvm-*.whl"))) as whl:
        in_wheel = {n for n in whl.namelist() if n.endswith(".py")}
    assert wanted - in_wheel == set(), f"missing from the wheel: {sorted(wanted - in_wheel)}"
    with tarfile.open(next(dist.glob("rbdvm-*.tar.gz"))) as sdist:
        in_sdist = {n.split("/", 1)[1] for n in sdist.getnames() if n.endswith(".py")}
    source = {f[len("rbdvm/"):] for f in wanted}
    assert source - in_sdist == set(), f"missing from the sdist: {sorted(source - in_sdist)}"


def test_every_command_and_agent_runs_from_the_installed_wheel(built):
    clone, _, python = built
    rbdvm = python.parent / "rbdvm"
    where = run(python, "-c", "import rbdvm.cli.main as m; print(m.__file__)").stdout.strip()
    assert str(clone) not in where and "site-packages" in where, where
    assert "rbdvm" in run(rbdvm, "--version").stdout
    # every command and subcommand, from the installed click tree
    listing = run(python, "-c", (
        "import click\n"
        "from rbdvm.cli.main import cli\n"
        "def walk(group, path):\n"
        "    ctx = click.Context(group)\n"
        "    for name in group.list_commands(ctx):\n"
        "        cmd = group.get_command(ctx, name)\n"
        "        print(' '.join(path + [name]))\n"
        "        if isinstance(cmd, click.Group):\n"
        "            walk(cmd, path + [name])\n"
        "walk(cli, [])\n")).stdout.splitlines()
    assert {"create", "trust", "snapshot rollback", "node drain", "disk add"} <= set(listing), listing
    for command in listing:
        out = run(rbdvm, *command.split(), "--help").stdout
        assert "Usage:" in out, command
    agent = run(python, "-c", "import sys; from rbdvm.ocf.agent import main; sys.exit(main(['meta-data']))").stdout
    assert "<resource-agent" in agent and 'name="vm"' in agent
    fence = run(python, "-c", "import sys; from rbdvm.ocf.fence_rbdvm import main; "
                              "sys.argv = ['fence_rbdvm', '-o', 'metadata']; sys.exit(main())").stdout
    assert "<resource-agent" in fence
    check = run(python, "-c", "import sys; from rbdvm.ocf.fencecheck import main; "
                              "sys.argv = ['fence_rbdvm_check', '--help']; sys.exit(main())").stdout
    assert "fence_rbdvm_check" in check


def test_ansible_doc_documents_the_collection_from_a_clean_clone(built):
    clone, _, _ = built
    doc = subprocess.run([str(Path(sys.executable).parent / "ansible-doc"), "rbdvm.cluster.vm"], capture_output=True,
                         text=True, timeout=120, env={"PATH": "/usr/bin:/bin", "HOME": str(clone),
                                                      "ANSIBLE_COLLECTIONS_PATH": str(clone), "ANSIBLE_NOCOLOR": "1"})
    assert doc.returncode == 0, doc.stderr
    for words in ("rbdvm.cluster.vm", "OPTIONS", "system_image", "state", "EXAMPLES", "RETURN VALUES"):
        assert words in doc.stdout, words

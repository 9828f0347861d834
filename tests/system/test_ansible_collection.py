"""The Ansible collection as a controller gets it: the Galaxy artefact `make collection`
builds, installed with ansible-galaxy into a controller that has neither Ceph nor libvirt
(a fresh venv with only ansible-core from PyPI), where its documentation, its routing of
cluster_vm and a playbook's syntax check work; and `ansible-test sanity`, every test, clean.

ansible-test bootstraps pip into each sanity venv with a script it downloads from its own
server, which this machine cannot reach (only PyPI): the test gives it a stand-in that takes
pip from Python's own ensurepip and the rest from PyPI, where ansible-test looks for its cache
(in a HOME of the test's own)."""

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.host
REPO = Path(__file__).resolve().parents[2]
COLLECTION = REPO / "ansible_collections" / "rbdvm" / "cluster"
VENV_BIN = Path(sys.executable).parent

GET_PIP_STAND_IN = '''# stand-in for get-pip.py (rbdvm's tests): pip from ensurepip, then what was asked, from PyPI
import subprocess
import sys

if __name__ == "__main__":
    subprocess.check_call([sys.executable, "-m", "ensurepip", "--default-pip"])
    asked = [a for a in sys.argv[1:] if a not in ("--no-setuptools", "--no-wheel")]
    subprocess.check_call([sys.executable, "-m", "pip", "install", *asked])
'''


def run(*argv, cwd=None, env=None, timeout=900, check=True) -> subprocess.CompletedProcess:
    res = subprocess.run([str(a) for a in argv], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    if check:
        assert res.returncode == 0, f"{' '.join(map(str, argv))} failed ({res.returncode}):\n{res.stdout}\n{res.stderr}"
    return res


def test_ansible_test_sanity_is_clean_every_test(tmp_path):
    # ansible-test writes tests/output into the collection: a copy, at a path it accepts
    copy = tmp_path / "ansible_collections" / "rbdvm" / "cluster"
    shutil.copytree(COLLECTION, copy, ignore=shutil.ignore_patterns("output", "__pycache__"))
    home = tmp_path / "home"
    env = {"HOME": str(home), "PATH": f"{VENV_BIN}:/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"}
    argv = [VENV_BIN / "ansible-test", "sanity", "--python", f"{sys.version_info.major}.{sys.version_info.minor}"]
    res = run(*argv, cwd=copy, env=env, check=False)
    wanted = re.search(r"can be manually downloaded and saved to: (\S+)", res.stdout + res.stderr)
    if wanted:
        Path(wanted[1]).parent.mkdir(parents=True, exist_ok=True)
        Path(wanted[1]).write_text(GET_PIP_STAND_IN)
        res = run(*argv, cwd=copy, env=env, check=False)
    said = res.stdout + res.stderr
    assert res.returncode == 0 and "ERROR" not in said, said[-4000:]
    assert 'Running sanity test "validate-modules"' in said and 'Running sanity test "pep8"' in said


def test_the_galaxy_artefact_installs_on_a_controller_without_ceph_or_libvirt(tmp_path):
    clone = tmp_path / "clone"
    run("git", "clone", "-q", REPO, clone)
    # the test venv as it is (-o: its install stamp is not remade for a clone's newer files)
    run("make", "-C", clone, "collection", f"VENV={VENV_BIN.parent}", "-o", VENV_BIN.parent / ".installed")
    artefact = clone / "dist" / "rbdvm-cluster-0.1.0.tar.gz"
    assert artefact.is_file()
    controller = tmp_path / "controller"
    run("/usr/bin/python3", "-m", "venv", controller)              # no system site-packages
    py = controller / "bin" / "python"
    run(py, "-m", "pip", "install", "-q", "ansible-core")
    for binding in ("rados", "rbd", "libvirt", "rbdvm"):
        assert run(py, "-c", f"import {binding}", check=False).returncode != 0, f"{binding} on the controller"
    collections = tmp_path / "collections"
    env = {"HOME": str(tmp_path), "PATH": f"{controller / 'bin'}:/usr/bin:/bin", "LANG": "C.UTF-8",
           "ANSIBLE_COLLECTIONS_PATH": str(collections)}
    run(controller / "bin" / "ansible-galaxy", "collection", "install", artefact, "-p", collections, env=env)
    doc = json.loads(run(controller / "bin" / "ansible-doc", "--json", "rbdvm.cluster.vm", env=env).stdout)
    assert "stop_timeout" in doc["rbdvm.cluster.vm"]["doc"]["options"]
    book = tmp_path / "play.yml"
    book.write_text(json.dumps([{"hosts": "localhost", "gather_facts": False, "collections": ["rbdvm.cluster"],
                                 "tasks": [{"cluster_vm": {"command": "status", "name": "guest0"}}]}]))
    run(controller / "bin" / "ansible-playbook", "--syntax-check", "-i", "localhost,", book, env=env)

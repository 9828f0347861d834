"""The suite's cache of the Debian package (labkit/debbuild.py), no build: what its cleanup of
other commits' packages leaves."""

import pytest

from labkit import debbuild

pytestmark = pytest.mark.unit


def test_forgetting_other_commits_never_removes_a_build_under_way(tmp_path, monkeypatch):
    """Two tests build the package side by side (the host test and the lab's): one's cleanup
    of other commits removed the other's work directory mid-build (CI: `mv: cannot move`)."""
    monkeypatch.setattr(debbuild, "CACHE", tmp_path)
    monkeypatch.setattr(debbuild, "WORK", tmp_path / ".work")
    (tmp_path / "oldcommit").mkdir()
    (tmp_path / "newcommit").mkdir()
    building = tmp_path / ".work" / "tmpbuild"
    building.mkdir(parents=True)
    debbuild.forget_other_commits("newcommit")
    assert not (tmp_path / "oldcommit").exists(), "another commit's package is never needed again"
    assert (tmp_path / "newcommit").is_dir() and building.is_dir(), "this commit's package, and a build under way"

"""The Debian package builds from a clean clone of the committed tree with Debian's own
tooling, lintian clean (labkit.debbuild; host only). Built here, in the suite's first phase,
beside other tests: the lab test of the package (test_debian_package.py, alone in the second
phase) installs this same file."""

import subprocess

import pytest

from labkit import debbuild

pytestmark = pytest.mark.host


def test_the_package_builds_lintian_clean_from_a_clean_clone():
    deb = debbuild.package()
    fields = subprocess.run(["dpkg-deb", "-f", str(deb), "Package", "Architecture"], capture_output=True,
                            text=True, check=True).stdout
    assert "Package: rbdvm" in fields and "Architecture: all" in fields

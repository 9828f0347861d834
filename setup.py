"""The package list, derived: each top-level folder of the product is a subpackage of the
`rbdvm` namespace, with every folder below it that holds an __init__.py (metadata lives in
pyproject.toml). A hand-written list once missed rbdvm.helpers.hypervisor, which only an
editable install hid."""

from setuptools import find_packages, setup

# top-level folder -> the package it is installed as
ROOTS = {"ocf": "rbdvm.ocf", "helpers": "rbdvm.helpers", "cli": "rbdvm.cli"}

setup(
    package_dir={name: folder for folder, name in ROOTS.items()},
    packages=[p for folder, name in ROOTS.items()
              for p in [name] + [f"{name}.{sub}" for sub in find_packages(folder)]],
)

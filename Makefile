# rbdvm - see README.md. Every target installs what it needs first (Debian 12, root).
VENV  ?= .venv
PY    := $(VENV)/bin/python
LAB   := tests/lab/lab
STAMP := $(VENV)/.installed

.PHONY: deps lab-up lab-down lab-status demo test unit lint bench deb collection

deps: $(STAMP)

$(STAMP): pyproject.toml tests/lab/install-deps tests/lab/packages.txt
	tests/lab/install-deps
	touch $@

lab-up: deps
	$(LAB) up

lab-down:
	$(LAB) down

lab-status:
	$(LAB) status

# brings the lab up (and leaves it up: `make lab-down` when done)
demo: lab-up
	$(PY) tests/lab/demo.py

# ruff on the product, the tests and the benchmarks, mypy on the product, then the whole
# suite (tests/lab/labkit/suite.py: the side_by_side lab tests in three workers, then the
# other lab tests one at a time beside the unit and host tests); a lab it had to start is
# taken down at the end
test: lint
	PYTHONPATH=tests/lab $(PY) -m labkit.suite

lint: deps
	$(PY) -m ruff check helpers ocf cli ansible_collections debian/generate tests bench
	tests/typecheck

unit: deps
	$(PY) -m pytest -m unit

bench: lab-up
	$(PY) bench/lab_bringup.py
	$(PY) bench/storage.py
	$(PY) bench/agent.py
	$(PY) bench/listing.py
	$(PY) bench/failover.py
	$(PY) bench/failover_ceph.py
	$(PY) bench/scheduler.py
	$(PY) bench/drain.py

# dist/rbdvm_<version>_all.deb, built with Debian's tooling and checked by lintian
deb: deps
	debian/build-deb dist

# dist/rbdvm-cluster-<version>.tar.gz: the Ansible collection as a Galaxy artefact, for a
# controller (it needs neither Ceph nor libvirt: `ansible-galaxy collection install` it)
collection: deps
	$(VENV)/bin/ansible-galaxy collection build ansible_collections/rbdvm/cluster --output-path dist --force

"""The error model: stable codes listed once, every problem of an input reported, and the
CLI's --json error output (pure: no Ceph is reached, the Ceph configuration given does not
exist)."""

import ast
import json
import re
from pathlib import Path

import pytest

from rbdvm.cli import main as cli_main
from rbdvm.cli import options
from rbdvm.helpers.core import devpolicy, vmschema
from rbdvm.helpers.core.errors import CODES, Conflict, UsageError

pytestmark = [pytest.mark.unit, pytest.mark.requires("python:rados", "python:rbd", "python:libvirt")]
REPO = Path(__file__).resolve().parents[2]


def codes_used() -> dict:
    """{code: first place} of every code= given to an error anywhere in the product."""
    found = {}
    for folder in ("helpers", "ocf", "cli", "ansible_collections"):
        for path in (REPO / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.keyword) and node.arg == "code" and isinstance(node.value, ast.Constant) \
                        and isinstance(node.value.value, str):
                    found.setdefault(node.value.value, f"{path.relative_to(REPO)}:{node.value.lineno}")
    return found


def test_every_code_used_is_listed_once():
    unknown = {c: where for c, where in codes_used().items() if c not in CODES}
    assert not unknown, f"codes not in errors.CODES: {unknown}"


def test_an_unlisted_code_is_refused_where_it_is_raised():
    with pytest.raises(ValueError, match="not in errors.CODES"):
        Conflict("x", code="SOMETHING_NEW")


def test_docs_list_every_code():
    doc = (REPO / "docs/errors.md").read_text()
    assert sorted(re.findall(r"^\| `([A-Z_]+)` \|", doc, re.M)) == sorted(CODES)


def test_a_reserved_metadata_key_is_called_reserved():
    with pytest.raises(UsageError, match="metadata key 'xml' is reserved") as exc:
        vmschema.check_user_key("xml")
    assert (exc.value.code, exc.value.details) == ("RESERVED_KEY", {"key": "xml"})


def test_every_bad_metadata_key_is_reported_not_the_first():
    with pytest.raises(UsageError) as exc:
        vmschema.check_user_metadata({"xml": "1", "ok": "2", "a b": "3", "vm_name": "4"})
    assert [p.details.get("key") or p.details.get("name") for p in exc.value.problems] == ["xml", "a b", "vm_name"]
    assert "3 metadata keys are refused" in exc.value.message


def test_every_bad_setting_is_reported_not_the_first():
    with pytest.raises(UsageError) as exc:
        vmschema.encode({"stop_timeout": "soon", "migrate_to_timeout": -3, "live_migration": True})
    assert [p.details["setting"] for p in exc.value.problems] == ["_stop_timeout", "_migrate_to_timeout"]
    assert exc.value.code == "INVALID_SETTING"


def test_every_bad_entry_of_a_map_setting_is_reported():
    with pytest.raises(UsageError) as exc:
        vmschema.check_map("pacemaker_params", {"pool": "x", "1bad": "y", "force_stop": "true"})
    assert len(exc.value.problems) == 2


def test_every_error_of_a_policy_file_is_reported():
    with pytest.raises(UsageError) as exc:
        devpolicy.parse(b'nonsense = ["x"]\nhost_file_dirs = ["relative"]\n', "policy.toml")
    assert len(exc.value.problems) == 2 and "2 errors" in exc.value.message


def run_cli(monkeypatch, capsys, *argv):
    monkeypatch.setattr(options, "_asked", {"json": False})
    with pytest.raises(SystemExit) as exit_:
        cli_main.main(list(argv))
    out = capsys.readouterr()
    return exit_.value.code, out.out, out.err


def test_json_errors_are_json_on_stdout_with_the_exit_code(monkeypatch, capsys):
    code, out, err = run_cli(monkeypatch, capsys, "info", "--json", "--conf", "/nonexistent/ceph.conf", "vm1")
    error = json.loads(out)["error"]
    assert (code, err, error["code"], error["exit_code"]) == (5, "", "CEPH_UNAVAILABLE", 5)
    assert error["message"].startswith("cannot read the Ceph configuration /nonexistent/ceph.conf")


def test_without_json_an_error_is_one_line_on_stderr(monkeypatch, capsys):
    code, out, err = run_cli(monkeypatch, capsys, "info", "--conf", "/nonexistent/ceph.conf", "vm1")
    assert (code, out) == (5, "") and err.startswith("Error: cannot read the Ceph configuration")


def test_a_usage_error_under_json_is_json_too(monkeypatch, capsys):
    code, out, err = run_cli(monkeypatch, capsys, "info", "--json", "--no-such-option", "vm1")
    assert (code, json.loads(out)["error"]["code"]) == (2, "INVALID_INPUT")

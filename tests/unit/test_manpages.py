"""The agents' man pages, made from their declarations (ocf/manpages.py): each says what the
agent's meta-data or parser says, and man reads each without a warning. Pure, except that
the pages are given to the host's man (man-db)."""

import subprocess

import pytest

from rbdvm.ocf import fence_rbdvm, fencecheck, manpages, params

pytestmark = pytest.mark.unit
PAGES = manpages.pages("9.9.9")


def test_each_agent_has_its_page_in_its_section():
    assert set(PAGES) == {"ocf_rbdvm_VirtualDomain.7", "fence_rbdvm.8", "fence_rbdvm_check.8"}


@pytest.mark.parametrize("name", sorted(PAGES))
def test_a_page_names_its_program_whole_and_its_version(name):
    lines = PAGES[name].splitlines()
    assert lines[0].startswith(".TH ") and '"rbdvm 9.9.9"' in lines[0]
    named = lines[lines.index(".SH NAME") + 1]
    assert named.startswith(name.rsplit(".", 1)[0] + " \\- ")
    assert not named.endswith("..."), named


def test_every_declared_parameter_option_and_action_is_on_the_pages():
    agent = PAGES["ocf_rbdvm_VirtualDomain.7"]
    for p in params.PARAMS:
        assert f"\\fB{p.name.replace('-', chr(92) + '-')}\\fR" in agent, p.name
    for a in params.ACTIONS:
        assert f"\\fB{a.name.replace('-', chr(92) + '-')}\\fR" in agent, a.name
    fence = PAGES["fence_rbdvm.8"]
    for o in fence_rbdvm.OPTIONS:
        assert all(f.replace("-", "\\-") in fence for f in o.flags), o.name
    for what in fence_rbdvm.ACTIONS.values():
        assert manpages._text(what) in fence
    check = PAGES["fence_rbdvm_check.8"]
    for action in fencecheck.parser()._actions:
        if action.dest == "help":
            continue
        assert all(f.replace("-", "\\-") in check for f in action.option_strings)


def test_roff_requests_in_the_text_are_printed_not_obeyed():
    assert manpages._text(".SH evil\n'br\nback\\slash") == "\\&.SH evil\n\\&'br\nback\\eslash"


@pytest.mark.requires("man")
@pytest.mark.parametrize("name", sorted(PAGES))
def test_man_reads_each_page_without_a_warning(name, tmp_path):
    path = tmp_path / name
    path.write_text(PAGES[name])
    res = subprocess.run(["man", "--warnings", "-l", "-E", "UTF-8", str(path)], capture_output=True, text=True,
                         timeout=60, env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "MANWIDTH": "80"})
    assert res.returncode == 0 and res.stderr == "", res.stderr
    assert "NAME" in res.stdout

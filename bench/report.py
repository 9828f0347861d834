"""Writes one benchmark's section into docs/benchmarks.md, replacing its previous run."""

import re
from pathlib import Path

DOC = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"


def write_section(name: str, body: str) -> None:
    begin, end = f"<!-- bench:{name} begin -->", f"<!-- bench:{name} end -->"
    section = f"{begin}\n{body}\n{end}"
    print(section)
    text = DOC.read_text() if DOC.exists() else "# Benchmarks\n"
    if begin in text:
        text = re.sub(re.escape(begin) + ".*?" + re.escape(end), lambda _: section, text, flags=re.S)
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    DOC.write_text(text)

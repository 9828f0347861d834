"""What time it is, as rbdvm records it: UTC, to the second (creation times, snapshot times,
clone records). The one owner, so records compare and tests can read them back."""

from datetime import datetime, timezone


def now() -> datetime:
    return datetime.now(timezone.utc).replace(microsecond=0)


def now_iso() -> str:
    return now().isoformat()

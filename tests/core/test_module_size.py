"""No module of the product is over about 500 lines.

The rule covers the shipped code, core/, app/ and resources/; tests/ and bench/
are left out (a test file grows with its cases and is read one test at a time).
A module near the limit is split by what it owns, not cut in two.
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LIMIT = 500
CHECKED = ("core", "app", "resources")


def line_counts() -> dict[str, int]:
    return {
        p.relative_to(ROOT).as_posix(): len(p.read_text(encoding="utf-8").splitlines())
        for folder in CHECKED
        for p in (ROOT / folder).rglob("*.py")
    }


def test_no_module_is_over_the_limit():
    counts = line_counts()
    assert len(counts) > 100, "the count should cover every module"
    over = {path: n for path, n in sorted(counts.items()) if n > LIMIT}
    assert over == {}, f"modules over {LIMIT} lines: split them by what they own"

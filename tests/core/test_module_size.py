"""The application's modules stay small enough to read (issue 24: no module over ~500 lines)."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MAX_LINES = 500


def test_no_app_module_over_500_lines():
    long = {
        str(p.relative_to(ROOT)): n
        for p in sorted((ROOT / "app").rglob("*.py"))
        if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert not long, f"app modules over {MAX_LINES} lines (split them by what they own): {long}"

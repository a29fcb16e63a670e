"""The SQL migrations of the session store, shipped as files in the package.

A released file is never edited: a schema change is a new file with a later version, so a
project that copied the old ones gets the change from `supalite sessions init`.
"""

from __future__ import annotations

from pathlib import Path

FOLDER = Path(__file__).resolve().parent
INSTALL = "20260330195700_install_mcp_sessions.sql"


def files() -> list[Path]:
    return sorted(FOLDER.glob("*.sql"))


def install_sql() -> str:
    """The tables, indexes and triggers alone: what a plain PostgreSQL can run."""
    return (FOLDER / INSTALL).read_text(encoding="utf-8")

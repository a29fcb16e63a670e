"""Type generation, as `supabase gen types`: TypeScript (the CLI's `Database` type and helpers)
and Python (pydantic models), from the catalog of a running database.

`introspect` reads the catalog through any `Fetch` (asyncpg, or the MCP server's admin SQL
path); `typescript` and `python` render what it read.
"""

from __future__ import annotations

from collections.abc import Sequence

from supalite.typegen.fetch import Fetch
from supalite.typegen.introspect import introspect
from supalite.typegen.model import TypegenError
from supalite.typegen.python import generate_python
from supalite.typegen.typescript import generate_typescript

LANGUAGES = ("typescript", "python")

__all__ = ["LANGUAGES", "Fetch", "TypegenError", "generate"]


async def generate(lang: str, fetch: Fetch, schemas: Sequence[str], *, strict: bool = True) -> str:
    """The types of `schemas` in `lang`; with `strict`, naming a missing schema is an error."""
    if lang not in LANGUAGES:
        raise TypegenError(f"unknown language {lang!r}: use one of {', '.join(LANGUAGES)}")
    catalog = await introspect(fetch, schemas, strict=strict)
    return generate_typescript(catalog) if lang == "typescript" else generate_python(catalog)

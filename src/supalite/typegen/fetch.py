"""How type generation reads the catalog: any read-only query runner, page by page."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

# Runs one read-only statement with bind parameters and returns its rows as dicts.
Fetch = Callable[[str, list[Any]], Awaitable[list[dict[str, Any]]]]

PAGE = 500  # rows per page; a page of relations carries their columns too


async def paged(fetch: Fetch, sql: str, params: list[Any]) -> list[dict[str, Any]]:
    """All rows of a query ending in `oid > $n order by oid limit $n+1`, page by page.  An empty
    page ends it: a page cut short by a byte cap is not the last one."""
    out: list[dict[str, Any]] = []
    after = 0
    while True:
        rows = await fetch(sql, [*params, after, PAGE])
        if not rows:
            return out
        out.extend(rows)
        after = int(rows[-1]["oid"])


def json_value(value: Any) -> Any:
    # asyncpg hands json over as text; the admin SQL path has already decoded it.
    return json.loads(value) if isinstance(value, str) else value

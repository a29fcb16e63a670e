"""The expected answers in cases.py, checked against Postgres itself.

Each case's oracle is the SQL PostgREST would run for the request, executed as PostgREST
executes it: in a transaction, with the caller's role and `request.jwt.claims` set, so RLS
decides.  If these pass, the client suites fail only where the server's answer differs from
what PostgREST would compute, never because the expectations are wrong.  Stories run step by
step in one transaction, rolled back at the end.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import asyncpg
import pytest

from tests.compat.cases import READS, STORIES, Case, matches
from tests.compat.conftest import Compat, as_role


def _pg_error(e: asyncpg.PostgresError) -> dict[str, Any]:
    return {
        "code": e.sqlstate,
        "message": e.args[0] if e.args else str(e),
        "details": getattr(e, "detail", None),
        "hint": getattr(e, "hint", None),
    }


async def _evaluate(conn: asyncpg.Connection, case: Case) -> list[str]:
    """Run the case's oracle as its caller (inside a savepoint); return the mismatches."""
    oracle, expect = case.oracle, case.expect
    assert oracle is not None
    problems: list[str] = []
    try:
        async with conn.transaction():  # a savepoint inside a story's transaction
            await as_role(conn, case.role)
            if oracle.kind in ("raises", "exec"):
                await conn.execute(oracle.sql)
                if oracle.kind == "raises":
                    problems.append("the statement succeeded, expected an error")
                return problems
            if oracle.kind == "singular":
                n = await conn.fetchval(oracle.count_sql)
                assert expect.error is not None
                if expect.error.get("details") != f"The result contains {n} rows":
                    problems.append(f"{n} rows, but details say {expect.error.get('details')!r}")
                return problems
            data: Any = None
            if oracle.kind != "count":
                raw = await conn.fetchval(oracle.query())
                data = raw if oracle.kind == "text" or raw is None else json.loads(raw)
                if not matches(expect.data, data):
                    problems.append(f"data = {data!r}, expected {expect.data!r}")
            if oracle.count_sql is not None:
                count = await conn.fetchval(oracle.count_sql)
                if count != expect.count:
                    problems.append(f"count = {count!r}, expected {expect.count!r}")
            elif (
                oracle.kind == "dml" and isinstance(expect.count, int) and len(data) != expect.count
            ):
                problems.append(f"{len(data)} rows affected, expected count {expect.count}")
    except asyncpg.PostgresError as e:
        got = _pg_error(e)
        if oracle.kind != "raises" or expect.error is None:
            return [*problems, f"unexpected error {got!r}"]
        for key, want in expect.error.items():
            if not matches(want, got[key]):
                problems.append(f"error.{key} = {got[key]!r}, expected {want!r}")
    return problems


async def _read(db_url: str, case: Case) -> list[str]:
    conn = await asyncpg.connect(db_url)
    try:
        return await _evaluate(conn, case)
    finally:
        await conn.close()


async def _story(db_url: str, story: str) -> list[str]:
    conn = await asyncpg.connect(db_url)
    problems = []
    try:
        tx = conn.transaction()
        await tx.start()
        try:
            for step, case in STORIES[story]:
                if case.oracle is not None:
                    problems += [f"{step}: {p}" for p in await _evaluate(conn, case)]
        finally:
            await tx.rollback()
    finally:
        await conn.close()
    return problems


@pytest.mark.parametrize("name", [n for n, c in READS.items() if c.oracle is not None])
def test_read_answer_is_what_postgres_computes(compat: Compat, name: str) -> None:
    problems = asyncio.run(_read(compat.db_url, READS[name]))
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("story", list(STORIES))
def test_story_answers_are_what_postgres_computes(compat: Compat, story: str) -> None:
    problems = asyncio.run(_story(compat.db_url, story))
    assert not problems, "\n".join(problems)


def test_cases_without_oracle_are_postgrest_own_answers() -> None:
    """Only answers PostgREST makes itself (its PGRST errors, client-side checks) go unchecked."""
    unchecked = [
        (name, case)
        for name, case in [*READS.items(), *((s, c) for st in STORIES.values() for s, c in st)]
        if case.oracle is None
    ]
    for name, case in unchecked:
        code = (case.expect.error or {}).get("code", "")
        assert str(code).startswith("PGRST") or case.per_client, name

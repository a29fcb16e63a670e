"""A fresh, bootstrapped database per test module on the session's embedded cluster."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import asyncpg
import pytest

from supalite.db.bootstrap import bootstrap
from supalite.db.embedded import EmbeddedPostgres
from tests.conftest import TEST_SECRET


@dataclass
class CronDb:
    pg: EmbeddedPostgres
    name: str
    roles: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        return self.url_as("postgres", "postgres")

    def url_as(self, user: str, password: str) -> str:
        return self.pg.local_url(user, password).replace("/postgres?", f"/{self.name}?")

    async def login_role(self, admin: asyncpg.Connection, prefix: str) -> str:
        """A new login role (dropped with the database) that may use cron, as docs/cron.md
        says to grant it."""
        name = f"{prefix}_{uuid.uuid4().hex[:6]}"
        self.roles.append(name)
        await admin.execute(f"create role \"{name}\" login password 'pw'")
        await admin.execute(
            f'grant usage on schema cron to "{name}";'
            f'grant select, insert, update, delete on cron.job to "{name}";'
            f'grant usage on sequence cron.jobid_seq to "{name}";'
            f'grant create on schema public to "{name}"'
        )
        return name


async def new_cron_db(pg: EmbeddedPostgres) -> CronDb:
    db = CronDb(pg, f"cron_{uuid.uuid4().hex[:10]}")
    admin = await asyncpg.connect(pg.local_url())
    try:
        await admin.execute(f'create database "{db.name}"')
    finally:
        await admin.close()
    await bootstrap(db.url, TEST_SECRET)
    return db


async def drop_cron_db(db: CronDb) -> None:
    admin = await asyncpg.connect(db.pg.local_url())
    try:
        await admin.execute(f'drop database if exists "{db.name}" with (force)')
        for role in db.roles:
            await admin.execute(f'drop role if exists "{role}"')
    finally:
        await admin.close()


@pytest.fixture(scope="module")
async def cron_db(embedded_pg: EmbeddedPostgres) -> AsyncIterator[CronDb]:
    """A new database with supalite's bootstrap (and so the cron emulation)."""
    db = await new_cron_db(embedded_pg)
    try:
        yield db
    finally:
        await drop_cron_db(db)


@pytest.fixture
async def db(cron_db: CronDb) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(cron_db.url)
    try:
        yield conn
    finally:
        await conn.close()

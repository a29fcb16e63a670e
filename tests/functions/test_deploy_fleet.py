"""Two supalite processes on one database serve the same deployed version: a deploy through
one reaches the other by NOTIFY (its snapshot would otherwise be kept for 30 s)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.functions.conftest import Served, kill_leftover_workers, serve
from tests.functions.deployed import admin, deploy, invoke, sql, versioned
from tests.helpers import LiveServer

_DEADLINE = 10.0  # well under the 30 s safety refresh: only the notification can beat it


@pytest.fixture(scope="module")
def other(served: Served, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    base = tmp_path_factory.mktemp("other")
    server = serve(
        base,
        env={
            "DATABASE_URL": served.server.info["DB URL"],
            "SUPALITE_JWT_SECRET": served.server.info["JWT secret"],
        },
    )
    try:
        yield server
    finally:
        server.stop()
        kill_leftover_workers(base)


def _until(check: Callable[[], bool]) -> bool:
    deadline = time.monotonic() + _DEADLINE
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return False


def test_a_deploy_reaches_every_process(served: Served, other: LiveServer) -> None:
    anon = served.server.anon_key  # one JWT secret: valid on both
    # Each process listens for deploys on a connection of its own.
    listeners = sql(
        served,
        "select count(*) from pg_stat_activity where application_name = 'supalite functions'",
    )
    assert listeners == 2
    assert invoke(other.url, anon, "fleet").status_code == 404  # its snapshot is loaded

    deploy(served, "fleet", versioned("one"), verify_jwt=False)
    assert _until(lambda: invoke(other.url, anon, "fleet").status_code == 200)
    one = invoke(other.url, anon, "fleet").json()
    assert one["version"] == "one"
    # Each process runs its own copy of the files, in its own data folder.
    assert Path(one["cwd"]).is_relative_to(other.project / "supabase" / ".supalite")

    deploy(served, "fleet", versioned("two"), verify_jwt=False)
    assert _until(lambda: invoke(other.url, anon, "fleet").json()["version"] == "two")
    assert invoke(served.url, anon, "fleet").json()["version"] == "two"

    with admin(served, other.service_key, other.url) as c:  # either process takes admin calls
        assert c.delete("/functions/fleet").status_code == 200
    assert _until(lambda: invoke(served.url, anon, "fleet").status_code == 404)

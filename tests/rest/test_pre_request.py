"""`db-pre-request` (PGRST_DB_PRE_REQUEST): called in the request's transaction, after the role
and the request settings are in place and before the statement; what it raises is the answer."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.helpers import LiveServer
from tests.rest.conftest import project_with

SCHEMA = """
create table public.items (id int primary key);
insert into public.items values (1);
grant select on public.items to anon;
create function public.check_request() returns void language plpgsql as $$
begin
  if current_setting('request.headers')::json ->> 'x-block' is not null then
    raise sqlstate 'PT403' using message = 'blocked by pre-request';
  end if;
  perform set_config('response.headers',
    json_build_array(json_build_object('X-Pre-Role', current_user))::text, true);
end $$;
grant execute on function public.check_request() to anon;
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, httpx.Client]]:
    project = project_with(tmp_path_factory.mktemp("prerequest"), SCHEMA)
    env = {"PGRST_DB_PRE_REQUEST": "public.check_request"}
    with LiveServer(project, env=env) as live, live.client() as client:
        yield live, client


def test_pre_request_runs_as_the_caller(server: tuple[LiveServer, httpx.Client]) -> None:
    live, client = server
    r = client.get("/rest/v1/items", headers={"apikey": live.anon_key})
    assert r.status_code == 200, r.text
    assert r.json() == [{"id": 1}]
    assert r.headers["X-Pre-Role"] == "anon"


def test_pre_request_can_refuse(server: tuple[LiveServer, httpx.Client]) -> None:
    live, client = server
    r = client.get("/rest/v1/items", headers={"apikey": live.anon_key, "x-block": "1"})
    assert r.status_code == 403
    assert r.json()["message"] == "blocked by pre-request"
    # The refused request left nothing behind on its pooled connection.
    assert client.get("/rest/v1/items", headers={"apikey": live.anon_key}).status_code == 200

"""The Data API scenario through supabase-py, held to the answers in cases.py.

Each caller is a real `supabase.create_client` on the live server: anon and service_role with
their keys, alice with her access token in `ClientOptions(headers=...)`, bob with his set by
`client.postgrest.auth(token)`.  The client's own httpx session records the raw responses, so the
status and Content-Range are checked too (supabase-py does not expose them).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from postgrest.exceptions import APIError
from supabase import Client, ClientOptions, create_client
from supabase.lib.client_options import DEFAULT_HEADERS

from tests.compat.cases import (
    ALICE,
    BOB,
    READS,
    ROLES,
    STORIES,
    TASK_5001,
    check,
    describe,
)
from tests.compat.conftest import Compat

Call = Callable[[Client], Any]


class PyCaller:
    """One supabase-py client for one caller, and the last raw HTTP response it got."""

    def __init__(self, compat: Compat, role: str) -> None:
        self.responses: list[httpx.Response] = []
        self.http = httpx.Client(timeout=30, event_hooks={"response": [self._record]})
        token = compat.token(role)
        headers = dict(DEFAULT_HEADERS)
        if token and role == "alice":
            headers["Authorization"] = f"Bearer {token}"
        options = ClientOptions(
            headers=headers,
            httpx_client=self.http,
            postgrest_client_retry=False,
            auto_refresh_token=False,
            persist_session=False,
        )
        self.client = create_client(compat.url, compat.apikey(role), options=options)
        if token and role == "bob":
            self.client.postgrest.auth(token)

    def _record(self, response: httpx.Response) -> None:
        response.read()
        self.responses.append(response)

    def call(self, fn: Call) -> dict[str, Any]:
        """Run one client call; return what it handed back, in the shape cases.check() reads."""
        self.responses.clear()
        out: dict[str, Any] = {"data": None, "count": None, "error": None}
        try:
            result = fn(self.client)
        except APIError as e:
            out["error"] = e.json()
        else:
            if result is not None:  # maybe_single() with no row returns None
                out["data"], out["count"] = result.data, result.count
        last = self.responses[-1] if self.responses else None
        out["status"] = last.status_code if last is not None else None
        out["content_range"] = last.headers.get("content-range") if last is not None else None
        if last is not None and last.content == b"" and out["error"] is None:
            out["data"] = None  # supabase-py turns an empty body into []; the body was empty
        return out

    def close(self) -> None:
        self.http.close()


@pytest.fixture(scope="module")
def callers(compat: Compat) -> Iterator[dict[str, PyCaller]]:
    made = {role: PyCaller(compat, role) for role in ROLES}
    yield made
    for caller in made.values():
        caller.close()


# ------------------------------------------------------------------ the calls, case by case

READ_CALLS: dict[str, Call] = {}
STORY_CALLS: dict[str, dict[str, Call]] = {story: {} for story in STORIES}


def read(name: str) -> Callable[[Call], Call]:
    def register(fn: Call) -> Call:
        READ_CALLS[name] = fn
        return fn

    return register


def step(story: str, name: str) -> Callable[[Call], Call]:
    def register(fn: Call) -> Call:
        STORY_CALLS[story][name] = fn
        return fn

    return register


def _tasks_ids(c: Client) -> Any:
    return c.table("tasks").select("id")


def _projects_ids(c: Client) -> Any:
    return c.table("projects").select("id")


for _role in ROLES:
    READ_CALLS[f"projects_as_{_role}"] = lambda c: (
        c.table("projects").select("id,name").order("id").execute()
    )
    READ_CALLS[f"task_ids_as_{_role}"] = lambda c: (
        c.table("tasks").select("id", count="exact").order("id").execute()
    )


# -- embedding


@read("embed_to_one")
def _(c: Client) -> Any:
    return (
        c.table("tasks")
        .select("id,title,project:projects(name)")
        .in_("id", [1, 5, 10])
        .order("id")
        .execute()
    )


@read("embed_to_one_as_bob")
def _(c: Client) -> Any:
    return (
        c.table("tasks").select("id,project:projects(name)").in_("id", [5, 9]).order("id").execute()
    )


@read("embed_to_many")
def _(c: Client) -> Any:
    return (
        c.table("projects")
        .select("name,tasks(title)")
        .order("name")
        .order("title", foreign_table="tasks")
        .execute()
    )


@read("embed_many_to_many")
def _(c: Client) -> Any:
    return (
        c.table("tasks")
        .select("title,labels(name)")
        .eq("project_id", 1)
        .order("id")
        .order("name", foreign_table="labels")
        .execute()
    )


@read("embed_many_to_many_reverse")
def _(c: Client) -> Any:
    return (
        c.table("labels")
        .select("name,tasks(id)")
        .order("name")
        .order("id", foreign_table="tasks")
        .execute()
    )


@read("embed_inner_rls")
def _(c: Client) -> Any:
    return c.table("tasks").select("id,project:projects!inner(name)").order("id").execute()


@read("embed_inner_filtered")
def _(c: Client) -> Any:
    return (
        c.table("tasks")
        .select("title,labels!inner(name)")
        .eq("labels.name", "urgent")
        .order("id")
        .execute()
    )


@read("embed_hint_column")
def _(c: Client) -> Any:
    return (
        c.table("tasks")
        .select("id,assignee:profiles!assignee_id(username),creator:profiles!created_by(username)")
        .in_("id", [2, 4, 8])
        .order("id")
        .execute()
    )


@read("embed_hint_constraint")
def _(c: Client) -> Any:
    return (
        c.table("tasks")
        .select("id,profiles!tasks_assignee_id_fkey(username)")
        .in_("id", [3, 4])
        .order("id")
        .execute()
    )


@read("embed_ambiguous")
def _(c: Client) -> Any:
    return c.table("tasks").select("title,profiles(username)").execute()


@read("embed_nested")
def _(c: Client) -> Any:
    return (
        c.table("projects")
        .select(
            "name,owner:profiles(username),"
            "tasks(id,assignee:profiles!assignee_id(username),labels(name))"
        )
        .eq("name", "Apollo")
        .order("id", foreign_table="tasks")
        .order("name", foreign_table="tasks.labels")
        .execute()
    )


@read("embed_self_reference")
def _(c: Client) -> Any:
    return (
        c.table("tasks")
        .select("id,parent:parent_id(title),subtasks:tasks!parent_id(id)")
        .in_("id", [1, 2, 7])
        .order("id")
        .order("id", foreign_table="subtasks")
        .execute()
    )


@read("select_alias_cast_json_path")
def _(c: Client) -> Any:
    return (
        c.table("tasks")
        .select(
            "id, name:title, prio:priority::text, estimate:meta->>estimate,"
            " est:meta->estimate::int, team:meta->owner->>team, meta->owner"
        )
        .in_("id", [1, 2])
        .order("id")
        .execute()
    )


# -- filters (service sees every task; the answers are the matching ids)


def _filtered(build: Callable[[Any], Any]) -> Call:
    return lambda c: build(_tasks_ids(c)).order("id").execute()


def _filtered_projects(build: Callable[[Any], Any]) -> Call:
    return lambda c: build(_projects_ids(c)).order("id").execute()


READ_CALLS.update(
    {
        "filter_eq": _filtered(lambda q: q.eq("status", "done")),
        "filter_neq": _filtered(lambda q: q.neq("status", "todo")),
        "filter_gt": _filtered(lambda q: q.gt("priority", 3)),
        "filter_gte": _filtered(lambda q: q.gte("priority", 3)),
        "filter_lt": _filtered(lambda q: q.lt("priority", 2)),
        "filter_lte_date": _filtered(lambda q: q.lte("due", "2024-02-01")),
        "filter_like": _filtered(lambda q: q.like("title", "%landing%")),
        "filter_like_star": _filtered(lambda q: q.like("title", "*page")),
        "filter_ilike": _filtered(lambda q: q.ilike("title", "%LANDING%")),
        "filter_like_any_of": _filtered(lambda q: q.like_any_of("title", "*budget*,*parts*")),
        "filter_ilike_all_of": _filtered(lambda q: q.ilike_all_of("title", "*LANDING*,*PAGE*")),
        "filter_isdistinct": _filtered(lambda q: q.filter("assignee_id", "isdistinct", BOB)),
        "filter_is_null": _filtered(lambda q: q.is_("due", None)),
        "filter_not_is_null": _filtered(lambda q: q.not_.is_("assignee_id", None)),
        "filter_is_true": _filtered_projects(lambda q: q.is_("is_public", True)),
        "filter_in": _filtered(lambda q: q.in_("status", ["doing", "done"])),
        "filter_in_quoted": _filtered(
            lambda q: q.in_("title", ["Order parts", "Draft budget (Q1)"])
        ),
        "filter_contains_array": _filtered(lambda q: q.contains("tags", ["web"])),
        "filter_contains_jsonb": _filtered(
            lambda q: q.contains("meta", {"owner": {"team": "nav"}})
        ),
        "filter_contained_by": _filtered(
            lambda q: q.contained_by("tags", ["web", "design", "copy"])
        ),
        "filter_overlaps": _filtered(lambda q: q.overlaps("tags", ["hardware", "finance"])),
        "filter_fts": _filtered(
            lambda q: q.text_search("fts", "landing & page", {"config": "english"})
        ),
        "filter_plfts": _filtered(
            lambda q: q.text_search("fts", "landing copy", {"type": "plain", "config": "english"})
        ),
        "filter_wfts": _filtered(
            lambda q: q.text_search(
                "fts", "landing -review", {"type": "web_search", "config": "english"}
            )
        ),
        "filter_fts_text_column": _filtered(
            lambda q: q.text_search("title", "orbit", {"config": "english"})
        ),
        "filter_match": _filtered(lambda q: q.match({"status": "todo", "priority": 3})),
        "filter_not_in": _filtered(lambda q: q.not_.in_("status", ["todo", "doing"])),
        "filter_or": _filtered(lambda q: q.or_("priority.gte.5,status.eq.done")),
        "filter_or_nested_and": _filtered(
            lambda q: q.or_("status.eq.done,and(priority.gte.4,due.lt.2024-04-01)")
        ),
        "filter_generic_cs": _filtered(lambda q: q.filter("tags", "cs", "{science}")),
        "filter_generic_imatch": _filtered(lambda q: q.filter("title", "imatch", "^(draft|hire)")),
        "filter_json_path_text": _filtered(lambda q: q.eq("meta->>estimate", "2")),
        "filter_json_path_number": _filtered(lambda q: q.gt("meta->estimate", 4)),
        "filter_range_gt": _filtered_projects(
            lambda q: q.range_gt("period", ("2024-04-01", "2024-05-01"))
        ),
        "filter_range_gte": _filtered_projects(
            lambda q: q.range_gte("period", ("2024-02-01", "2024-03-01"))
        ),
        "filter_range_lt": _filtered_projects(
            lambda q: q.range_lt("period", ("2024-05-01", "2024-06-01"))
        ),
        "filter_range_lte": _filtered_projects(
            lambda q: q.range_lte("period", ("2024-01-01", "2024-10-01"))
        ),
        "filter_range_adjacent": _filtered_projects(
            lambda q: q.range_adjacent("period", ("2024-08-31", "2024-10-01"))
        ),
        "filter_overlaps_range": _filtered_projects(
            lambda q: q.overlaps("period", "[2024-03-15,2024-03-20]")
        ),
    }
)


@read("filter_or_referenced")
def _(c: Client) -> Any:
    return (
        c.table("projects")
        .select("name,tasks(title)")
        .or_("status.eq.done,priority.gte.5", reference_table="tasks")
        .order("name")
        .order("id", foreign_table="tasks")
        .execute()
    )


# -- order, limit, range


@read("order_multi")
def _(c: Client) -> Any:
    return _tasks_ids(c).order("priority", desc=True).order("id").execute()


@read("order_nullsfirst")
def _(c: Client) -> Any:
    return _tasks_ids(c).order("due", nullsfirst=True).order("id").execute()


@read("order_desc_nullslast")
def _(c: Client) -> Any:
    return _tasks_ids(c).order("due", desc=True, nullsfirst=False).order("id").execute()


@read("order_foreign_table")
def _(c: Client) -> Any:
    return (
        c.table("projects")
        .select("name,tasks(id)")
        .order("name")
        .order("priority", desc=True, foreign_table="tasks")
        .order("id", foreign_table="tasks")
        .execute()
    )


@read("limit")
def _(c: Client) -> Any:
    return _tasks_ids(c).order("id").limit(3).execute()


@read("range_with_count")
def _(c: Client) -> Any:
    return c.table("tasks").select("id", count="exact").order("id").range(2, 4).execute()


@read("limit_foreign_table")
def _(c: Client) -> Any:
    return (
        c.table("projects")
        .select("name,tasks(id)")
        .order("name")
        .order("id", desc=True, foreign_table="tasks")
        .limit(1, foreign_table="tasks")
        .execute()
    )


# -- singular responses, formats, counts


@read("single_row")
def _(c: Client) -> Any:
    return c.table("projects").select("id,name").eq("id", 2).single().execute()


@read("single_many_rows")
def _(c: Client) -> Any:
    return _projects_ids(c).single().execute()


@read("single_hidden_row")
def _(c: Client) -> Any:
    return _projects_ids(c).eq("name", "Borealis").single().execute()


@read("maybe_single_none")
def _(c: Client) -> Any:
    return c.table("projects").select("id,name").eq("name", "Borealis").maybe_single().execute()


@read("maybe_single_one")
def _(c: Client) -> Any:
    return c.table("projects").select("id,name").eq("name", "Apollo").maybe_single().execute()


@read("maybe_single_many")
def _(c: Client) -> Any:
    return _projects_ids(c).maybe_single().execute()


@read("csv")
def _(c: Client) -> Any:
    return (
        c.table("tasks").select("id,title,status,due").in_("id", [1, 4]).order("id").csv().execute()
    )


@read("strip_nulls")
def _(c: Client) -> Any:
    return (
        c.table("tasks")
        .select("id,due,assignee_id")
        .in_("id", [3, 4])
        .order("id")
        .strip_nulls()
        .execute()
    )


@read("count_head")
def _(c: Client) -> Any:
    return c.table("tasks").select("*", count="exact", head=True).execute()


@read("count_filtered")
def _(c: Client) -> Any:
    return c.table("tasks").select("id", count="exact").eq("status", "todo").order("id").execute()


# -- RPC


@read("rpc_scalar")
def _(c: Client) -> Any:
    return c.rpc("add", {"a": 2, "b": 3}).execute()


@read("rpc_scalar_get")
def _(c: Client) -> Any:
    return c.rpc("add", {"a": 2, "b": 3}, get=True).execute()


@read("rpc_setof")
def _(c: Client) -> Any:
    return c.rpc("tasks_due_before", {"d": "2024-03-01"}).select("id,title").order("id").execute()


@read("rpc_setof_filtered")
def _(c: Client) -> Any:
    return (
        c.rpc("tasks_due_before", {"d": "2024-12-31"})
        .select("id")
        .eq("status", "todo")
        .order("due", desc=True)
        .execute()
    )


@read("rpc_setof_embed")
def _(c: Client) -> Any:
    return (
        c.rpc("tasks_due_before", {"d": "2024-02-01"})
        .select("title,project:projects(name)")
        .order("id")
        .execute()
    )


@read("rpc_setof_count")
def _(c: Client) -> Any:
    return (
        c.rpc("tasks_due_before", {"d": "2025-12-31"}, count="exact")
        .select("id")
        .order("id")
        .limit(2)
        .execute()
    )


@read("rpc_json_named")
def _(c: Client) -> Any:
    return c.rpc("summarize", {"doc": {"b": 1, "a": {"x": 2}}}).execute()


@read("rpc_json_unnamed")
def _(c: Client) -> Any:
    return c.rpc("echo_body", {"hello": "world", "n": [1, 2]}).execute()


@read("rpc_raise_pt402")
def _(c: Client) -> Any:
    return c.rpc("pay_up", {"amount": 5}).execute()


@read("rpc_raise_plpgsql")
def _(c: Client) -> Any:
    return c.rpc("assert_positive", {"n": -1}).execute()


@read("rpc_plpgsql_ok")
def _(c: Client) -> Any:
    return c.rpc("assert_positive", {"n": 7}).execute()


@read("rpc_unknown_function")
def _(c: Client) -> Any:
    return c.rpc("does_not_exist", {"x": 1}).execute()


# -- errors


@read("error_unknown_table")
def _(c: Client) -> Any:
    return c.table("nope").select("*").execute()


@read("error_unknown_column_select")
def _(c: Client) -> Any:
    return c.table("tasks").select("id,nope").execute()


@read("error_unknown_column_filter")
def _(c: Client) -> Any:
    return _tasks_ids(c).eq("nope", 1).execute()


@read("error_invalid_input")
def _(c: Client) -> Any:
    return _tasks_ids(c).eq("priority", "high").execute()


@read("error_bad_operator")
def _(c: Client) -> Any:
    return _tasks_ids(c).filter("status", "foo", "x").execute()


@read("error_no_relationship")
def _(c: Client) -> Any:
    return c.table("tasks").select("id,events(id)").execute()


# ------------------------------------------------------------------ write stories
# supabase-py asks for `return=representation` by default; `.select(...)` narrows the columns.

_NEW_TASK = {k: TASK_5001[k] for k in ("id", "project_id", "title", "priority", "tags", "meta")}


@step("insert", "insert_representation")
def _(c: Client) -> Any:
    return c.table("tasks").insert(_NEW_TASK).execute()


@step("insert", "insert_minimal")
def _(c: Client) -> Any:
    row = {"id": 5002, "project_id": 1, "title": "Quiet insert"}
    return c.table("tasks").insert(row, returning="minimal").execute()


@step("insert", "read_back")
def _(c: Client) -> Any:
    return (
        c.table("tasks")
        .select("id,title,status,created_by")
        .gte("id", 5001)
        .lt("id", 5100)
        .order("id")
        .execute()
    )


@step("insert", "insert_rls_denied")
def _(c: Client) -> Any:
    return c.table("tasks").insert({"id": 5003, "project_id": 1, "title": "Sneaky"}).execute()


@step("insert", "insert_anon_denied")
def _(c: Client) -> Any:
    return c.table("tasks").insert({"id": 5004, "project_id": 1, "title": "Anonymous"}).execute()


@step("insert", "insert_unknown_column")
def _(c: Client) -> Any:
    row = {"id": 5005, "project_id": 1, "title": "Typo", "nope": 1}
    return c.table("tasks").insert(row).execute()


@step("insert", "insert_fk_violation")
def _(c: Client) -> Any:
    return c.table("tasks").insert({"id": 5006, "project_id": 999, "title": "Orphan"}).execute()


@step("insert", "insert_check_violation")
def _(c: Client) -> Any:
    row = {"id": 5007, "project_id": 1, "title": "Odd", "status": "blocked"}
    return c.table("tasks").insert(row).execute()


@step("insert", "nothing_else_written")
def _(c: Client) -> Any:
    return _tasks_ids(c).gte("id", 5001).lt("id", 5100).order("id").execute()


_BULK = [
    {"id": 5101, "project_id": 2, "title": "Bulk one"},
    {"id": 5102, "project_id": 2, "title": "Bulk two", "priority": 1},
]


@step("bulk_insert", "missing_is_null")
def _(c: Client) -> Any:
    return c.table("tasks").insert(_BULK).select("id,title,priority,status").execute()


@step("bulk_insert", "missing_is_default")
def _(c: Client) -> Any:
    return (
        c.table("tasks")
        .insert(_BULK, count="exact", default_to_null=False)
        .select("id,title,priority,status")
        .execute()
    )


@step("bulk_insert", "hidden_from_anon")
def _(c: Client) -> Any:
    return _tasks_ids(c).in_("id", [5101, 5102]).execute()


@step("bulk_insert", "visible_to_owner")
def _(c: Client) -> Any:
    return _tasks_ids(c).in_("id", [5101, 5102]).order("id").execute()


@step("upsert", "unique_violation")
def _(c: Client) -> Any:
    return c.table("labels").insert({"name": "bug"}).execute()


@step("upsert", "seed_row")
def _(c: Client) -> Any:
    return (
        c.table("tasks")
        .insert({"id": 5201, "project_id": 1, "title": "Draft"})
        .select("id,title")
        .execute()
    )


@step("upsert", "merge_on_primary_key")
def _(c: Client) -> Any:
    rows = [
        {"id": 5201, "project_id": 1, "title": "Final"},
        {"id": 5202, "project_id": 1, "title": "Fresh"},
    ]
    return c.table("tasks").upsert(rows).select("id,title").execute()


@step("upsert", "merge_only_conflicts")
def _(c: Client) -> Any:
    row = {"id": 5201, "project_id": 1, "title": "Final v2"}
    return c.table("tasks").upsert(row).select("id,title").execute()


@step("upsert", "ignore_duplicates_on_conflict")
def _(c: Client) -> Any:
    rows = [{"name": "bug", "color": "black"}, {"name": "qa", "color": "teal"}]
    return (
        c.table("labels")
        .upsert(rows, on_conflict="name", ignore_duplicates=True)
        .select("name,color")
        .execute()
    )


@step("upsert", "labels_after")
def _(c: Client) -> Any:
    return c.table("labels").select("name,color").in_("name", ["bug", "qa"]).order("name").execute()


@step("upsert", "seed_project")
def _(c: Client) -> Any:
    row = {"id": 5203, "owner_id": ALICE, "name": "Zephyr"}
    return c.table("projects").insert(row).select("id,name,is_public").execute()


@step("upsert", "merge_on_unique_column")
def _(c: Client) -> Any:
    row = {"name": "Zephyr", "owner_id": ALICE, "is_public": True}
    return c.table("projects").upsert(row, on_conflict="name").select("id,name,is_public").execute()


@step("upsert", "merge_denied_by_rls")
def _(c: Client) -> Any:
    row = {"name": "Zephyr", "owner_id": BOB, "is_public": True}
    return c.table("projects").upsert(row, on_conflict="name").select("id,name,is_public").execute()


@step("update_delete", "seed_row")
def _(c: Client) -> Any:
    return (
        c.table("tasks")
        .insert({"id": 5301, "project_id": 1, "title": "Temp"})
        .select("id")
        .execute()
    )


@step("update_delete", "update_own")
def _(c: Client) -> Any:
    return (
        c.table("tasks")
        .update({"status": "doing", "priority": 4}, count="exact")
        .eq("id", 5301)
        .select("id,status,priority")
        .execute()
    )


@step("update_delete", "update_other_users_row")
def _(c: Client) -> Any:
    return c.table("tasks").update({"status": "done"}).eq("id", 5301).select("id").execute()


@step("update_delete", "update_as_anon")
def _(c: Client) -> Any:
    return c.table("tasks").update({"status": "done"}).eq("id", 5301).select("id").execute()


@step("update_delete", "update_unknown_column")
def _(c: Client) -> Any:
    return c.table("tasks").update({"nope": 1}).eq("id", 5301).execute()


@step("update_delete", "update_minimal")
def _(c: Client) -> Any:
    return (
        c.table("tasks").update({"title": "Temp 2"}, returning="minimal").eq("id", 5301).execute()
    )


@step("update_delete", "delete_other_users_row")
def _(c: Client) -> Any:
    return c.table("tasks").delete().eq("id", 5301).select("id").execute()


@step("update_delete", "delete_own")
def _(c: Client) -> Any:
    return c.table("tasks").delete(count="exact").eq("id", 5301).select("id,title,status").execute()


@step("update_delete", "gone")
def _(c: Client) -> Any:
    return _tasks_ids(c).eq("id", 5301).execute()


@step("update_delete", "update_own_profile")
def _(c: Client) -> Any:
    return (
        c.table("profiles")
        .update({"bio": "Down the rabbit hole"})
        .eq("username", "alice")
        .select("username,bio")
        .execute()
    )


@step("update_delete", "update_other_profile")
def _(c: Client) -> Any:
    return (
        c.table("profiles")
        .update({"bio": "hacked"})
        .eq("username", "bob")
        .select("username,bio")
        .execute()
    )


@step("update_delete", "profiles_after")
def _(c: Client) -> Any:
    return c.table("profiles").select("username,bio").order("username").execute()


@step("rpc_writes", "seed_row")
def _(c: Client) -> Any:
    row = {"id": 5401, "project_id": 1, "title": "Finish me"}
    return c.table("tasks").insert(row).select("id,status").execute()


@step("rpc_writes", "complete_other_users_task")
def _(c: Client) -> Any:
    return c.rpc("complete_task", {"task_id": 5401}).execute()


@step("rpc_writes", "complete_own_task")
def _(c: Client) -> Any:
    return c.rpc("complete_task", {"task_id": 5401}).execute()


@step("rpc_writes", "complete_again")
def _(c: Client) -> Any:
    return c.rpc("complete_task", {"task_id": 5401}).execute()


@step("rpc_writes", "status_after")
def _(c: Client) -> Any:
    return c.table("tasks").select("status").eq("id", 5401).single().execute()


@step("rpc_writes", "void_function")
def _(c: Client) -> Any:
    return c.rpc("log_event", {"kind": "login"}).execute()


@step("rpc_writes", "void_function_denied")
def _(c: Client) -> Any:
    return c.rpc("log_event", {"kind": "intrusion"}).execute()


@step("rpc_writes", "events_of_alice")
def _(c: Client) -> Any:
    return c.table("events").select("kind,actor").execute()


@step("rpc_writes", "events_of_bob")
def _(c: Client) -> Any:
    return c.table("events").select("kind,actor").execute()


@step("rpc_writes", "events_of_anon")
def _(c: Client) -> Any:
    return c.table("events").select("kind").execute()


# ------------------------------------------------------------------ the tests


def test_every_case_has_a_call() -> None:
    assert set(READ_CALLS) == set(READS)
    for story, steps in STORIES.items():
        assert set(STORY_CALLS[story]) == {name for name, _ in steps}, story


@pytest.mark.parametrize("name", list(READS))
def test_read(callers: dict[str, PyCaller], name: str) -> None:
    case = READS[name]
    outcome = callers[case.role].call(READ_CALLS[name])
    problems = check(outcome, case.expected("py"))
    assert not problems, f"as {case.role}: " + "; ".join(problems) + "\n" + describe(outcome)


@pytest.fixture
def restore_seed(compat: Compat) -> Iterator[None]:
    """Stories write; put the seed data back so that nothing depends on the test order.

    Every step of a story runs even after one fails (later steps then report the knock-on
    effects too), so that one run shows everything that is off."""
    yield
    compat.reset_data()


@pytest.mark.parametrize("story", list(STORIES))
def test_story(callers: dict[str, PyCaller], restore_seed: None, story: str) -> None:
    failures = []
    for name, case in STORIES[story]:
        outcome = callers[case.role].call(STORY_CALLS[story][name])
        problems = check(outcome, case.expected("py"))
        if problems:
            failures.append(
                f"step {name!r} as {case.role}: " + "; ".join(problems) + "\n" + describe(outcome)
            )
    assert not failures, "\n".join(failures)

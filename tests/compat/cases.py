"""The Data API scenario and its answers, shared by both official clients.

Every case names the caller (anon, alice, bob or service), what PostgREST answers (status,
data, count, error, Content-Range) and, where the answer is Postgres's own, the SQL that
PostgREST would run for it (`oracle`).  `test_rest_py.py` and `scenario.mjs` build the same
request with supabase-py and supabase-js; both are held to the answers here, and
`test_oracle.py` checks the answers themselves against the database, run with the caller's role
and claims the way PostgREST runs a request.

Write scenarios are stories: steps run in order on rows the story creates itself (each story
has its own id block: 5001-5099, 5101-..., 5201-...), so that they never touch what the read
cases look at, nor each other's rows: scenario.mjs runs them one after the other without
restoring the seed in between.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal

# ---------------------------------------------------------------- the people

ALICE = "11111111-1111-4111-8111-111111111111"
BOB = "22222222-2222-4222-8222-222222222222"
CAROL = "33333333-3333-4333-8333-333333333333"

USERS = {
    "alice": {"id": ALICE, "email": "alice@example.com"},
    "bob": {"id": BOB, "email": "bob@example.com"},
}
ROLES = ("anon", "alice", "bob", "service")

# What a request from each caller looks like to Postgres (PostgREST's role switch and claims).
DB_ROLE = {
    "anon": "anon",
    "alice": "authenticated",
    "bob": "authenticated",
    "service": "service_role",
}


def db_claims(role: str) -> dict[str, Any]:
    if role in USERS:
        user = USERS[role]
        return {
            "sub": user["id"],
            "email": user["email"],
            "role": "authenticated",
            "aud": "authenticated",
        }
    return {"role": DB_ROLE[role]}


# ---------------------------------------------------------------- matching


class Matcher:
    def matches(self, actual: Any) -> bool:
        raise NotImplementedError


class Unordered(Matcher):
    """A list whose order PostgREST does not promise (e.g. rows returned by a bulk write)."""

    def __init__(self, items: list[Any]) -> None:
        self.items = items

    def matches(self, actual: Any) -> bool:
        if not isinstance(actual, list) or len(actual) != len(self.items):
            return False
        rest = list(actual)
        for want in self.items:
            for i, got in enumerate(rest):
                if matches(want, got):
                    del rest[i]
                    break
            else:
                return False
        return True

    def __repr__(self) -> str:
        return f"Unordered({self.items!r})"


class AnyOf(Matcher):
    """One of several documented answers (e.g. a message changed between PostgREST 12 and 13)."""

    def __init__(self, *options: Any) -> None:
        self.options = options

    def matches(self, actual: Any) -> bool:
        return any(matches(o, actual) for o in self.options)

    def __repr__(self) -> str:
        return f"AnyOf{self.options!r}"


def matches(expected: Any, actual: Any) -> bool:
    """Structural equality where `1 != True`, `"1" != 1`, and matchers may appear anywhere."""
    if isinstance(expected, Matcher):
        return expected.matches(actual)
    if isinstance(expected, dict):
        return (
            isinstance(actual, dict)
            and expected.keys() == actual.keys()
            and all(matches(v, actual[k]) for k, v in expected.items())
        )
    if isinstance(expected, list):
        return (
            isinstance(actual, list)
            and len(expected) == len(actual)
            and all(matches(e, a) for e, a in zip(expected, actual, strict=True))
        )
    if isinstance(expected, bool) or isinstance(actual, bool):
        return type(expected) is type(actual) and expected == actual
    if isinstance(expected, int | float) and isinstance(actual, int | float):
        return expected == actual
    return type(expected) is type(actual) and expected == actual


class _Unchecked:
    def __repr__(self) -> str:
        return "UNCHECKED"


UNCHECKED: Any = _Unchecked()


@dataclass(frozen=True)
class Expect:
    """What the client hands back.  `error=None` means the call must succeed; an error dict
    lists the fields that must match (others are not checked)."""

    status: int
    data: Any = UNCHECKED
    count: Any = UNCHECKED
    error: dict[str, Any] | None = None
    content_range: Any = UNCHECKED


def check(outcome: dict[str, Any], expect: Expect) -> list[str]:
    """The differences between what a client returned and what PostgREST would have returned."""
    if "exception" in outcome:
        return [f"the client raised: {outcome['exception']}"]
    problems = []
    if outcome.get("status") != expect.status:
        problems.append(f"status {outcome.get('status')!r}, expected {expect.status}")
    error = outcome.get("error")
    if expect.error is None:
        if error is not None:
            problems.append(f"unexpected error {error!r}")
    elif not isinstance(error, dict):
        problems.append(f"no error, expected {expect.error!r}")
    else:
        for key, want in expect.error.items():
            if not matches(want, error.get(key)):
                problems.append(f"error.{key} = {error.get(key)!r}, expected {want!r}")
    for name in ("data", "count", "content_range"):
        want = getattr(expect, name)
        if want is not UNCHECKED and not matches(want, outcome.get(name)):
            problems.append(f"{name} = {outcome.get(name)!r}, expected {want!r}")
    return problems


def describe(outcome: dict[str, Any]) -> str:
    return json.dumps(outcome, indent=1, default=str)[:3000]


# ---------------------------------------------------------------- oracle: what PostgREST would run

# rows/one/value/dml/text: the data (and `count_sql`: the count); raises: the error Postgres
# raises; exec: runs without error; count: only the count; singular: the row count that a
# PGRST116 error reports in its details.
OracleKind = Literal["rows", "one", "value", "dml", "raises", "exec", "text", "count", "singular"]


@dataclass(frozen=True)
class Oracle:
    kind: OracleKind
    sql: str
    count_sql: str | None = None

    def query(self) -> str:
        """The statement, wrapped so that it returns the JSON text PostgREST would send."""
        if self.kind == "rows":
            return f"select coalesce(json_agg(_t), '[]'::json)::text from ({self.sql}) _t"
        if self.kind == "one":
            return f"select row_to_json(_t)::text from ({self.sql}) _t"
        if self.kind == "value":
            return f"select to_json(({self.sql}))::text"
        if self.kind == "dml":
            return (
                f"with _t as ({self.sql}) select coalesce(json_agg(_t), '[]'::json)::text from _t"
            )
        return self.sql


def rows(sql: str, count_sql: str | None = None) -> Oracle:
    return Oracle("rows", sql, count_sql)


def one(sql: str) -> Oracle:
    return Oracle("one", sql)


def value(sql: str) -> Oracle:
    return Oracle("value", sql)


def dml(sql: str, count_sql: str | None = None) -> Oracle:
    return Oracle("dml", sql, count_sql)


def counts(count_sql: str) -> Oracle:
    return Oracle("count", "", count_sql)


def singular(count_sql: str) -> Oracle:
    return Oracle("singular", "", count_sql)


def raises(sql: str) -> Oracle:
    return Oracle("raises", sql)


def execs(sql: str) -> Oracle:
    return Oracle("exec", sql)


def csv_text(sql: str) -> Oracle:
    """PostgREST's text/csv body (`asCsvF` in Query/SqlFragment.hs) for the rows of `sql`."""
    return Oracle(
        "text",
        f"""with _src as ({sql})
        select (select coalesce(string_agg(a.k, ','), '')
                from (select json_object_keys(r)::text as k
                      from (select row_to_json(hh) as r from _src as hh limit 1) s) a)
               || E'\\n' ||
               coalesce(string_agg(substring(_src::text, 2, length(_src::text) - 2), E'\\n'), '')
        from _src""",
    )


@dataclass(frozen=True)
class Case:
    role: str
    expect: Expect
    oracle: Oracle | None = None
    # Where a client answers from its own logic instead of the server's (maybe_single with
    # several rows), each client's documented answer.
    per_client: dict[str, Expect] = field(default_factory=dict)

    def expected(self, client: str) -> Expect:
        return self.per_client.get(client, self.expect)


def ok(data: Any = UNCHECKED, status: int = 200, **kw: Any) -> Expect:
    return Expect(status, data, **kw)


def fail(status: int, **error: Any) -> Expect:
    return Expect(status, error=error)


def ids(*n: int) -> list[dict[str, int]]:
    return [{"id": i} for i in n]


def id_rows(where: str, table: str = "tasks", order: str = "id") -> Oracle:
    return rows(f"select id from public.{table} where {where} order by {order}")


# ---------------------------------------------------------------- read cases

TASKS_VISIBLE = {
    "anon": [1, 2, 3, 4, 7, 8],
    "alice": [1, 2, 3, 4, 5, 6, 7, 8, 10],
    "bob": [1, 2, 3, 4, 5, 7, 8, 9, 10],
    "service": [1, 2, 3, 4, 5, 6, 7, 8, 9, 10],
}
PROJECTS_VISIBLE = {
    "anon": [(1, "Apollo"), (3, "Cassini")],
    "alice": [(1, "Apollo"), (2, "Borealis"), (3, "Cassini")],
    "bob": [(1, "Apollo"), (3, "Cassini"), (4, "Dawn")],
    "service": [(1, "Apollo"), (2, "Borealis"), (3, "Cassini"), (4, "Dawn")],
}

EMBED_AMBIGUOUS_HINTS = ("'profiles!tasks_assignee_id_fkey'", "'profiles!tasks_created_by_fkey'")

READS: dict[str, Case] = {}

# Who sees what: RLS through every role.
for _role in ROLES:
    READS[f"projects_as_{_role}"] = Case(
        _role,
        ok(
            [{"id": i, "name": n} for i, n in PROJECTS_VISIBLE[_role]],
            content_range=f"0-{len(PROJECTS_VISIBLE[_role]) - 1}/*",
        ),
        rows("select id, name from public.projects order by id"),
    )
    _n = len(TASKS_VISIBLE[_role])
    READS[f"task_ids_as_{_role}"] = Case(
        _role,
        ok(ids(*TASKS_VISIBLE[_role]), count=_n, content_range=f"0-{_n - 1}/{_n}"),
        rows(
            "select id from public.tasks order by id",
            count_sql="select count(*) from public.tasks",
        ),
    )

READS.update(
    {
        # ------------------------------------------------------------ embedding
        # To-one: null when RLS hides the parent (Dawn is bob's private project).
        "embed_to_one": Case(
            "alice",
            ok(
                [
                    {"id": 1, "title": "Design the landing page", "project": {"name": "Apollo"}},
                    {"id": 5, "title": "Secret prototype", "project": {"name": "Borealis"}},
                    {"id": 10, "title": "Hire engineers", "project": None},
                ]
            ),
            rows(
                """select t.id, t.title,
                          (select row_to_json(p) from (select name from public.projects
                             where id = t.project_id) p) as project
                   from public.tasks t where t.id in (1, 5, 10) order by t.id"""
            ),
        ),
        "embed_to_one_as_bob": Case(
            "bob",
            ok([{"id": 5, "project": None}, {"id": 9, "project": {"name": "Dawn"}}]),
            rows(
                """select t.id, (select row_to_json(p) from (select name from public.projects
                                   where id = t.project_id) p) as project
                   from public.tasks t where t.id in (5, 9) order by t.id"""
            ),
        ),
        "embed_to_many": Case(
            "anon",
            ok(
                [
                    {
                        "name": "Apollo",
                        "tasks": [
                            {"title": "Design the landing page"},
                            {"title": "Launch announcement"},
                            {"title": "Review landing page"},
                            {"title": "Write landing copy"},
                        ],
                    },
                    {
                        "name": "Cassini",
                        "tasks": [
                            {"title": "Calibrate cameras"},
                            {"title": "Plan orbit insertion"},
                        ],
                    },
                ]
            ),
            rows(
                """select p.name, (select coalesce(json_agg(t), '[]') from (select title
                     from public.tasks where project_id = p.id order by title) t) as tasks
                   from public.projects p order by p.name"""
            ),
        ),
        "embed_many_to_many": Case(
            "anon",
            ok(
                [
                    {"title": "Design the landing page", "labels": [{"name": "feature"}]},
                    {"title": "Write landing copy", "labels": [{"name": "docs"}]},
                    {
                        "title": "Review landing page",
                        "labels": [{"name": "bug"}, {"name": "urgent"}],
                    },
                    {"title": "Launch announcement", "labels": []},
                ]
            ),
            rows(
                """select t.title, (select coalesce(json_agg(l), '[]') from (select l.name
                     from public.labels l join public.task_labels tl on tl.label_id = l.id
                     where tl.task_id = t.id order by l.name) l) as labels
                   from public.tasks t where t.project_id = 1 order by t.id"""
            ),
        ),
        # The junction's own RLS hides labels of tasks anon cannot see (5 and 9).
        "embed_many_to_many_reverse": Case(
            "anon",
            ok(
                [
                    {"name": "bug", "tasks": ids(3, 8)},
                    {"name": "docs", "tasks": ids(2)},
                    {"name": "feature", "tasks": ids(1, 7)},
                    {"name": "urgent", "tasks": ids(3, 7)},
                    {"name": "wontfix", "tasks": []},
                ]
            ),
            rows(
                """select l.name, (select coalesce(json_agg(t), '[]') from (select t.id
                     from public.tasks t join public.task_labels tl on tl.task_id = t.id
                     where tl.label_id = l.id order by t.id) t) as tasks
                   from public.labels l order by l.name"""
            ),
        ),
        # !inner drops the rows whose parent RLS hides (task 5 for bob).
        "embed_inner_rls": Case(
            "bob",
            ok(
                [
                    {"id": i, "project": {"name": n}}
                    for i, n in [
                        (1, "Apollo"),
                        (2, "Apollo"),
                        (3, "Apollo"),
                        (4, "Apollo"),
                        (7, "Cassini"),
                        (8, "Cassini"),
                        (9, "Dawn"),
                        (10, "Dawn"),
                    ]
                ]
            ),
            rows(
                """select t.id, json_build_object('name', p.name) as project
                   from public.tasks t join public.projects p on p.id = t.project_id
                   order by t.id"""
            ),
        ),
        "embed_inner_filtered": Case(
            "anon",
            ok(
                [
                    {"title": "Review landing page", "labels": [{"name": "urgent"}]},
                    {"title": "Plan orbit insertion", "labels": [{"name": "urgent"}]},
                ]
            ),
            rows(
                """select t.title, json_build_array(json_build_object('name', l.name)) as labels
                   from public.tasks t join public.task_labels tl on tl.task_id = t.id
                   join public.labels l on l.id = tl.label_id
                   where l.name = 'urgent' order by t.id"""
            ),
        ),
        # Two FKs from tasks to profiles: disambiguated by column and by constraint name.
        "embed_hint_column": Case(
            "service",
            ok(
                [
                    {"id": 2, "assignee": {"username": "carol"}, "creator": {"username": "alice"}},
                    {"id": 4, "assignee": None, "creator": {"username": "alice"}},
                    {"id": 8, "assignee": {"username": "carol"}, "creator": {"username": "bob"}},
                ]
            ),
            rows(
                """select t.id,
                     (select row_to_json(a) from (select username from public.profiles
                        where id = t.assignee_id) a) as assignee,
                     (select row_to_json(c) from (select username from public.profiles
                        where id = t.created_by) c) as creator
                   from public.tasks t where t.id in (2, 4, 8) order by t.id"""
            ),
        ),
        "embed_hint_constraint": Case(
            "anon",
            ok([{"id": 3, "profiles": {"username": "bob"}}, {"id": 4, "profiles": None}]),
            rows(
                """select t.id, (select row_to_json(a) from (select username from public.profiles
                                   where id = t.assignee_id) a) as profiles
                   from public.tasks t where t.id in (3, 4) order by t.id"""
            ),
        ),
        "embed_ambiguous": Case(
            "anon",
            fail(
                300,
                code="PGRST201",
                message="Could not embed because more than one relationship was found for "
                "'tasks' and 'profiles'",
                details=Unordered(
                    [
                        {
                            "cardinality": "many-to-one",
                            "embedding": "tasks with profiles",
                            "relationship": "tasks_assignee_id_fkey using tasks(assignee_id) "
                            "and profiles(id)",
                        },
                        {
                            "cardinality": "many-to-one",
                            "embedding": "tasks with profiles",
                            "relationship": "tasks_created_by_fkey using tasks(created_by) "
                            "and profiles(id)",
                        },
                    ]
                ),
                hint=AnyOf(
                    *(
                        "Try changing 'profiles' to one of the following: "
                        f"{a}, {b}. Find the desired relationship in the 'details' key."
                        for a, b in (EMBED_AMBIGUOUS_HINTS, EMBED_AMBIGUOUS_HINTS[::-1])
                    )
                ),
            ),
        ),
        "embed_nested": Case(
            "alice",
            ok(
                [
                    {
                        "name": "Apollo",
                        "owner": {"username": "alice"},
                        "tasks": [
                            {
                                "id": 1,
                                "assignee": {"username": "alice"},
                                "labels": [{"name": "feature"}],
                            },
                            {
                                "id": 2,
                                "assignee": {"username": "carol"},
                                "labels": [{"name": "docs"}],
                            },
                            {
                                "id": 3,
                                "assignee": {"username": "bob"},
                                "labels": [{"name": "bug"}, {"name": "urgent"}],
                            },
                            {"id": 4, "assignee": None, "labels": []},
                        ],
                    }
                ]
            ),
            rows(
                """select p.name,
                     (select row_to_json(o) from (select username from public.profiles
                        where id = p.owner_id) o) as owner,
                     (select coalesce(json_agg(t), '[]') from (
                        select t.id,
                          (select row_to_json(a) from (select username from public.profiles
                             where id = t.assignee_id) a) as assignee,
                          (select coalesce(json_agg(l), '[]') from (select l.name
                             from public.labels l join public.task_labels tl on tl.label_id = l.id
                             where tl.task_id = t.id order by l.name) l) as labels
                        from public.tasks t where t.project_id = p.id order by t.id) t) as tasks
                   from public.projects p where p.name = 'Apollo'"""
            ),
        ),
        "embed_self_reference": Case(
            "service",
            ok(
                [
                    {"id": 1, "parent": None, "subtasks": ids(2, 3)},
                    {"id": 2, "parent": {"title": "Design the landing page"}, "subtasks": []},
                    {"id": 7, "parent": None, "subtasks": ids(8)},
                ]
            ),
            rows(
                """select t.id,
                     (select row_to_json(p) from (select title from public.tasks
                        where id = t.parent_id) p) as parent,
                     (select coalesce(json_agg(s), '[]') from (select id from public.tasks
                        where parent_id = t.id order by id) s) as subtasks
                   from public.tasks t where t.id in (1, 2, 7) order by t.id"""
            ),
        ),
        # ------------------------------------------------------------ vertical filtering
        "select_alias_cast_json_path": Case(
            "alice",
            ok(
                [
                    {
                        "id": 1,
                        "name": "Design the landing page",
                        "prio": "2",
                        "estimate": "3",
                        "est": 3,
                        "team": "web",
                        "owner": {"team": "web"},
                    },
                    {
                        "id": 2,
                        "name": "Write landing copy",
                        "prio": "1",
                        "estimate": "1",
                        "est": 1,
                        "team": None,
                        "owner": None,
                    },
                ]
            ),
            rows(
                """select id, title as name, priority::text as prio,
                          meta->>'estimate' as estimate, (meta->'estimate')::int as est,
                          meta->'owner'->>'team' as team, meta->'owner' as owner
                   from public.tasks where id in (1, 2) order by id"""
            ),
        ),
        # ------------------------------------------------------------ horizontal filtering
        "filter_eq": Case("service", ok(ids(1, 10)), id_rows("status = 'done'")),
        "filter_neq": Case("service", ok(ids(1, 2, 5, 7, 10)), id_rows("status <> 'todo'")),
        "filter_gt": Case("service", ok(ids(4, 5, 7)), id_rows("priority > 3")),
        "filter_gte": Case("service", ok(ids(3, 4, 5, 7, 8)), id_rows("priority >= 3")),
        "filter_lt": Case("service", ok(ids(2, 9)), id_rows("priority < 2")),
        "filter_lte_date": Case("service", ok(ids(1, 2, 3)), id_rows("due <= '2024-02-01'")),
        "filter_like": Case("service", ok(ids(1, 2, 3)), id_rows("title like '%landing%'")),
        "filter_like_star": Case("service", ok(ids(1, 3)), id_rows("title like '%page'")),
        "filter_ilike": Case("service", ok(ids(1, 2, 3)), id_rows("title ilike '%LANDING%'")),
        "filter_like_any_of": Case(
            "service", ok(ids(6, 9)), id_rows("title like any ('{%budget%,%parts%}')")
        ),
        "filter_ilike_all_of": Case(
            "service", ok(ids(1, 3)), id_rows("title ilike all ('{%LANDING%,%PAGE%}')")
        ),
        "filter_isdistinct": Case(
            "service",
            ok(ids(1, 2, 4, 6, 8, 10)),
            id_rows(f"assignee_id is distinct from '{BOB}'"),
        ),
        "filter_is_null": Case("service", ok(ids(4, 10)), id_rows("due is null")),
        "filter_not_is_null": Case(
            "service", ok(ids(1, 2, 3, 5, 6, 7, 8, 9, 10)), id_rows("assignee_id is not null")
        ),
        "filter_is_true": Case(
            "service", ok(ids(1, 3)), id_rows("is_public is true", table="projects")
        ),
        "filter_in": Case(
            "service", ok(ids(1, 2, 5, 7, 10)), id_rows("status in ('doing', 'done')")
        ),
        # Values with reserved characters are double-quoted by both clients.
        "filter_in_quoted": Case(
            "service",
            ok(ids(6, 9)),
            id_rows("title in ('Order parts', 'Draft budget (Q1)')"),
        ),
        "filter_contains_array": Case("service", ok(ids(1, 2, 3)), id_rows("tags @> '{web}'")),
        "filter_contains_jsonb": Case(
            "service", ok(ids(7)), id_rows("""meta @> '{"owner": {"team": "nav"}}'""")
        ),
        "filter_contained_by": Case(
            "service", ok(ids(1, 2, 3, 4)), id_rows("tags <@ '{web,design,copy}'")
        ),
        "filter_overlaps": Case(
            "service", ok(ids(5, 6, 9)), id_rows("tags && '{hardware,finance}'")
        ),
        "filter_fts": Case(
            "service",
            ok(ids(1, 3)),
            id_rows("fts @@ to_tsquery('english', 'landing & page')"),
        ),
        "filter_plfts": Case(
            "service",
            ok(ids(2)),
            id_rows("fts @@ plainto_tsquery('english', 'landing copy')"),
        ),
        "filter_wfts": Case(
            "service",
            ok(ids(1, 2)),
            id_rows("fts @@ websearch_to_tsquery('english', 'landing -review')"),
        ),
        # PostgREST >= 13 wraps a non-tsvector column in to_tsvector().
        "filter_fts_text_column": Case(
            "service",
            ok(ids(7)),
            id_rows("to_tsvector('english', title) @@ to_tsquery('english', 'orbit')"),
        ),
        "filter_match": Case("service", ok(ids(3, 8)), id_rows("status = 'todo' and priority = 3")),
        "filter_not_in": Case(
            "service", ok(ids(1, 10)), id_rows("not (status in ('todo', 'doing'))")
        ),
        "filter_or": Case(
            "service", ok(ids(1, 4, 7, 10)), id_rows("priority >= 5 or status = 'done'")
        ),
        "filter_or_nested_and": Case(
            "service",
            ok(ids(1, 5, 10)),
            id_rows("status = 'done' or (priority >= 4 and due < '2024-04-01')"),
        ),
        # An `or` on an embedded resource filters the embed, not the parents.
        "filter_or_referenced": Case(
            "anon",
            ok(
                [
                    {
                        "name": "Apollo",
                        "tasks": [
                            {"title": "Design the landing page"},
                            {"title": "Launch announcement"},
                        ],
                    },
                    {"name": "Cassini", "tasks": [{"title": "Plan orbit insertion"}]},
                ]
            ),
            rows(
                """select p.name, (select coalesce(json_agg(t), '[]') from (select title
                     from public.tasks where project_id = p.id
                       and (status = 'done' or priority >= 5) order by id) t) as tasks
                   from public.projects p order by p.name"""
            ),
        ),
        "filter_generic_cs": Case("service", ok(ids(7, 8)), id_rows("tags @> '{science}'")),
        "filter_generic_imatch": Case(
            "service", ok(ids(9, 10)), id_rows("title ~* '^(draft|hire)'")
        ),
        "filter_json_path_text": Case("service", ok(ids(3, 9)), id_rows("meta->>'estimate' = '2'")),
        "filter_json_path_number": Case(
            "service", ok(ids(5, 7, 8)), id_rows("meta->'estimate' > '4'::jsonb")
        ),
        # Range operators on projects.period (daterange).
        "filter_range_gt": Case(
            "service",
            ok(ids(3, 4)),
            id_rows("period >> '(2024-04-01,2024-05-01)'", table="projects"),
        ),
        "filter_range_gte": Case(
            "service",
            ok(ids(2, 3, 4)),
            id_rows("period &> '(2024-02-01,2024-03-01)'", table="projects"),
        ),
        "filter_range_lt": Case(
            "service",
            ok(ids(1)),
            id_rows("period << '(2024-05-01,2024-06-01)'", table="projects"),
        ),
        "filter_range_lte": Case(
            "service",
            ok(ids(1, 2)),
            id_rows("period &< '(2024-01-01,2024-10-01)'", table="projects"),
        ),
        "filter_range_adjacent": Case(
            "service",
            ok(ids(2)),
            id_rows("period -|- '(2024-08-31,2024-10-01)'", table="projects"),
        ),
        "filter_overlaps_range": Case(
            "service",
            ok(ids(1, 2)),
            id_rows("period && '[2024-03-15,2024-03-20]'", table="projects"),
        ),
        # ------------------------------------------------------------ order, limit, range
        "order_multi": Case(
            "service",
            ok(ids(4, 7, 5, 3, 8, 1, 6, 10, 2, 9)),
            id_rows("true", order="priority desc, id"),
        ),
        "order_nullsfirst": Case(
            "service",
            ok(ids(4, 10, 1, 2, 3, 6, 5, 7, 8, 9)),
            id_rows("true", order="due asc nulls first, id"),
        ),
        "order_desc_nullslast": Case(
            "service",
            ok(ids(9, 8, 7, 5, 6, 3, 2, 1, 4, 10)),
            id_rows("true", order="due desc nulls last, id"),
        ),
        "order_foreign_table": Case(
            "anon",
            ok(
                [
                    {"name": "Apollo", "tasks": ids(4, 3, 1, 2)},
                    {"name": "Cassini", "tasks": ids(7, 8)},
                ]
            ),
            rows(
                """select p.name, (select coalesce(json_agg(t), '[]') from (select id
                     from public.tasks where project_id = p.id order by priority desc, id) t)
                     as tasks
                   from public.projects p order by p.name"""
            ),
        ),
        "limit": Case(
            "anon",
            ok(ids(1, 2, 3), content_range="0-2/*"),
            rows("select id from public.tasks order by id limit 3"),
        ),
        "range_with_count": Case(
            "anon",
            ok(ids(3, 4, 7), status=206, count=6, content_range="2-4/6"),
            rows(
                "select id from public.tasks order by id offset 2 limit 3",
                count_sql="select count(*) from public.tasks",
            ),
        ),
        "limit_foreign_table": Case(
            "anon",
            ok([{"name": "Apollo", "tasks": ids(4)}, {"name": "Cassini", "tasks": ids(8)}]),
            rows(
                """select p.name, (select coalesce(json_agg(t), '[]') from (select id
                     from public.tasks where project_id = p.id order by id desc limit 1) t) as tasks
                   from public.projects p order by p.name"""
            ),
        ),
        # ------------------------------------------------------------ singular responses
        "single_row": Case(
            "alice",
            ok({"id": 2, "name": "Borealis"}),
            one("select id, name from public.projects where id = 2"),
        ),
        "single_many_rows": Case(
            "anon",
            fail(
                406,
                code="PGRST116",
                message="Cannot coerce the result to a single JSON object",
                details="The result contains 2 rows",
                hint=None,
            ),
            singular("select count(*) from public.projects"),
        ),
        "single_hidden_row": Case(
            "anon",
            fail(
                406,
                code="PGRST116",
                message="Cannot coerce the result to a single JSON object",
                details="The result contains 0 rows",
                hint=None,
            ),
            singular("select count(*) from public.projects where name = 'Borealis'"),
        ),
        "maybe_single_none": Case(
            "anon", ok(None), one("select id, name from public.projects where name = 'Borealis'")
        ),
        "maybe_single_one": Case(
            "anon",
            ok({"id": 1, "name": "Apollo"}),
            one("select id, name from public.projects where name = 'Apollo'"),
        ),
        # Both clients fetch a list and decide themselves, each with its own error.
        "maybe_single_many": Case(
            "anon",
            fail(406),
            per_client={
                "py": Expect(
                    200,
                    error={
                        "code": "406",
                        "message": "Cannot coerce the result to a single JSON object",
                        "details": "The result contains more than one row.",
                    },
                ),
                "js": Expect(
                    406,
                    error={
                        "code": "PGRST116",
                        "message": "JSON object requested, multiple (or no) rows returned",
                        "details": "Results contain 2 rows, application/vnd.pgrst.object+json "
                        "requires 1 row",
                    },
                ),
            },
        ),
        # ------------------------------------------------------------ other formats, counts
        "csv": Case(
            "anon",
            ok(
                "id,title,status,due\n"
                '1,"Design the landing page",done,2024-01-15\n'
                '4,"Launch announcement",todo,'
            ),
            csv_text(
                "select id, title, status, due from public.tasks where id in (1, 4) order by id"
            ),
        ),
        # Accept: application/vnd.pgrst.array+json;nulls=stripped
        "strip_nulls": Case(
            "anon",
            ok([{"id": 3, "due": "2024-02-01", "assignee_id": BOB}, {"id": 4}]),
            value(
                """select json_strip_nulls(json_agg(t)) from (select id, due, assignee_id
                   from public.tasks where id in (3, 4) order by id) t"""
            ),
        ),
        "count_head": Case(
            "anon",
            ok(None, count=6, content_range="0-5/6"),
            counts("select count(*) from public.tasks"),
        ),
        "count_filtered": Case(
            "anon",
            ok(ids(3, 4, 8), count=3, content_range="0-2/3"),
            rows(
                "select id from public.tasks where status = 'todo' order by id",
                count_sql="select count(*) from public.tasks where status = 'todo'",
            ),
        ),
        # ------------------------------------------------------------ RPC
        "rpc_scalar": Case("anon", ok(5), value("select public.add(2, 3)")),
        "rpc_scalar_get": Case("anon", ok(5), value("select public.add(2, 3)")),
        "rpc_setof": Case(
            "anon",
            ok(
                [
                    {"id": 1, "title": "Design the landing page"},
                    {"id": 2, "title": "Write landing copy"},
                    {"id": 3, "title": "Review landing page"},
                ]
            ),
            rows("select id, title from public.tasks_due_before('2024-03-01') order by id"),
        ),
        "rpc_setof_filtered": Case(
            "alice",
            ok(ids(8, 6, 3)),
            rows(
                """select id from public.tasks_due_before('2024-12-31')
                   where status = 'todo' order by due desc"""
            ),
        ),
        "rpc_setof_embed": Case(
            "anon",
            ok(
                [
                    {"title": "Design the landing page", "project": {"name": "Apollo"}},
                    {"title": "Write landing copy", "project": {"name": "Apollo"}},
                ]
            ),
            rows(
                """select t.title, (select row_to_json(p) from (select name from public.projects
                                      where id = t.project_id) p) as project
                   from public.tasks_due_before('2024-02-01') t order by t.id"""
            ),
        ),
        "rpc_setof_count": Case(
            "bob",
            ok(ids(1, 2), status=206, count=7, content_range="0-1/7"),
            rows(
                "select id from public.tasks_due_before('2025-12-31') order by id limit 2",
                count_sql="select count(*) from public.tasks_due_before('2025-12-31')",
            ),
        ),
        "rpc_json_named": Case(
            "anon",
            ok({"keys": ["a", "b"], "size": 2}),
            value("""select public.summarize('{"b": 1, "a": {"x": 2}}')"""),
        ),
        "rpc_json_unnamed": Case(
            "anon",
            ok({"hello": "world", "n": [1, 2]}),
            value("""select public.echo_body('{"hello": "world", "n": [1, 2]}')"""),
        ),
        "rpc_raise_pt402": Case(
            "alice",
            fail(
                402,
                code="PT402",
                message="Payment of 5 credits required",
                details="Your quota is exhausted",
                hint="Upgrade your plan",
            ),
            raises("select public.pay_up(5)"),
        ),
        "rpc_raise_plpgsql": Case(
            "anon",
            fail(
                400,
                code="P0001",
                message="n must be positive, got -1",
                details=None,
                hint="Pass a number greater than zero",
            ),
            raises("select public.assert_positive(-1)"),
        ),
        "rpc_plpgsql_ok": Case("anon", ok(7), value("select public.assert_positive(7)")),
        "rpc_unknown_function": Case(
            "anon",
            fail(
                404,
                code="PGRST202",
                message="Could not find the function public.does_not_exist(x) in the schema cache",
                details="Searched for the function public.does_not_exist with parameter x or with "
                "a single unnamed json/jsonb parameter, but no matches were found in the schema "
                "cache.",
            ),
        ),
        # ------------------------------------------------------------ errors
        "error_unknown_table": Case(
            "anon",
            fail(
                404,
                code=AnyOf("PGRST205", "42P01"),
                message=AnyOf(
                    "Could not find the table 'public.nope' in the schema cache",
                    'relation "public.nope" does not exist',
                ),
                details=None,
            ),
            raises("select * from public.nope"),
        ),
        "error_unknown_column_select": Case(
            "anon",
            fail(
                400,
                code="42703",
                message="column tasks.nope does not exist",
                details=None,
                hint=None,
            ),
            raises("select tasks.id, tasks.nope from public.tasks"),
        ),
        "error_unknown_column_filter": Case(
            "anon",
            fail(
                400,
                code="42703",
                message="column tasks.nope does not exist",
                details=None,
                hint=None,
            ),
            raises("select tasks.id from public.tasks where tasks.nope = '1'"),
        ),
        "error_invalid_input": Case(
            "anon",
            fail(400, code="22P02", message='invalid input syntax for type integer: "high"'),
            raises("select id from public.tasks where priority = 'high'"),
        ),
        "error_bad_operator": Case(
            "anon",
            fail(
                400, code="PGRST100", message='"failed to parse filter (foo.x)" (line 1, column 1)'
            ),
        ),
        "error_no_relationship": Case(
            "anon",
            fail(
                400,
                code="PGRST200",
                message="Could not find a relationship between 'tasks' and 'events' in the "
                "schema cache",
                details="Searched for a foreign key relationship between 'tasks' and 'events' "
                "in the schema 'public', but no matches were found.",
            ),
        ),
    }
)

# ---------------------------------------------------------------- write stories

TASK_5001 = {
    "id": 5001,
    "project_id": 1,
    "parent_id": None,
    "title": "Write tests",
    "status": "todo",
    "priority": 2,
    "due": None,
    "tags": ["qa"],
    "meta": {"estimate": 3},
    "assignee_id": None,
    "created_by": ALICE,
    "fts": "'test':2 'write':1",
}
RLS_TASKS = 'new row violates row-level security policy for table "tasks"'

STORIES: dict[str, list[tuple[str, Case]]] = {
    "insert": [
        (
            "insert_representation",
            Case(
                "alice",
                ok([TASK_5001], status=201),
                dml(
                    """insert into public.tasks (id, project_id, title, priority, tags, meta)
                       values (5001, 1, 'Write tests', 2, '{qa}', '{"estimate": 3}') returning *"""
                ),
            ),
        ),
        (
            "insert_minimal",
            Case(
                "alice",
                ok(None, status=201),
                execs(
                    """insert into public.tasks (id, project_id, title)
                       values (5002, 1, 'Quiet insert')"""
                ),
            ),
        ),
        (
            "read_back",
            Case(
                "alice",
                ok(
                    [
                        {"id": 5001, "title": "Write tests", "status": "todo", "created_by": ALICE},
                        {
                            "id": 5002,
                            "title": "Quiet insert",
                            "status": "todo",
                            "created_by": ALICE,
                        },
                    ]
                ),
                rows(
                    """select id, title, status, created_by from public.tasks
                       where id >= 5001 and id < 5100 order by id"""
                ),
            ),
        ),
        (
            "insert_rls_denied",
            Case(
                "bob",
                fail(403, code="42501", message=RLS_TASKS),
                raises(
                    "insert into public.tasks (id, project_id, title) values (5003, 1, 'Sneaky')"
                ),
            ),
        ),
        (
            "insert_anon_denied",
            Case(
                "anon",
                fail(401, code="42501", message=RLS_TASKS),
                raises(
                    "insert into public.tasks (id, project_id, title) values (5004, 1, 'Anonymous')"
                ),
            ),
        ),
        (
            "insert_unknown_column",
            Case(
                "alice",
                fail(
                    400,
                    code="PGRST204",
                    message="Could not find the 'nope' column of 'tasks' in the schema cache",
                    details=None,
                    hint=None,
                ),
            ),
        ),
        (
            "insert_fk_violation",
            Case(
                "service",
                fail(
                    409,
                    code="23503",
                    message='insert or update on table "tasks" violates foreign key constraint '
                    '"tasks_project_id_fkey"',
                    details='Key (project_id)=(999) is not present in table "projects".',
                ),
                raises(
                    "insert into public.tasks (id, project_id, title) values (5006, 999, 'Orphan')"
                ),
            ),
        ),
        (
            "insert_check_violation",
            Case(
                "alice",
                fail(
                    400,
                    code="23514",
                    message='new row for relation "tasks" violates check constraint '
                    '"tasks_status_check"',
                ),
                raises(
                    """insert into public.tasks (id, project_id, title, status)
                       values (5007, 1, 'Odd', 'blocked')"""
                ),
            ),
        ),
        (
            "nothing_else_written",
            Case(
                "service",
                ok(ids(5001, 5002)),
                rows("select id from public.tasks where id >= 5001 and id < 5100 order by id"),
            ),
        ),
    ],
    "bulk_insert": [
        # Rows with different keys: the clients send ?columns= with the union of the keys, so a
        # missing key is NULL unless `missing=default` (default_to_null=False) is asked for.
        (
            "missing_is_null",
            Case(
                "alice",
                fail(
                    400,
                    code="23502",
                    message='null value in column "priority" of relation "tasks" violates not-null '
                    "constraint",
                ),
                raises(
                    """insert into public.tasks (id, project_id, title, priority)
                       values (5101, 2, 'Bulk one', null), (5102, 2, 'Bulk two', 1)"""
                ),
            ),
        ),
        (
            "missing_is_default",
            Case(
                "alice",
                ok(
                    Unordered(
                        [
                            {"id": 5101, "title": "Bulk one", "priority": 0, "status": "todo"},
                            {"id": 5102, "title": "Bulk two", "priority": 1, "status": "todo"},
                        ]
                    ),
                    status=201,
                    count=2,
                    content_range="*/2",
                ),
                dml(
                    """insert into public.tasks (id, project_id, title, priority)
                       values (5101, 2, 'Bulk one', default), (5102, 2, 'Bulk two', 1)
                       returning id, title, priority, status"""
                ),
            ),
        ),
        (
            "hidden_from_anon",
            Case("anon", ok([]), rows("select id from public.tasks where id in (5101, 5102)")),
        ),
        (
            "visible_to_owner",
            Case(
                "alice",
                ok(ids(5101, 5102)),
                rows("select id from public.tasks where id in (5101, 5102) order by id"),
            ),
        ),
    ],
    "upsert": [
        (
            "unique_violation",
            Case(
                "alice",
                fail(
                    409,
                    code="23505",
                    message='duplicate key value violates unique constraint "labels_name_key"',
                    # Postgres leaves out the key values when RLS applies to the caller.
                    details=None,
                    hint=None,
                ),
                raises("insert into public.labels (name) values ('bug')"),
            ),
        ),
        (
            "seed_row",
            Case(
                "alice",
                ok([{"id": 5201, "title": "Draft"}], status=201),
                dml(
                    """insert into public.tasks (id, project_id, title) values (5201, 1, 'Draft')
                       returning id, title"""
                ),
            ),
        ),
        (
            "merge_on_primary_key",
            Case(
                "alice",
                ok(
                    Unordered([{"id": 5201, "title": "Final"}, {"id": 5202, "title": "Fresh"}]),
                    status=201,
                ),
                dml(
                    """insert into public.tasks (id, project_id, title)
                       values (5201, 1, 'Final'), (5202, 1, 'Fresh')
                       on conflict (id) do update set project_id = excluded.project_id,
                         title = excluded.title
                       returning id, title"""
                ),
            ),
        ),
        # Every row took the conflict path: 200, not 201 (PostgREST >= 12).
        (
            "merge_only_conflicts",
            Case(
                "alice",
                ok([{"id": 5201, "title": "Final v2"}], status=200),
                dml(
                    """insert into public.tasks (id, project_id, title) values (5201, 1, 'Final v2')
                       on conflict (id) do update set project_id = excluded.project_id,
                         title = excluded.title
                       returning id, title"""
                ),
            ),
        ),
        (
            "ignore_duplicates_on_conflict",
            Case(
                "alice",
                ok([{"name": "qa", "color": "teal"}], status=201),
                dml(
                    """insert into public.labels (name, color)
                       values ('bug', 'black'), ('qa', 'teal')
                       on conflict (name) do nothing returning name, color"""
                ),
            ),
        ),
        (
            "labels_after",
            Case(
                "anon",
                ok([{"name": "bug", "color": "red"}, {"name": "qa", "color": "teal"}]),
                rows(
                    """select name, color from public.labels
                       where name in ('bug', 'qa') order by name"""
                ),
            ),
        ),
        (
            "seed_project",
            Case(
                "alice",
                ok([{"id": 5203, "name": "Zephyr", "is_public": False}], status=201),
                dml(
                    f"""insert into public.projects (id, owner_id, name)
                        values (5203, '{ALICE}', 'Zephyr') returning id, name, is_public"""
                ),
            ),
        ),
        (
            "merge_on_unique_column",
            Case(
                "alice",
                ok([{"id": 5203, "name": "Zephyr", "is_public": True}], status=200),
                dml(
                    f"""insert into public.projects (name, owner_id, is_public)
                        values ('Zephyr', '{ALICE}', true)
                        on conflict (name) do update set name = excluded.name,
                          owner_id = excluded.owner_id, is_public = excluded.is_public
                        returning id, name, is_public"""
                ),
            ),
        ),
        # Bob may insert a project of his own, but the conflict path would update alice's row.
        (
            "merge_denied_by_rls",
            Case(
                "bob",
                fail(
                    403,
                    code="42501",
                    message="new row violates row-level security policy (USING expression) for "
                    'table "projects"',
                ),
                raises(
                    f"""insert into public.projects (name, owner_id, is_public)
                        values ('Zephyr', '{BOB}', true)
                        on conflict (name) do update set name = excluded.name,
                          owner_id = excluded.owner_id, is_public = excluded.is_public
                        returning id, name, is_public"""
                ),
            ),
        ),
    ],
    "update_delete": [
        (
            "seed_row",
            Case(
                "alice",
                ok(ids(5301), status=201),
                dml(
                    """insert into public.tasks (id, project_id, title) values (5301, 1, 'Temp')
                       returning id"""
                ),
            ),
        ),
        (
            "update_own",
            Case(
                "alice",
                ok(
                    [{"id": 5301, "status": "doing", "priority": 4}], count=1, content_range="0-0/1"
                ),
                dml(
                    """update public.tasks set status = 'doing', priority = 4 where id = 5301
                       returning id, status, priority"""
                ),
            ),
        ),
        (
            "update_other_users_row",
            Case(
                "bob",
                ok([]),
                dml("update public.tasks set status = 'done' where id = 5301 returning id"),
            ),
        ),
        (
            "update_as_anon",
            Case(
                "anon",
                ok([]),
                dml("update public.tasks set status = 'done' where id = 5301 returning id"),
            ),
        ),
        (
            "update_unknown_column",
            Case(
                "alice",
                fail(
                    400,
                    code="PGRST204",
                    message="Could not find the 'nope' column of 'tasks' in the schema cache",
                    details=None,
                    hint=None,
                ),
            ),
        ),
        (
            "update_minimal",
            Case(
                "alice",
                ok(None, status=204),
                execs("update public.tasks set title = 'Temp 2' where id = 5301"),
            ),
        ),
        (
            "delete_other_users_row",
            Case("bob", ok([]), dml("delete from public.tasks where id = 5301 returning id")),
        ),
        (
            "delete_own",
            Case(
                "alice",
                ok(
                    [{"id": 5301, "title": "Temp 2", "status": "doing"}],
                    count=1,
                    content_range="*/1",
                ),
                dml("delete from public.tasks where id = 5301 returning id, title, status"),
            ),
        ),
        ("gone", Case("service", ok([]), rows("select id from public.tasks where id = 5301"))),
        (
            "update_own_profile",
            Case(
                "alice",
                ok([{"username": "alice", "bio": "Down the rabbit hole"}]),
                dml(
                    """update public.profiles set bio = 'Down the rabbit hole'
                       where username = 'alice' returning username, bio"""
                ),
            ),
        ),
        (
            "update_other_profile",
            Case(
                "alice",
                ok([]),
                dml(
                    """update public.profiles set bio = 'hacked'
                       where username = 'bob' returning username, bio"""
                ),
            ),
        ),
        (
            "profiles_after",
            Case(
                "anon",
                ok(
                    [
                        {"username": "alice", "bio": "Down the rabbit hole"},
                        {"username": "bob", "bio": None},
                        {"username": "carol", "bio": None},
                    ]
                ),
                rows("select username, bio from public.profiles order by username"),
            ),
        ),
    ],
    "rpc_writes": [
        (
            "seed_row",
            Case(
                "alice",
                ok([{"id": 5401, "status": "todo"}], status=201),
                dml(
                    """insert into public.tasks (id, project_id, title)
                       values (5401, 1, 'Finish me') returning id, status"""
                ),
            ),
        ),
        (
            "complete_other_users_task",
            Case("bob", ok(0), value("select public.complete_task(5401)")),
        ),
        ("complete_own_task", Case("alice", ok(1), value("select public.complete_task(5401)"))),
        ("complete_again", Case("alice", ok(0), value("select public.complete_task(5401)"))),
        (
            "status_after",
            Case(
                "anon",
                ok({"status": "done"}),
                one("select status from public.tasks where id = 5401"),
            ),
        ),
        (
            "void_function",
            Case("alice", ok(None, status=204), execs("select public.log_event('login')")),
        ),
        (
            "void_function_denied",
            Case(
                "anon",
                fail(
                    401,
                    code="42501",
                    message='new row violates row-level security policy for table "events"',
                ),
                raises("select public.log_event('intrusion')"),
            ),
        ),
        (
            "events_of_alice",
            Case(
                "alice",
                ok([{"kind": "login", "actor": ALICE}]),
                rows("select kind, actor from public.events"),
            ),
        ),
        ("events_of_bob", Case("bob", ok([]), rows("select kind, actor from public.events"))),
        ("events_of_anon", Case("anon", ok([]), rows("select kind from public.events"))),
    ],
}


def plan() -> dict[str, Any]:
    """What scenario.mjs runs, and as whom, in this order: every read, then every story."""
    return {
        "reads": [[name, case.role] for name, case in READS.items()],
        "stories": [
            [story, [[step, case.role] for step, case in steps]] for story, steps in STORIES.items()
        ],
    }

"""The Data API's logic (no HTTP): a request in, status/headers/body out.

parse (`parse.py`) → plan against the schema cache (`plan.py`) → one SQL statement (`sql.py`)
→ run it inside the request's transaction, under the caller's role → assemble PostgREST's
response (status, Content-Range, Location, Preference-Applied, the JSON body as Postgres
rendered it).
"""

from __future__ import annotations

import csv
import functools
import io
import json
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from typing import Any, Literal, NamedTuple
from urllib.parse import parse_qsl, quote

import asyncpg

from supalite.config import ApiSettings
from supalite.db.api_pool import ApiPool
from supalite.db.request import RequestContext, request_statement, request_transaction
from supalite.db.schema_cache import Function, SchemaCache, Table, quote_ident
from supalite.gateway import Claims
from supalite.rest import sql as S
from supalite.rest.errors import ApiError, from_postgres
from supalite.rest.media import Media, PlanMedia, negotiate
from supalite.rest.parse import (
    OpQuant,
    OpSimple,
    ParseError,
    Preferences,
    QueryParams,
    RowRange,
    parse_prefer,
    parse_query,
    parse_range,
    preference_applied,
    split_query_string,
    top_level_range,
)
from supalite.rest.plan import Node, Planner
from supalite.rest.shapes import (
    UNCACHEABLE,
    Rendered,
    ShapeCache,
    Template,
    placeholder,
    shape_of,
)

JSON = "application/json; charset=utf-8"


@dataclass
class RestRequest:
    method: str
    resource: str  # table/view name, or function name when rpc
    rpc: bool
    query_string: bytes
    headers: Mapping[str, str]  # lower-case names
    body: bytes
    claims: Claims
    path: str


@dataclass
class RestResponse:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    media_type: str | None = JSON


@dataclass
class RestContext:
    """What the service needs from the app."""

    api_pool: ApiPool
    cache: SchemaCache
    settings: ApiSettings
    shapes: ShapeCache | None = None  # reads rendered once per query shape (shapes.py)


def _error(e: ParseError) -> ApiError:
    return ApiError(e.status, e.code, e.message, e.details, e.hint)


def request_schema(
    method: str, headers: Mapping[str, str], settings: ApiSettings
) -> tuple[str, bool]:
    """The schema a request names (`Accept-Profile`/`Content-Profile`), and whether it named
    one; PGRST106 when it is not one of `[api] schemas`."""
    header = "accept-profile" if method in ("GET", "HEAD") else "content-profile"
    wanted = headers.get(header)
    if wanted is None:
        return settings.schemas[0], False
    if wanted not in settings.schemas:
        raise ApiError(
            406,
            "PGRST106",
            f"The schema must be one of the following: {', '.join(settings.schemas)}",
        )
    return wanted, True


@dataclass(frozen=True)
class PlannedCount:
    """count=planned|estimated: EXPLAIN of the rows the filters select, run after the main
    statement in its transaction.  `above`: only when the exact total exceeds it (estimated;
    None means always, as planned)."""

    sql: str
    values: list[Any]
    above: int | None

    def wanted(self, exact: int | None) -> bool:
        return self.above is None or (exact is not None and exact > self.above)

    def total(self, exact: int | None, plan_json: str | None) -> int | None:
        try:
            estimate = int(json.loads(plan_json or "")[0]["Plan"]["Plan Rows"])
        except (ValueError, LookupError, TypeError):
            estimate = None
        if self.above is None or exact is None or estimate is None:
            return estimate if self.above is None else exact
        return max(exact, estimate)


def _planned_count(node: Node, *, above: int | None) -> PlannedCount:
    p = S.Params()  # its own parameters: EXPLAIN sees only the values it references
    return PlannedCount(S.count_rows(node, p), p.values, above)


def _with_total(row: asyncpg.Record, total: int | None) -> dict[str, Any]:
    """The row with its total replaced (asyncpg's records are read-only)."""
    return {**dict(row.items()), "total": total}


def _content_range(lower: int, page: int, total: int | None) -> str:
    total_s = "*" if total is None else str(total)
    if page == 0:
        return f"*/{total_s}"
    return f"{lower}-{lower + page - 1}/{total_s}"


class _Body(NamedTuple):
    """A request body: its value, and its own text when it was JSON.  Postgres is given that
    text as sent, as PostgREST passes it, so numbers keep every digit a float would lose."""

    data: Any
    text: str | None = None

    def json(self) -> str:
        """The body as JSON: its text as sent, when it was JSON."""
        return self.text if self.text is not None else _COMPACT.encode(self.data)


def _read_body(req: RestRequest) -> _Body:
    ctype = req.headers.get("content-type", "application/json").split(";", 1)[0].strip().lower()
    raw = req.body
    if ctype == "application/x-www-form-urlencoded":
        return _Body(dict(parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True)))
    if ctype == "text/csv":
        text = raw.decode("utf-8", "replace")
        rows = list(csv.DictReader(io.StringIO(text)))
        return _Body([{k: (None if v == "NULL" else v) for k, v in r.items()} for r in rows])
    if not raw.strip():
        return _Body({} if req.rpc else None)
    try:
        data = json.loads(raw, parse_constant=_not_json)
    except (ValueError, RecursionError) as e:
        raise ApiError(400, "PGRST102", "Empty or invalid json", str(e)[:200]) from e
    try:
        return _Body(data, raw.decode("utf-8"))
    except UnicodeDecodeError:  # UTF-16 or -32, which json.loads also reads
        return _Body(data)


def _not_json(name: str) -> Any:
    """NaN and ±Infinity, which Python's parser takes and JSON (and Postgres) does not."""
    raise ValueError(f"{name} is not JSON")


@dataclass(frozen=True)
class _Asked:
    """A request with its headers read: the schema, the preferences, what to answer in."""

    req: RestRequest
    schema: str
    prefs: Preferences
    media: Media
    plan: PlanMedia | None  # Accept: application/vnd.pgrst.plan — explain, don't answer
    prefer: tuple[str, ...]  # the Prefer headers as sent


class _WriteModes(NamedTuple):
    """What a write's preferences and media ask of its statement and its answer."""

    rep: str  # return=minimal|headers-only|representation
    want_body: bool  # the representation is answered
    want_rows: bool  # the statement returns the rows (for the body, or Location)
    merging: bool  # an upsert by POST, which answers 200 when nothing was new
    max_affected: int | None
    atomic: bool  # a check after the statement may refuse it: one transaction

    @classmethod
    def of(cls, prefs: Preferences, media: Media, action: str) -> _WriteModes:
        rep = prefs.representation or "minimal"
        max_affected = prefs.effective_max_affected
        return cls(
            rep=rep,
            want_body=rep == "representation",
            want_rows=rep in ("representation", "headers-only"),
            merging=action == "create" and prefs.resolution == "merge-duplicates",
            max_affected=max_affected,
            atomic=media.startswith("single")
            or (max_affected is not None and action in ("update", "delete")),
        )


@dataclass(frozen=True)
class _InsertShape:
    """An insert's query string parsed and its table, with its statements' templates by the
    body's columns (`RestService._insert`)."""

    q: QueryParams
    table: Table
    by_columns: dict[tuple[str, ...], object] = field(default_factory=dict)


# Column sets an insert shape keeps templates for: a client sending arbitrary keys makes no more.
_COLUMN_SETS = 16


@dataclass(frozen=True)
class _Call:
    """One request as the service works on it: parsed, negotiated, with its planner."""

    req: RestRequest
    q: QueryParams
    prefs: Preferences
    media: Media
    planner: Planner
    schema: str
    plan: PlanMedia | None = None  # Accept: application/vnd.pgrst.plan — explain, don't answer


class RestService:
    def __init__(self, ctx: RestContext) -> None:
        self.ctx = ctx
        pre = ctx.settings.db_pre_request
        self._pre_request = _qualified_fn(pre) if pre else None

    async def handle(self, req: RestRequest) -> RestResponse:
        try:
            return await self._handle(req)
        except ParseError as e:
            raise _error(e) from e

    async def _handle(self, req: RestRequest) -> RestResponse:
        settings = self.ctx.settings
        schema, profiled = request_schema(req.method, req.headers, settings)
        prefer = tuple(v for k, v in _items(req.headers) if k == "prefer")
        prefs = parse_prefer(list(prefer))
        prefs.check_strict()
        media, plan = negotiate(req.headers.get("accept"), plan_enabled=settings.db_plan_enabled)
        a = _Asked(req, schema, prefs, media, plan, prefer)
        items = split_query_string(req.query_string)
        shaped = None
        if req.method in ("GET", "HEAD") and not req.rpc and plan is None:
            shaped = self._shaped_read(a, items)
        if shaped is not None:
            resp = await self._answer_read(a, shaped)
        elif req.method == "POST" and not req.rpc and plan is None and self.ctx.shapes is not None:
            resp = await self._shaped_insert(a, items, self.ctx.shapes)
        else:
            resp = await self._unshaped(a, items)
        if profiled:
            resp.headers["Content-Profile"] = schema
        return resp

    async def _unshaped(self, a: _Asked, items: list[tuple[str, str | None]]) -> RestResponse:
        req = a.req
        is_read = req.method in ("GET", "HEAD")
        call = self._call(a, items, is_rpc_read=req.rpc and is_read)
        if req.method == "OPTIONS":
            return self._options(call.planner, req)
        if req.rpc:
            return await self._rpc(call)
        table = call.planner.table(req.resource)
        if is_read:
            return await self._answer_read(a, self._render_read(call, table))
        if req.method == "POST":
            return await self._insert(call, table)
        if req.method == "PATCH":
            return await self._update(call, table)
        if req.method == "DELETE":
            return await self._delete(call, table)
        if req.method == "PUT":
            return await self._put(call, table)
        raise ApiError(405, "PGRST117", f"Unsupported HTTP method: {req.method}")

    def _shaped_read(self, a: _Asked, items: list[tuple[str, str | None]]) -> Rendered | None:
        """The read rendered from its shape's template (shapes.py), making the template on
        the shape's first request; None when the read must be rendered the usual way."""
        shapes = self.ctx.shapes
        shape = shape_of(items) if shapes is not None else None
        if shapes is None or shape is None:
            return None
        h = a.req.headers
        key = (a.schema, a.req.resource, a.req.method, shape.key, a.media, a.prefer,
               h.get("range"), h.get("range-unit"))  # fmt: skip
        found = shapes.get(self.ctx.cache, key)
        if isinstance(found, Template):
            return found.fill(shape.values)
        if found is not None:  # UNCACHEABLE
            return None
        try:
            masked = self._render_items(a, list(shape.key))
        except (ParseError, ApiError):
            return None  # the request's own rendering says what is wrong
        rendered = self._render_items(a, items)
        template = Template.build(masked, len(shape.values))
        same = template is not None and template.fill(shape.values) == rendered
        shapes.put(key, template if template is not None and same else UNCACHEABLE)
        return rendered

    async def _shaped_insert(
        self, a: _Asked, items: list[tuple[str, str | None]], shapes: ShapeCache
    ) -> RestResponse:
        """An insert whose query string, preferences and media were seen before: parsed and
        planned once, and rendered once per set of body columns, its body and settings going
        in bind parameters (`_insert`)."""
        key = ("insert", a.schema, a.req.resource, tuple(items), a.media, a.prefer)
        found = shapes.get(self.ctx.cache, key)
        if not isinstance(found, _InsertShape):
            call = self._call(a, items)
            found = _InsertShape(call.q, call.planner.table(a.req.resource))
            shapes.put(key, found)
        c = _Call(a.req, found.q, a.prefs, a.media, self._planner(a.schema), a.schema, a.plan)
        return await self._insert(c, found.table, found.by_columns)

    def _render_items(self, a: _Asked, items: list[tuple[str, str | None]]) -> Rendered:
        call = self._call(a, items)
        return self._render_read(call, call.planner.table(a.req.resource))

    def _call(
        self, a: _Asked, items: list[tuple[str, str | None]], *, is_rpc_read: bool = False
    ) -> _Call:
        """The request parsed, with a planner for its schema."""
        q = parse_query(items, is_rpc_read=is_rpc_read)
        return _Call(a.req, q, a.prefs, a.media, self._planner(a.schema), a.schema, a.plan)

    def _planner(self, schema: str) -> Planner:
        """A planner for one rendering (it numbers the aliases it gives out)."""
        return Planner(self.ctx.cache, schema, aggregates=self.ctx.settings.aggregates_enabled)

    # ------------------------------------------------------------------ running

    def _request_context(
        self, req: RestRequest, schema: str, *, read_only: bool, prefs: Preferences
    ) -> RequestContext:
        search = _search_path(schema, self.ctx.settings.extra_search_path)
        return RequestContext(
            role=req.claims.role,
            claims_json=req.claims.claims_json,
            method=req.method,
            path=req.path,
            headers_json=_headers_json(req.headers),
            search_path=search,
            read_only=read_only,
            rollback=prefs.tx == "rollback",
            pre_request=self._pre_request,
        )

    async def _run(
        self,
        req: RestRequest,
        ctx: RequestContext,
        sql: str,
        params: list[Any],
        check: Any = None,
        *,
        atomic: bool = False,
        checked: bool = False,
        planned: PlannedCount | None = None,
    ) -> asyncpg.Record:
        """The statement, run as the request's role.  `atomic`: `check` may refuse a write
        after it ran, so the statement needs a transaction to roll back (a read that fails
        its check has nothing to undo).  `checked`: an insert whose body passes through
        `RequestContext.checked_body`.  With `planned`, the total the statement reports is
        replaced by the planner's estimate, as count=planned|estimated ask."""
        pool = self.ctx.api_pool
        try:
            statement = request_statement(pool, ctx, sql, params, atomic=atomic, checked=checked)
            async with statement as (conn, row):
                assert row is not None
                if check is not None:
                    check(row)  # raising here rolls the transaction back
                if planned is not None and planned.wanted(row["total"]):
                    plan = await conn.fetchval(S.explain_rows(planned.sql), *planned.values)
                    row = _with_total(row, planned.total(row["total"], plan))
                return row
        except asyncpg.PostgresError as e:
            raise self._postgres_error(req, e) from e

    @asynccontextmanager
    async def _connection(
        self, req: RestRequest, ctx: RequestContext, *, atomic: bool
    ) -> AsyncIterator[asyncpg.Connection]:
        """The request's connection (role, settings, transaction); Postgres errors become
        PostgREST's."""
        try:
            async with request_transaction(self.ctx.api_pool, ctx, atomic=atomic) as conn:
                yield conn
        except asyncpg.PostgresError as e:
            raise self._postgres_error(req, e) from e

    def _postgres_error(self, req: RestRequest, e: asyncpg.PostgresError) -> ApiError:
        return from_postgres(e, authenticated=req.claims.role != self.ctx.settings.anon_role)

    async def _explain(
        self, req: RestRequest, plan: PlanMedia, ctx: RequestContext, sql: str, params: list[Any]
    ) -> RestResponse:
        """The execution plan of the statement the request would run, under the same role,
        settings and transaction.  As on PostgREST, `options=analyze` runs it, so a write's
        changes are committed unless the request also says `Prefer: tx=rollback`; the result
        is not checked (singular, max-affected) and `response.*` settings are not applied."""
        async with self._connection(req, ctx, atomic=False) as conn:
            rows = await conn.fetch(plan.explain(sql), *params)
        # TEXT comes as one row per line, JSON as one row: PostgREST ends each with a newline.
        body = "".join(f"{r[0]}\n" for r in rows)
        resp = RestResponse(200, body=body.encode(), media_type=plan.content_type)
        if req.method == "HEAD":
            resp.body = b""
        return resp

    def _finish(
        self,
        req: RestRequest,
        row: asyncpg.Record,
        resp: RestResponse,
        prefs: Preferences,
        action: Literal["read", "rpc"],
    ) -> RestResponse:
        """What every read-like answer ends with: HEAD drops the body, Preference-Applied,
        and whatever the SQL set in response.headers/status."""
        if req.method == "HEAD":
            resp.body = b""
        applied = preference_applied(prefs, action)
        if applied:
            resp.headers["Preference-Applied"] = applied
        return self._apply_guc_response(row, resp)

    @staticmethod
    def _apply_guc_response(row: asyncpg.Record, resp: RestResponse) -> RestResponse:
        """`response.headers` / `response.status` set by the SQL the request ran."""
        if row["response_status"]:
            try:
                resp.status = int(row["response_status"])
            except ValueError as e:
                raise ApiError(500, "PGRST112", "Invalid response status") from e
        if row["response_headers"]:
            try:
                for item in json.loads(row["response_headers"]):
                    for k, v in item.items():
                        resp.headers[str(k)] = str(v)
            except (ValueError, AttributeError, TypeError) as e:
                raise ApiError(500, "PGRST111", "Invalid response.headers") from e
        return resp

    # ------------------------------------------------------------------ reads

    def _render_read(self, c: _Call, table: Table) -> Rendered:
        """A read's statement (and its planned count's, if asked for), with their parameters;
        `extra` is the row range and the planned count's threshold."""
        req, q, prefs, media, planner = c.req, c.q, c.prefs, c.media, c.planner
        header_range = parse_range(req.headers.get("range"), req.headers.get("range-unit"))
        rng = top_level_range(q, header_range if req.method in ("GET", "HEAD") else None)
        node = planner.read(table, q, rng)
        p = S.Params()
        max_rows = self.ctx.settings.max_rows
        source = S.read_source(node, p, max_rows=max_rows)
        count: str | None = None
        planned: PlannedCount | None = None
        if prefs.count == "exact":
            count = S.count_query(node, p)
        elif prefs.count == "estimated":
            # Exact up to max-rows (counting one past it to know it was passed), then the
            # larger of that and the planner's estimate: PostgREST's rule.
            at_most = max_rows + 1 if max_rows is not None else None
            count = S.count_query(node, p, at_most=at_most)
            planned = _planned_count(node, above=max_rows if max_rows is not None else -1)
        elif prefs.count == "planned":
            planned = _planned_count(node, above=None)
        # HEAD renders no body (PostgREST's NoAgg): it only counts.
        body = S.NO_BODY if req.method == "HEAD" else media
        stmt = S.wrap_body(source, count_sql=count, media=body)
        if planned is None:
            return Rendered((stmt,), (tuple(p.values),), (rng, None))
        return Rendered(
            (stmt, planned.sql), (tuple(p.values), tuple(planned.values)), (rng, planned.above)
        )

    async def _answer_read(self, a: _Asked, rendered: Rendered) -> RestResponse:
        rng, above = rendered.extra
        stmt, params = rendered.statements[0], list(rendered.params[0])
        planned = None
        if len(rendered.statements) > 1:
            planned = PlannedCount(rendered.statements[1], list(rendered.params[1]), above)
        req = a.req
        ctx = self._request_context(req, a.schema, read_only=True, prefs=a.prefs)
        if a.plan is not None:
            return await self._explain(req, a.plan, ctx, stmt, params)
        row = await self._run(req, ctx, stmt, params, _single_check(a.media), planned=planned)
        return self._read_response(req, row, rng, a.media, a.prefs)

    def _read_response(
        self, req: RestRequest, row: asyncpg.Record, rng: RowRange, media: Media, prefs: Preferences
    ) -> RestResponse:
        total, page = row["total"], row["page_total"]
        status = 200
        if total is not None:
            if rng.offset > total and not (total == 0 and rng.offset == 0):
                raise ApiError(
                    416,
                    "PGRST103",
                    "Requested range not satisfiable",
                    f"An offset of {rng.offset} was requested, but there are only {total} rows.",
                )
            if page < total:
                status = 206
        headers = {"Content-Range": _content_range(rng.offset, page, total)}
        resp = RestResponse(status, headers=headers)
        resp.body, resp.media_type = _render(row["body"], media)
        return self._finish(req, row, resp, prefs, "read")

    # ------------------------------------------------------------------ writes

    def _payload(
        self, req: RestRequest, q: QueryParams, table: Table, *, many: bool
    ) -> tuple[str, list[str]]:
        body = _read_body(req)
        data = body.data
        if data is None:
            raise ApiError(400, "PGRST102", "Empty or invalid json")
        if many:
            rows = data if isinstance(data, list) else [data]
            if not all(isinstance(r, dict) for r in rows):
                raise ApiError(400, "PGRST102", "All object keys must match")
        elif not isinstance(data, dict):
            raise ApiError(400, "PGRST102", "Empty or invalid json")
        else:
            rows = [data]
        if q.columns is not None:
            cols = list(q.columns)
        else:
            cols = list(dict.fromkeys(k for r in rows for k in r))
        for c in cols:
            if c not in table.columns:
                raise ApiError(
                    400,
                    "PGRST204",
                    f"Could not find the '{c}' column of '{table.name}' in the schema cache",
                )
        text = body.json()
        return (f"[{text}]" if many and not isinstance(data, list) else text), cols

    def _representation(
        self, node: Node, p: S.Params, dml: str, media: str, want_rows: bool, extra: str = ""
    ) -> str:
        """The statement around a mutation: its RETURNING rows shaped like a read."""
        if want_rows:
            source = S.read_source(node, p, source="pgrst_mutation")
        else:
            source = "SELECT 1 FROM pgrst_mutation"
        stmt = S.wrap_body(source, count_sql=None, media=media, extra=extra, read=False)
        return f"WITH pgrst_mutation AS ({dml}), " + stmt.removeprefix("WITH ")

    def _mutation_node(
        self, planner: Planner, table: Table, q: QueryParams, *, with_filters: bool
    ) -> Node:
        if with_filters:
            return planner.read(table, q, RowRange())
        # Inserts: shape the representation only (filters do not apply to what was inserted).
        shaped = QueryParams(
            select=q.select,
            order=q.order,
            ranges=q.ranges,
            filters=tuple(f for f in q.filters if f[0]),
            logic=tuple(x for x in q.logic if x[0]),
        )
        return planner.read(table, shaped, RowRange())

    async def _insert(
        self, c: _Call, table: Table, by_columns: dict[tuple[str, ...], object] | None = None
    ) -> RestResponse:
        """With `by_columns`, the insert's templates by body columns (`_shaped_insert`): the
        statement depends on them and not on the body's values or the settings' (bind
        parameters), so a template of it is made the first time, checked as a read's is."""
        req, q = c.req, c.q
        if not table.insertable:
            raise ApiError(405, "PGRST117", f"Cannot insert into '{table.name}'")
        body, cols = self._payload(req, q, table, many=True)
        ctx = self._request_context(req, c.schema, read_only=False, prefs=c.prefs)
        rendered = self._insert_rendered(c, table, ctx, body, cols, by_columns)
        return await self._answer_write(c, table, "create", ctx, rendered, None)

    def _insert_rendered(
        self,
        c: _Call,
        table: Table,
        ctx: RequestContext,
        body: str,
        cols: list[str],
        by_columns: dict[tuple[str, ...], object] | None,
    ) -> Rendered:
        values = (body, *ctx.values())
        found = by_columns.get(tuple(cols)) if by_columns is not None else None
        if isinstance(found, Template):
            return found.fill(values)
        rendered = self._render_write(c, table, "create", ctx, body, cols, None)
        if found is None and by_columns is not None and len(by_columns) < _COLUMN_SETS:
            by_columns[tuple(cols)] = self._insert_template(c, table, ctx, cols, values, rendered)
        return rendered

    def _insert_template(
        self,
        c: _Call,
        table: Table,
        ctx: RequestContext,
        cols: list[str],
        values: tuple[str, ...],
        rendered: Rendered,
    ) -> object:
        """The insert rendered again with placeholders for `values` (the body, then the
        settings), on a planner of its own (aliases are numbered): its template if filling
        that with `values` gives `rendered`, else UNCACHEABLE."""
        marks = [placeholder(i) for i in range(len(values))]
        again = replace(c, planner=self._planner(c.schema))
        masked_ctx = ctx.with_values(marks[1:])
        masked = self._render_write(again, table, "create", masked_ctx, marks[0], cols, None)
        template = Template.build(masked, len(values))
        if template is None or template.fill(values) != rendered:
            return UNCACHEABLE
        return template

    async def _update(self, c: _Call, table: Table) -> RestResponse:
        req, q = c.req, c.q
        body, cols = self._payload(req, q, table, many=False)
        return await self._write(c, table, "update", body=body, cols=cols)

    async def _delete(self, c: _Call, table: Table) -> RestResponse:
        return await self._write(c, table, "delete")

    async def _put(self, c: _Call, table: Table) -> RestResponse:
        req, q, prefs = c.req, c.q, c.prefs
        if q.range_for(()).limit is not None or q.range_for(()).offset:
            raise ApiError(
                400, "PGRST114", "limit/offset querystring parameters are not allowed for PUT"
            )
        body, cols = self._payload(req, q, table, many=False)
        data = json.loads(body)
        eqs = {f.field.name: f.expr.operation for p, f in q.filters if not p}
        pk_ok = (
            table.pk
            and set(eqs) == set(table.pk)
            and all(
                isinstance(op, (OpSimple, OpQuant))
                and op.op == "eq"
                and getattr(op, "quantifier", None) is None
                for op in eqs.values()
            )
        )
        if not pk_ok or set(cols) != set(table.columns):
            raise ApiError(
                405,
                "PGRST105",
                "Filters must include all and only primary key columns with 'eq' operators",
            )
        for k in table.pk:
            if str(data.get(k)) != getattr(eqs[k], "value", None):
                raise ApiError(
                    400, "PGRST115", "Payload values do not match URL in primary key column(s)"
                )
        upsert_prefs = Preferences(
            resolution="merge-duplicates",
            representation=prefs.representation,
            count=prefs.count,
            tx=prefs.tx,
            missing=prefs.missing,
            handling=prefs.handling,
        )
        return await self._write(
            replace(c, prefs=upsert_prefs),
            table,
            "upsert",
            body=f"[{body}]",
            cols=cols,
            on_conflict=table.pk,
        )

    async def _write(
        self,
        c: _Call,
        table: Table,
        action: str,
        *,
        body: str = "",
        cols: list[str] | None = None,
        on_conflict: tuple[str, ...] | None = None,
    ) -> RestResponse:
        ctx = self._request_context(c.req, c.schema, read_only=False, prefs=c.prefs)
        rendered = self._render_write(c, table, action, ctx, body, cols or [], on_conflict)
        return await self._answer_write(c, table, action, ctx, rendered, on_conflict)

    def _render_write(
        self,
        c: _Call,
        table: Table,
        action: str,
        ctx: RequestContext,
        body: str,
        cols: list[str],
        on_conflict: tuple[str, ...] | None,
    ) -> Rendered:
        """The write's statement and parameters; `extra` says whether the insert's body is
        checked (`RequestContext.checked_body`)."""
        q, prefs, planner = c.q, c.prefs, c.planner
        m = _WriteModes.of(prefs, c.media, action)
        p = S.Params()
        filtered = action in ("update", "delete")
        node = self._mutation_node(planner, table, q, with_filters=filtered)
        p_body = f"{p.add(body)}::json" if action in ("create", "update", "upsert") else ""
        # An insert into a table whose body is read before anything else of it runs: one
        # round trip when its connection already has the caller (db/request.py).
        checked = (
            action in ("create", "upsert")
            and table.kind in ("r", "p")
            and not table.early_hooks
            and ctx.one_statement(m.atomic)
            and c.plan is None
        )
        if checked:
            p_body = ctx.checked_body(p.text, p_body)
        returning = S.returning_list(table) if m.want_rows else "1"
        if action in ("create", "upsert"):
            conflict = on_conflict or q.on_conflict or (table.pk or None)
            for name in conflict or ():
                planner.column(table, name)  # an unknown on_conflict column is a 42703
            if m.merging:
                returning += ", (xmax = 0) AS pgrst_inserted"  # xmax is 0 on a fresh row
            dml = S.insert_sql(
                table,
                cols,
                p,
                p_body,
                on_conflict=conflict,
                resolution=prefs.resolution,
                returning=returning,
                missing_default=prefs.missing == "default",
            )
        elif action == "update":
            if not cols:
                # An empty body updates nothing (PostgREST answers as if no row matched).
                dml = f"SELECT {returning} FROM {table.qualified} WHERE FALSE"
            else:
                dml = S.update_sql(
                    node,
                    cols,
                    p,
                    p_body,
                    S.returning_list(table, node.alias) if returning != "1" else "1",
                )
        else:
            dml = S.delete_sql(
                node, p, S.returning_list(table, node.alias) if returning != "1" else "1"
            )
        # The representation is shaped from the mutation's RETURNING rows: a fresh alias.
        # (An insert's node is only that: the statement has no filters to render.)
        rep_node = self._mutation_node(planner, table, q, with_filters=False) if filtered else node
        # The body: the representation in the media asked for; for headers-only, JSON, which
        # Location is read from; else none (PostgREST's NoAgg: GeoJSON's ST_AsGeoJSON would
        # refuse the bare rows).
        body_media = c.media if m.want_body else "json" if m.want_rows else S.NO_BODY
        stmt = self._representation(
            rep_node,
            p,
            dml,
            body_media,
            m.want_rows,
            ", (SELECT count(*) FILTER (WHERE pgrst_inserted) FROM pgrst_mutation) AS inserted"
            if m.merging
            else "",
        )
        return Rendered((stmt,), (tuple(p.values),), checked)

    async def _answer_write(
        self,
        c: _Call,
        table: Table,
        action: str,
        ctx: RequestContext,
        rendered: Rendered,
        on_conflict: tuple[str, ...] | None,
    ) -> RestResponse:
        req, q, prefs, media = c.req, c.q, c.prefs, c.media
        m = _WriteModes.of(prefs, media, action)
        (stmt,), (params,) = rendered.statements, rendered.params

        def check(row: asyncpg.Record) -> None:
            if (
                m.max_affected is not None
                and action in ("update", "delete")
                and (row["page_total"] > m.max_affected)
            ):
                raise ApiError(
                    400,
                    "PGRST124",
                    "Query result exceeds max-affected preference constraint",
                    f"The query affects {row['page_total']} rows",
                )
            _single_check(media)(row)

        if c.plan is not None:
            return await self._explain(c.req, c.plan, ctx, stmt, list(params))
        row = await self._run(
            req, ctx, stmt, list(params), check, atomic=m.atomic, checked=rendered.extra
        )
        n = row["page_total"]
        total = n if prefs.count is not None else None
        headers: dict[str, str] = {}
        if action in ("create", "upsert"):
            if action == "create":
                status = 200 if m.merging and n > 0 and row["inserted"] == 0 else 201
            else:
                status = 200 if m.want_body else 204
            headers["Content-Range"] = _content_range(1, 0, total)
            if m.rep == "headers-only" and n == 1 and table.pk:
                loc = json.loads(row["body"])[0] if row["body"] else None
                if loc is not None and all(k in loc for k in table.pk):
                    headers["Location"] = f"/{table.name}?" + "&".join(
                        f"{k}=eq.{quote(str(loc[k]), safe='')}" for k in table.pk
                    )
        elif action == "update":
            status = 200 if m.want_body else 204
            headers["Content-Range"] = _content_range(0, n, total)
        else:
            status = 200 if m.want_body else 204
            headers["Content-Range"] = _content_range(1, 0, total)
        applied = preference_applied(
            prefs,
            "upsert" if action == "upsert" else action,  # type: ignore[arg-type]
            resolution_applies=bool(on_conflict or q.on_conflict or table.pk),
        )
        if applied:
            headers["Preference-Applied"] = applied
        resp = RestResponse(status, headers=headers)
        if m.want_body:
            resp.body, resp.media_type = _render(row["body"], media)
        else:
            resp.media_type = None
        return self._apply_guc_response(row, resp)

    # ------------------------------------------------------------------ rpc

    async def _rpc(self, c: _Call) -> RestResponse:
        req, q, prefs, media, planner, schema = c.req, c.q, c.prefs, c.media, c.planner, c.schema
        is_read = req.method in ("GET", "HEAD")
        if req.method not in ("GET", "HEAD", "POST"):
            raise ApiError(405, "PGRST101", "Only GET, HEAD or POST are allowed for RPC")
        if is_read:
            args: dict[str, Any] = {}
            for k, v in q.rpc_args:
                if k in args:  # repeated: a variadic/array argument
                    prev = args[k]
                    args[k] = [*prev, v] if isinstance(prev, list) else [prev, v]
                else:
                    args[k] = v
            body = _Body(args)
        else:
            body = _read_body(req)
        body_obj = body.data
        names = set(body_obj) if isinstance(body_obj, dict) else set()
        single_json_candidate = not isinstance(body_obj, dict) or not is_read
        fn = planner.function(req.resource, names, single_json=single_json_candidate)
        single_json = (
            len(fn.args) == 1 and not fn.args[0].name and fn.args[0].type in ("json", "jsonb")
        )
        if is_read and fn.volatility == "v":
            raise ApiError(405, "PGRST101", "Only POST is allowed for volatile functions")
        p = S.Params()
        prefix, call = S.call_expr(
            fn,
            p,
            body.json(),
            single_json=single_json,
            arg_names=sorted(names),
        )
        rng = top_level_range(q, parse_range(req.headers.get("range")) if is_read else None)
        table = _rpc_table(planner, fn)
        total_sql = None
        if table is not None:
            node = planner.read(table, q, rng)
            source = S.read_source(
                node, p, source=f"{prefix}{call}", max_rows=self.ctx.settings.max_rows
            )
            if prefs.count is not None:
                total_sql = S.count_query(node, p, source=f"{prefix}{call}")
            # A function returning one row (not SETOF) answers with that row as an object.
            shape: Media = media if fn.returns_set or media != "json" else "single"
            body_media = S.NO_BODY if req.method == "HEAD" else shape  # as for reads
            stmt = S.wrap_body(source, count_sql=total_sql, media=body_media)
            scalar = False
        else:
            stmt = S.scalar_call(prefix, call, returns_set=fn.returns_set, media=media)
            scalar = True
        read_only = is_read or fn.volatility != "v"
        ctx = self._request_context(req, schema, read_only=read_only, prefs=prefs)
        max_affected = prefs.effective_max_affected

        def check(row: asyncpg.Record) -> None:
            if max_affected is not None:
                if not fn.returns_set:
                    raise ApiError(
                        400,
                        "PGRST128",
                        "Function must return SETOF or TABLE when "
                        "max-affected preference is used with handling=strict",
                    )
                if row["page_total"] > max_affected:
                    raise ApiError(
                        400,
                        "PGRST124",
                        "Query result exceeds max-affected preference constraint",
                        f"The query affects {row['page_total']} rows",
                    )
            if media.startswith("single") and fn.returns_set:
                _single_check(media)(row)

        atomic = not read_only and (
            max_affected is not None or (media.startswith("single") and fn.returns_set)
        )
        if c.plan is not None:
            return await self._explain(c.req, c.plan, ctx, stmt, p.values)
        row = await self._run(req, ctx, stmt, p.values, check, atomic=atomic)
        if fn.is_void:
            resp = RestResponse(204, media_type=None)
            return self._apply_guc_response(row, resp)
        headers: dict[str, str] = {}
        status = 200
        if fn.returns_set:
            total = row["total"]
            headers["Content-Range"] = _content_range(rng.offset, row["page_total"], total)
            if total is not None and row["page_total"] < total:
                status = 206
        resp = RestResponse(status, headers=headers)
        body = row["body"]
        if (scalar or not fn.returns_set) and media != "geojson":
            resp.body = (body if body else "null").encode()
        else:
            resp.body, resp.media_type = _render(body, media)
        return self._finish(req, row, resp, prefs, "rpc")

    # ------------------------------------------------------------------ options

    def _options(self, planner: Planner, req: RestRequest) -> RestResponse:
        if req.rpc:
            fns = planner.cache.functions.get((planner.schema, req.resource))
            if not fns:
                planner.function(req.resource, set(), single_json=False)
            allow = "OPTIONS,POST" if fns and fns[0].volatility == "v" else "OPTIONS,GET,HEAD,POST"
        else:
            t = planner.table(req.resource)
            verbs = ["OPTIONS", "GET", "HEAD"]
            if t.insertable:
                verbs.append("POST")
            if t.insertable and t.updatable:
                verbs.append("PUT")
            if t.updatable:
                verbs.append("PATCH")
            if t.deletable:
                verbs.append("DELETE")
            allow = ",".join(verbs)
        return RestResponse(200, headers={"Allow": allow}, media_type=None)


def _rpc_table(planner: Planner, fn: Function) -> Table | None:
    if fn.return_table is None:
        return None
    return planner.cache.tables.get(fn.return_table)


def _single_check(media: Media) -> Any:
    def check(row: asyncpg.Record) -> None:
        if media.startswith("single") and row["page_total"] != 1:
            raise ApiError(
                406,
                "PGRST116",
                "Cannot coerce the result to a single JSON object",
                f"The result contains {row['page_total']} rows",
            )

    return check


_CONTENT_TYPES = {
    "json": JSON,
    "json_stripped": "application/vnd.pgrst.array+json;nulls=stripped; charset=utf-8",
    "single": "application/vnd.pgrst.object+json; charset=utf-8",
    "single_stripped": "application/vnd.pgrst.object+json;nulls=stripped; charset=utf-8",
    "csv": "text/csv; charset=utf-8",
    "geojson": "application/geo+json; charset=utf-8",
}


def _render(body: str | None, media: Media) -> tuple[bytes, str]:
    if body is None or (body == "" and media.startswith("single")):
        body = "null" if media.startswith("single") else "[]" if media != "csv" else ""
    return body.encode(), _CONTENT_TYPES[media]


def _items(headers: Mapping[str, str]) -> list[tuple[str, str]]:
    getlist = getattr(headers, "getlist", None)
    if getlist is not None:
        return [("prefer", v) for v in getlist("prefer")]
    return [(k, v) for k, v in headers.items()]


_COMPACT = json.JSONEncoder(separators=(",", ":"))  # json.dumps would build one per call


@functools.lru_cache(maxsize=64)
def _search_path(schema: str, extra: tuple[str, ...]) -> str:
    return ", ".join(quote_ident(s) for s in (schema, *extra))


def _headers_json(headers: Mapping[str, str]) -> str:
    """`request.headers` as JSON, each name with its first value.  Starlette's `Headers` looks
    every name up by a scan of the list, so its raw pairs are read directly when it has them."""
    raw = getattr(headers, "raw", None)
    if raw is None:
        return _COMPACT.encode(dict(headers))
    pairs: dict[str, str] = {}
    for k, v in raw:
        pairs.setdefault(k.decode("latin-1"), v.decode("latin-1"))
    return _COMPACT.encode(pairs)


def _qualified_fn(name: str) -> str:
    schema, _, fn = name.rpartition(".")
    return (quote_ident(schema) + "." if schema else "") + quote_ident(fn)

"""MCP prompts: worked procedures an agent can be handed for the jobs that go wrong most often
with Supabase — a new table whose RLS is missing or slow, and a user who cannot see a row.

Each prompt names the tools to use in order, so the agent looks before it changes anything,
changes the schema only through `apply_migration`, and proves the result as a user would meet
it (user mode) rather than as the service role, which bypasses RLS.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import mcp_types as types
from mcp.server.context import ServerRequestContext
from mcp.shared.exceptions import MCPError


def invalid_params(message: str) -> MCPError:
    return MCPError(types.INVALID_PARAMS, message)


_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


@dataclass(frozen=True)
class _Prompt:
    name: str
    description: str
    arguments: list[types.PromptArgument]
    render: Callable[[dict[str, str]], str]


def _design_table(args: dict[str, str]) -> str:
    table, purpose = args["table"], args.get("purpose") or "(not given: ask the user)"
    return f"""Design the table `public.{table}` with Row Level Security. Purpose: {purpose}

1. Look first: `list_tables` (and `describe_table` for the tables it relates to). Reuse
   existing keys and naming; do not duplicate a table that exists.
2. Write one migration with `apply_migration(name, query)` that:
   - creates `public.{table}` with a primary key (`id bigint generated always as identity` or
     `uuid default gen_random_uuid()`), `created_at timestamptz not null default now()`, and
     an owner column `user_id uuid not null default auth.uid() references auth.users (id)
     on delete cascade` when rows belong to users;
   - indexes every foreign key column (`create index on public.{table} (user_id)`);
   - `alter table public.{table} enable row level security;`
   - one policy per operation and role, written the fast way — `auth.uid()` inside a
     sub-select so it is evaluated once per statement, not once per row:
     `create policy "{table}: owners read" on public.{table} for select to authenticated
      using ((select auth.uid()) = user_id);`
     and likewise `insert ... with check`, `update ... using ... with check`, `delete ...
     using`. Never trust `auth.jwt() -> 'user_metadata'` in a policy: users can edit it;
     use `app_metadata` for roles.
   - grants only what the API roles need (`grant select, insert, update, delete on
     public.{table} to authenticated;` — nothing to `anon` unless the data is public).
3. Check: `get_advisors(type: "security")` and `get_advisors(type: "performance")` must report
   nothing for `{table}`.
4. Prove it as users would meet it: create two users (`auth_admin_create_user` with
   `email_confirm: true`), sign in as the first (`auth_sign_in_with_password`), insert and
   `query` a row, sign in as the second and confirm the first user's row is invisible and
   cannot be updated, then `auth_sign_out`.
"""


def _debug_denial(args: dict[str, str]) -> str:
    table = args["table"]
    return f"""A user cannot see or change rows of `public.{table}`. Find out why, without
weakening security.

1. `describe_table(table: "{table}")`: is RLS enabled, and which policies exist for which
   operations and roles? No policy for an operation means that operation is denied.
2. `execute_sql` with `read_only: true`:
   `select grantee, privilege_type from information_schema.role_table_grants
    where table_schema = 'public' and table_name = '{table}';`
   Missing grants to `authenticated`/`anon` give 42501 before any policy runs.
3. Reproduce as the user: `auth_sign_in_with_password` (or `auth_admin_generate_link` for a
   test user), then `query` the table. Compare with the row's owner column and the policy's
   `using` / `with check` expressions; an `insert` failing with 42501 usually means the
   `with check` does not hold for the new row (e.g. the owner column is not `auth.uid()`).
4. Propose the smallest policy or grant change, as a migration (`apply_migration`), and
   re-run step 3. Do not disable RLS and do not switch the app to the service key.
"""


_TABLE = types.PromptArgument(name="table", description="table name in public", required=True)
PROMPTS = {
    p.name: p
    for p in (
        _Prompt(
            "design_table_with_rls",
            "Design a new table with keys, indexes and fast, correct RLS policies; apply it as "
            "a migration and prove it as two users.",
            [
                _TABLE,
                types.PromptArgument(name="purpose", description="what the table holds"),
            ],
            _design_table,
        ),
        _Prompt(
            "debug_rls_denial",
            "Find out why a user cannot see or write rows of a table (policies, grants, "
            "checks), reproducing it as that user.",
            [_TABLE],
            _debug_denial,
        ),
    )
}


def prompt_handlers() -> dict[str, Any]:
    """The `Server(...)` keyword arguments for prompts/list and prompts/get."""

    async def list_prompts(
        rctx: ServerRequestContext[Any], params: types.PaginatedRequestParams | None
    ) -> types.ListPromptsResult:
        return types.ListPromptsResult(
            prompts=[
                types.Prompt(name=p.name, description=p.description, arguments=p.arguments)
                for p in PROMPTS.values()
            ]
        )

    async def get_prompt(
        rctx: ServerRequestContext[Any], params: types.GetPromptRequestParams
    ) -> types.GetPromptResult:
        prompt = PROMPTS.get(params.name)
        if prompt is None:
            raise invalid_params(f"no prompt '{params.name}'")
        args = dict(params.arguments or {})
        for a in prompt.arguments:
            if a.required and not args.get(a.name):
                raise invalid_params(f"prompt '{prompt.name}' needs the argument '{a.name}'")
        table = args.get("table", "")
        if table and not _NAME.fullmatch(table):
            raise invalid_params("table must be a plain SQL identifier (letters, digits, _)")
        args["purpose"] = args.get("purpose", "")[:500]
        text = prompt.render(args)
        return types.GetPromptResult(
            description=prompt.description,
            messages=[
                types.PromptMessage(role="user", content=types.TextContent(type="text", text=text))
            ],
        )

    return {"on_list_prompts": list_prompts, "on_get_prompt": get_prompt}

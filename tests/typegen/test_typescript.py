"""The TypeScript types: the CLI's shape, and type-checked by Deno against assertions of what
each column, function and helper type means (plus errors that must stay errors)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from supalite.typegen.typescript import lit
from tests.typegen.conftest import REPO

# Type-level assertions about the generated `Database`.  `@ts-expect-error` lines must error:
# if one compiled, Deno would fail with "Unused '@ts-expect-error' directive".
CHECK = r"""
import type {
  CompositeTypes, Database, Enums, Json, Tables, TablesInsert, TablesUpdate,
} from "./database.types.ts"
import { Constants } from "./database.types.ts"

type Equals<A, B> =
  (<T>() => T extends A ? 1 : 2) extends (<T>() => T extends B ? 1 : 2) ? true : false
function assert<T extends true>(): void {}

type Book = Tables<"books">
assert<Equals<Book["id"], number>>()
assert<Equals<Book["big"], number | null>>()
assert<Equals<Book["price"], number | null>>()
assert<Equals<Book["rating"], number | null>>()
assert<Equals<Book["title"], string>>()
assert<Equals<Book["code"], string | null>>()
assert<Equals<Book["isbn"], string | null>>()
assert<Equals<Book["published"], string | null>>()
assert<Equals<Book["at_timetz"], string | null>>()
assert<Equals<Book["local_ts"], string | null>>()
assert<Equals<Book["duration"], string | null>>()
assert<Equals<Book["cover"], string | null>>()
assert<Equals<Book["flag"], boolean | null>>()
assert<Equals<Book["meta"], Json>>()
assert<Equals<Book["raw"], Json | null>>()
assert<Equals<Book["tags"], string[]>>()
assert<Equals<Book["matrix"], number[] | null>>()
assert<Equals<Book["moods"], Database["public"]["Enums"]["mood"][] | null>>()
assert<Equals<Book["address"], CompositeTypes<"address"> | null>>()
assert<Equals<Book["positive"], number | null>>() // a domain: its base type
assert<Equals<Book["ip"], unknown>>()
assert<Equals<Book["span"], unknown>>()
assert<Equals<Book["weird-name"], string | null>>()
assert<Equals<Book["class"], string | null>>()
assert<Equals<Book["title_upper"], string | null>>()
assert<Equals<Book["title_length"], number | null>>() // a computed field
assert<Equals<Tables<"authors">["level"], Enums<{ schema: "other" }, "level">>>()
// Computed relationships: fields of the Row typed as the rows they return, one or many.
type BookRow = Omit<Book, "title_length">
assert<Equals<Tables<"authors">["book_list"], BookRow | null>>()
assert<Equals<Tables<"authors">["latest_book"], BookRow | null>>()
assert<Equals<Tables<"authors">["main_book"], BookRow | null>>()
// @ts-expect-error a table off the search_path gets no computed field (as the CLI)
type NoLabel = Tables<{ schema: "other" }, "items">["item_label"]

assert<Equals<Enums<"mood">, "happy" | "sad" | 'it\'s "complicated"'>>()
assert<Equals<Enums<"tricky">, "back\\slash" | "new\nline" | '"' | "*/ x">>()
assert<Equals<CompositeTypes<"address">["zip"], number | null>>()
assert<Equals<CompositeTypes<"address">["mood"], Enums<"mood"> | null>>()
assert<Equals<Tables<{ schema: "other" }, "items">["level"],
  Database["other"]["Enums"]["level"] | null>>()

// Insert and Update: what may and must be sent.
const minimal: TablesInsert<"books"> = { author_id: 1, title: "t" }
// @ts-expect-error title is NOT NULL without a default
const noTitle: TablesInsert<"books"> = { author_id: 1 }
// @ts-expect-error a number column takes no string
const badType: TablesInsert<"books"> = { author_id: "1", title: "t" }
const author: TablesInsert<"authors"> = { name: "Ann", level: "high" }
// @ts-expect-error GENERATED ALWAYS AS IDENTITY takes no value
const withId: TablesInsert<"authors"> = { id: 1, name: "Ann" }
// @ts-expect-error not a label of the enum
const badMood: TablesInsert<"authors"> = { name: "Ann", mood: "angry" }
const noChange: TablesUpdate<"books"> = {}
const byDefault: TablesInsert<"books"> = { author_id: 1, title: "t", seq: 5, id: 9 }
assert<Equals<TablesUpdate<"books">["title"], string | undefined>>()

// Views: an updatable one takes writes, the others do not.
assert<Equals<Tables<"author_stats">["books"], number | null>>()
assert<Equals<Tables<"book_index">["title"], string | null>>()
type Views = Database["public"]["Views"]
const viaView: Views["book_titles"]["Insert"] = { title: "t", author_id: 1 }
// @ts-expect-error an aggregate view has no Insert
type NoInsert = Views["author_stats"]["Insert"]
// @ts-expect-error a materialized view has no Update
type NoUpdate = Views["book_index"]["Update"]

// Functions, as supabase-js's rpc() reads them.
type Fns = Database["public"]["Functions"]
assert<Equals<Fns["add"]["Args"], { a: number; b?: number }>>()
assert<Equals<Fns["add"]["Returns"], number>>()
assert<Equals<Fns["books_by_author"]["Returns"], Omit<Book, "title_length">[]>>()
assert<Equals<Fns["books_by_author"]["SetofOptions"]["isSetofReturn"], true>>()
assert<Equals<Fns["first_book"]["Returns"], Omit<Book, "title_length">>>()
assert<Equals<Fns["first_book"]["SetofOptions"]["isOneToOne"], true>>()
assert<Equals<Fns["author_summary"]["Args"], { min_books?: number }>>()
assert<Equals<Fns["author_summary"]["Returns"],
  { author_id: number; book_count: number; moods: Enums<"mood">[] }[]>>()
assert<Equals<Fns["echo"]["Args"], { "": Json }>>()
assert<Equals<Fns["touch"]["Args"], never>>()
assert<Equals<Fns["touch"]["Returns"], undefined>>()
assert<Equals<Fns["mood_list"]["Returns"], Enums<"mood">[]>>()
assert<Equals<Fns["home"]["Returns"], CompositeTypes<"address">>>()
assert<Equals<Database["other"]["Functions"]["ping"]["Returns"], string>>()
assert<Equals<Fns["book_list"]["Args"], { "": Tables<"authors"> }>>()
assert<Equals<Fns["book_list"]["Returns"], BookRow[]>>()
assert<Equals<Fns["book_list"]["SetofOptions"],
  { from: "authors"; to: "books"; isOneToOne: false; isSetofReturn: true }>>()
assert<Equals<Fns["latest_book"]["Returns"], BookRow>>()
assert<Equals<Fns["latest_book"]["SetofOptions"],
  { from: "authors"; to: "books"; isOneToOne: true; isSetofReturn: true }>>()
assert<Equals<Fns["main_book"]["SetofOptions"],
  { from: "authors"; to: "books"; isOneToOne: true; isSetofReturn: false }>>()
// A computed field: listed with the CLI's error, as PostgREST cannot call it by name.
assert<Equals<Fns["title_length"]["Returns"] extends { error: true } ? true : false, true>>()
type Pick = Fns["pick"] // same argument name, two types: PostgREST cannot choose
assert<Equals<Extract<Pick, { Args: { x: number } }>["Returns"] extends { error: true }
  ? true : false, true>>()
// @ts-expect-error one unnamed int argument: not callable through the Data API
type Skipped = Fns["skipped"]
// @ts-expect-error trigger functions are left out
type Trigger = Fns["on_change"]

// Relationships, for embedding in select().
type BookKeys = Database["public"]["Tables"]["books"]["Relationships"][number]
assert<Equals<Extract<BookKeys, { referencedRelation: "authors" }>["columns"], ["author_id"]>>()
assert<Equals<Extract<BookKeys, { referencedRelation: "authors" }>["isOneToOne"], false>>()
type ProfileKeys = Database["public"]["Tables"]["profiles"]["Relationships"][number]
assert<Equals<Extract<ProfileKeys, { referencedRelation: "authors" }>["isOneToOne"], true>>()
type ViewKeys = Views["book_titles"]["Relationships"][number]
assert<Equals<Extract<ViewKeys, { referencedRelation: "authors" }>["foreignKeyName"],
  "books_author_id_fkey">>()
type PartKeys = Database["other"]["Tables"]["parts"]["Relationships"][number]
assert<Equals<PartKeys["referencedRelation"], "items">>()

// Constants: the enums' labels as values.
const moods: readonly Enums<"mood">[] = Constants.public.Enums.mood
assert<Equals<typeof Constants.other.Enums.level, readonly ["low", "high"]>>()

// Nothing from a comment or a hostile name became code.
// @ts-expect-error no such export
import { pwned } from "./database.types.ts"

export { author, badMood, badType, byDefault, minimal, moods, noChange, noTitle, pwned, viaView,
  withId }
"""

# The same `Database` through supabase-js's own query-builder types (postgrest-js, as installed
# for the compat tests): selects with embedding (many-to-one, one-to-many, one-to-one, through a
# view), rpc() and schema() are typed from it as the client types them for the CLI's file.
CLIENT = r"""
import type { PostgrestClient } from "./postgrest.d.mts"
import type { Database, Enums } from "./database.types.ts"

type Equals<A, B> =
  (<T>() => T extends A ? 1 : 2) extends (<T>() => T extends B ? 1 : 2) ? true : false
function assert<T extends true>(): void {}
type Data<Q> = NonNullable<Awaited<Q> extends { data: infer D } ? D : never>

declare const db: PostgrestClient<Database>
const books = db.from("books").select("title, price, author:authors(name, mood)")
type Book = Data<typeof books>[number]
assert<Equals<Book["title"], string>>()
assert<Equals<Book["price"], number | null>>()
assert<Equals<Book["author"], { name: string; mood: Enums<"mood"> | null }>>()
const authors = db.from("authors").select("name, books(title), profiles(bio)")
type Author = Data<typeof authors>[number]
assert<Equals<Author["books"], { title: string }[]>>()
assert<Equals<Author["profiles"], { bio: string | null } | null>>()
const viaView = db.from("book_titles").select("title, authors(name)")
// Computed relationships, resolved through the functions' SetofOptions.
const computed = db.from("authors").select("book_list(title), latest_book(title), main_book(title)")
type Computed = Data<typeof computed>[number]
assert<Equals<Computed["book_list"], { title: string }[]>>()
assert<Equals<Computed["latest_book"], { title: string } | null>>()
assert<Equals<Computed["main_book"], { title: string | null }>>() // PostgREST: an object of nulls
assert<Equals<Data<typeof viaView>[number]["authors"], { name: string } | null>>()
const sum = db.rpc("add", { a: 1 })
assert<Equals<Data<typeof sum>, number>>()
const summary = db.rpc("author_summary", {})
assert<Equals<Data<typeof summary>[number]["book_count"], number>>()
const items = db.schema("other").from("items").select("level")
assert<Equals<Data<typeof items>[number]["level"], "low" | "high" | null>>()
// @ts-expect-error a number column takes no string
db.from("books").insert({ author_id: "1", title: "t" })
// @ts-expect-error GENERATED ALWAYS identity
db.from("authors").insert({ id: 1, name: "n" })
// @ts-expect-error wrong argument type
db.rpc("add", { a: "x" })
// @ts-expect-error trigger functions cannot be called
db.rpc("on_change")
export { authors, books, computed, items, sum, summary, viaView }
"""
POSTGREST_TYPES = REPO / "tests/compat/js/node_modules/@supabase/postgrest-js/dist/index.d.mts"

# One plain error: Deno must reject it, naming the column.
BAD = """
import type { TablesInsert } from "./database.types.ts"
export const row: TablesInsert<"books"> = { author_id: 1, title: 42 }
"""


def deno_check(deno: str, folder: Path, name: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DENO_DIR": str(folder / ".deno"), "NO_COLOR": "1"}
    return subprocess.run(
        [deno, "check", "--no-remote", "--no-npm", "--no-config", name],
        cwd=folder, env=env, capture_output=True, text=True, timeout=180,
    )  # fmt: skip


def test_types_compile_and_mean_what_they_say(ts_source: str, deno: str, tmp_path: Path) -> None:
    (tmp_path / "database.types.ts").write_text(ts_source)
    (tmp_path / "check.ts").write_text(CHECK)
    r = deno_check(deno, tmp_path, "check.ts")
    assert r.returncode == 0, r.stdout + r.stderr


def test_supabase_js_types_read_it(ts_source: str, deno: str, tmp_path: Path) -> None:
    assert POSTGREST_TYPES.is_file(), "run `make test-deps` (npm install in tests/compat/js)"
    shutil.copy(POSTGREST_TYPES, tmp_path / "postgrest.d.mts")
    (tmp_path / "database.types.ts").write_text(ts_source)
    (tmp_path / "client.ts").write_text(CLIENT)
    r = deno_check(deno, tmp_path, "client.ts")
    assert r.returncode == 0, r.stdout + r.stderr


def test_a_wrong_row_does_not_compile(ts_source: str, deno: str, tmp_path: Path) -> None:
    (tmp_path / "database.types.ts").write_text(ts_source)
    (tmp_path / "bad.ts").write_text(BAD)
    r = deno_check(deno, tmp_path, "bad.ts")
    assert r.returncode != 0
    assert "TS2322" in r.stderr and "title" in r.stderr, r.stderr


def test_the_cli_shape(ts_source: str) -> None:
    """The file reads as `supabase gen types typescript` prints it."""
    assert ts_source.startswith("export type Json =\n  | string\n")
    assert "\nexport type Database = {\n  other: {\n    Tables: {\n" in ts_source
    for section in ("Tables", "Views", "Functions", "Enums", "CompositeTypes"):
        assert f"\n    {section}: {{\n" in ts_source
    for helper in ("Tables<", "TablesInsert<", "TablesUpdate<", "Enums<", "CompositeTypes<"):
        assert f"\nexport type {helper}\n" in ts_source
    assert "\nexport const Constants = {\n" in ts_source and ts_source.endswith("} as const\n")
    # Sections without entries, as the CLI writes them.
    other = ts_source[ts_source.index("  other: {") : ts_source.index("  public: {")]
    assert "    Views: {\n      [_ in never]: never\n    }" in other
    assert "      ping: { Args: never; Returns: string }\n" in other
    assert '      level: "low" | "high"\n' in other
    # A table's four members, columns by name, writes optional where the database fills in.
    assert "      authors: {\n        Row: {\n          created_at: string\n" in ts_source
    assert "        Insert: {\n          created_at?: string\n" in ts_source
    assert "          id?: never\n" in ts_source
    assert '          "weird-name"?: string | null\n' in ts_source
    assert "      empty: {\n        Row: {}\n        Insert: {}\n        Update: {}\n" in ts_source
    assert (
        '            foreignKeyName: "profiles_author_id_fkey"\n'
        '            columns: ["author_id"]\n'
        "            isOneToOne: true\n"
        '            referencedRelation: "authors"\n'
        '            referencedColumns: ["id"]\n'
    ) in ts_source
    assert '      mood: ["happy", "sad", \'it\\\'s "complicated"\'],\n' in ts_source
    # Cross-schema keys are left out, as the CLI does (other.items → public.books).
    items = other[other.index("      items: {") : other.index("      parts: {")]
    assert "Relationships: []" in items


def test_no_comment_or_code_from_the_database(ts_source: str) -> None:
    evil_table, evil_column = lit('e"*/pwned=1;/*'), lit('c"}: never } //')
    rest = ts_source.replace(evil_table, "").replace(evil_column, "").replace('"*/ x"', "")
    assert "pwned" not in rest and "/*" not in rest and "*/" not in rest and "//" not in rest
    assert "import os" not in ts_source
    assert "      " + evil_table + ": {\n" in ts_source


def test_string_literals_as_prettier_writes_them() -> None:
    assert lit("plain") == '"plain"'
    assert lit('say "hi"') == "'say \"hi\"'"
    assert lit("it's") == '"it\'s"'
    assert lit('it\'s "x"') == "'it\\'s \"x\"'"
    assert lit('a\\"b') == "'a\\\\\"b'"
    assert lit("line\nbreak") == '"line\\nbreak"'

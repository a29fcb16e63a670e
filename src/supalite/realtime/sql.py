"""Every statement Realtime runs, in one place.  Values are always bind parameters; the
functions they call live in bootstrap steps 0006 (`realtime_authorize`, `realtime_publish`)
and 0009 (`realtime_rows`, `realtime_rls`)."""

from __future__ import annotations

PUBLISH = "select _supalite.realtime_publish(b) from unnest($1::text[]) with ordinality u(b, i)"
BUS_FETCH = "select body from _supalite.realtime_bus where id = $1"
BUS_PRUNE = "delete from _supalite.realtime_bus where created_at < now() - interval '5 minutes'"

NODE_BEAT = (
    "insert into _supalite.realtime_nodes (node) values ($1)"
    " on conflict (node) do update set seen_at = now()"
)
NODE_GONE = "delete from _supalite.realtime_nodes where node = $1"
# Processes not seen for a while are dead: their presences are removed (and announced) by
# whichever live process notices first.
REAP_NODES = """
with dead as (
  delete from _supalite.realtime_nodes where seen_at < now() - make_interval(secs => $1)
  returning node
)
delete from _supalite.realtime_presence p using dead where p.node = dead.node
returning p.topic, p.key, p.ref, p.meta::text
"""
REAP_ORPHANS = """
delete from _supalite.realtime_presence p
where not exists (select 1 from _supalite.realtime_nodes n where n.node = p.node)
returning p.topic, p.key, p.ref, p.meta::text
"""

PRESENCE_PUT = (
    "insert into _supalite.realtime_presence (topic, ref, key, node, meta)"
    " values ($1, $2, $3, $4, $5::jsonb)"
    " on conflict (topic, ref) do update set key = excluded.key, meta = excluded.meta"
)
PRESENCE_DEL = "delete from _supalite.realtime_presence where topic = $1 and ref = $2"
PRESENCE_DEL_NODE = "delete from _supalite.realtime_presence where node = $1"
PRESENCE_OTHERS = (
    "select key, ref, meta::text from _supalite.realtime_presence"
    " where topic = $1 and node <> $2 order by key, ref"
)

# ---------------------------------------------------------------- change capture

SLOT_EXISTS = (
    "select plugin from pg_replication_slots where slot_name = $1 and database = current_database()"
)
SLOT_CREATE = "select pg_create_logical_replication_slot($1, 'pgoutput')"
SLOT_PEEK = (
    "select lsn::text, data from pg_logical_slot_peek_binary_changes($1, NULL, $2,"
    " 'proto_version', '1', 'publication_names', 'supabase_realtime')"
)
# Where the WAL is written to (has anything happened since a read found nothing?), where it
# is flushed to (a read of the slot decodes at least that far), and whether the publication
# has any table to read changes of.
WAL_POSITION = (
    "select pg_current_wal_insert_lsn()::text, pg_current_wal_flush_lsn()::text,"
    " exists (select from pg_publication_tables where pubname = 'supabase_realtime')"
)
SLOT_ADVANCE = "select pg_replication_slot_advance($1, $2::text::pg_lsn)"
WAL_LEVEL = "select current_setting('wal_level')"
CAPTURED_LSN = "select commit_lsn::text from _supalite.realtime_capture where slot = $1"
CAPTURED_SET = (
    "insert into _supalite.realtime_capture (slot, commit_lsn) values ($1, $2::text::pg_lsn)"
    " on conflict (slot) do update set commit_lsn = excluded.commit_lsn"
)
CHANGES_STORE = (
    "insert into _supalite.realtime_changes (body)"
    " select b from unnest($1::jsonb[]) with ordinality u(b, i) order by i"
)
CHANGES_NOTIFY = "select pg_notify('supalite_realtime', '{\"k\":\"c\"}')"
CHANGES_PRUNE = (
    "delete from _supalite.realtime_changes where created_at < now() - interval '10 minutes'"
)
CHANGES_HEAD = "select coalesce(max(id), 0) from _supalite.realtime_changes"
CHANGES_AFTER = (
    "select id, body::text from _supalite.realtime_changes where id > $1 order by id limit $2"
)

# Who sees a batch of one table's changes (bootstrap step 0009): the rows, filters and readable
# columns once, and RLS per chunk of distinct (role, claims).
ROWS = "select _supalite.realtime_rows($1::regclass, $2::jsonb, $3::jsonb, $4::text[])::text"
RLS = "select _supalite.realtime_rls($1::regclass, $2::jsonb, $3::jsonb)::text"
# Does the subscribed table exist (and which columns does it have)?
TABLE_COLUMNS = """
select a.attname from pg_catalog.pg_attribute a
join pg_catalog.pg_class c on c.oid = a.attrelid
join pg_catalog.pg_namespace n on n.oid = c.relnamespace
where n.nspname = $1 and c.relname = $2 and a.attnum > 0 and not a.attisdropped
"""
REL_ID = "select format('%I.%I', $1::text, $2::text)::regclass::oid"

AUTHORIZE = "select _supalite.realtime_authorize($1, $2, $3, $4::text[])::text"

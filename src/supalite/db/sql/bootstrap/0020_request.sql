-- The first statement of every API request (db/request.py): clear what the connection's
-- previous request left on the session, then put this request's settings in place.
--
-- API connections are reset here, when a request starts, rather than when they go back to
-- the pool: the reset and the settings then travel in one round trip.  The reset is what
-- asyncpg's pool would run (RESET ALL, advisory locks, cursors, LISTENs) plus RESET ROLE,
-- which RESET ALL leaves alone.  It runs as whatever role the previous request left, so any
-- role may call it; it gives none any power it lacks (RESET ROLE is open to every role, and
-- a role can then only become what the connection's login role may become).
create schema if not exists _supalite_request;
revoke all on schema _supalite_request from public;
grant usage on schema _supalite_request to public;

create or replace function _supalite_request.begin(
  search_path text, role text, claims text, method text, path text, headers text,
  read_only text, local boolean
) returns void language plpgsql as $$
begin
  execute 'reset all';
  execute 'reset role';
  perform pg_advisory_unlock_all();
  execute 'close all';
  execute 'unlisten *';
  perform set_config('search_path', search_path, local),
          set_config('role', role, local),
          set_config('request.jwt.claims', claims, local),
          set_config('request.method', method, local),
          set_config('request.path', path, local),
          set_config('request.headers', headers, local);
  if not local then
    -- One statement, its own transaction: read-only applies to the next one.
    perform set_config('default_transaction_read_only', read_only, false);
  end if;
end $$;

revoke all on function _supalite_request.begin(text, text, text, text, text, text, text, boolean)
  from public;
grant execute on function _supalite_request.begin(text, text, text, text, text, text, text, boolean)
  to public;

-- Reads that repeat the settings of the connection's previous read skip setting them again
-- (db/request.py): one round trip instead of two.  Safe because every read statement also
-- returns `settings()`, a digest of the settings it ran under, and the server compares it with
-- the digest `enter()` returned when it last set them: if anything changed them in between (a
-- function of the previous request setting `request.jwt.claims` for the session, say), the
-- result is thrown away and the read is run again after `enter()`.  Reads run read-only, so a
-- discarded result has changed nothing.
create or replace function _supalite_request.settings() returns text
language sql stable as $$
  select md5(concat_ws(chr(31), current_user::text, current_setting('search_path'),
    current_setting('request.jwt.claims', true), current_setting('request.method', true),
    current_setting('request.path', true), current_setting('request.headers', true),
    current_setting('default_transaction_read_only')))
$$;

-- begin() (0020), then the digest of the settings it put in place.
create or replace function _supalite_request.enter(
  search_path text, role text, claims text, method text, path text, headers text,
  read_only text, local boolean
) returns text language plpgsql as $$
begin
  perform _supalite_request.begin(search_path, role, claims, method, path, headers, read_only,
                                  local);
  return _supalite_request.settings();
end $$;

grant execute on function _supalite_request.settings() to public;
grant execute on function _supalite_request.enter(text, text, text, text, text, text, text, boolean)
  to public;

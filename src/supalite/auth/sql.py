"""Every statement Auth runs, in one place.  Auth works on its own tables as their owner (the
admin pool), never through the API roles: apps see users only through their own tables."""

from __future__ import annotations

# The user row with what its JSON shape embeds: identities and factors as JSON arrays.
USER_COLUMNS = """
  u.*,
  coalesce((select json_agg(i order by i.created_at, i.id) from auth.identities i
            where i.user_id = u.id), '[]')::text as identities_json,
  coalesce((select json_agg(f order by f.created_at, f.id) from auth.mfa_factors f
            where f.user_id = u.id), '[]')::text as factors_json
"""

USER_BY_ID = f"select {USER_COLUMNS} from auth.users u where u.id = $1"
USER_BY_ID_FOR_UPDATE = f"select {USER_COLUMNS} from auth.users u where u.id = $1 for update"
USER_BY_EMAIL = f"""
select {USER_COLUMNS} from auth.users u
where lower(u.email) = lower($1) and u.aud = $2 and u.is_sso_user = false
"""
USER_BY_EMAIL_CHANGE = f"""
select {USER_COLUMNS} from auth.users u where lower(u.email_change) = lower($1)
"""
USER_BY_EMAIL_OR_CHANGE = f"""
select {USER_COLUMNS} from auth.users u
where (lower(u.email) = lower($1) or lower(u.email_change) = lower($1)) and u.aud = $2
order by (lower(u.email_change) = lower($1)) desc limit 1
"""
USER_BY_PHONE = f"select {USER_COLUMNS} from auth.users u where u.phone = $1 and u.aud = $2"

USER_BY_TOKEN = {
    "confirmation": f"select {USER_COLUMNS} from auth.users u where u.confirmation_token = $1",
    "recovery": f"select {USER_COLUMNS} from auth.users u where u.recovery_token = $1",
    "confirmation_or_recovery": f"""
        select {USER_COLUMNS} from auth.users u
        where u.confirmation_token = $1 or u.recovery_token = $1""",
    "email_change": f"""
        select {USER_COLUMNS} from auth.users u
        where u.email_change_token_current = $1 or u.email_change_token_new = $1""",
}

INSERT_USER = """
insert into auth.users (
  instance_id, id, aud, role, email, encrypted_password, email_confirmed_at, invited_at,
  raw_app_meta_data, raw_user_meta_data, is_super_admin, created_at, updated_at, phone,
  phone_confirmed_at, is_anonymous, confirmation_token, recovery_token,
  email_change_token_new, email_change, email_change_token_current, reauthentication_token,
  phone_change, phone_change_token)
values ('00000000-0000-0000-0000-000000000000', $1, $2, $3, $4, $5, $6, $7, $8::jsonb,
  $9::jsonb, false, now(), now(), $10, $11, $12, '', '', '', '', '', '', '', '')
"""

INSERT_IDENTITY = """
insert into auth.identities (provider_id, user_id, identity_data, provider, last_sign_in_at,
                             created_at, updated_at)
values ($1, $2, $3::jsonb, $4, now(), now(), now())
on conflict (provider_id, provider) do update
  set identity_data = auth.identities.identity_data || excluded.identity_data,
      updated_at = now()
"""

UPDATE_IDENTITY_EMAIL = """
update auth.identities
   set identity_data = identity_data || jsonb_build_object('email', $2::text,
                                                          'email_verified', $3::boolean),
       updated_at = now()
 where user_id = $1 and provider = 'email'
"""

# ------------------------------------------------------------------ sessions and tokens

INSERT_SESSION = """
insert into auth.sessions (id, user_id, created_at, updated_at, aal, user_agent, ip, factor_id)
values ($1, $2, now(), now(), $3::auth.aal_level, $4, $5::inet, $6)
"""

INSERT_AMR = """
insert into auth.mfa_amr_claims (session_id, created_at, updated_at, authentication_method, id)
values ($1, now(), now(), $2, gen_random_uuid())
on conflict (session_id, authentication_method) do update set updated_at = now()
"""

SESSION_AMR = """
select authentication_method as method, extract(epoch from updated_at)::bigint as timestamp
from auth.mfa_amr_claims where session_id = $1 order by updated_at desc
"""

SESSION_BY_ID = "select * from auth.sessions where id = $1"

UPGRADE_SESSION = """
update auth.sessions set aal = $2::auth.aal_level, factor_id = $3, updated_at = now()
where id = $1
"""

INSERT_REFRESH_TOKEN = """
insert into auth.refresh_tokens (instance_id, token, user_id, revoked, created_at, updated_at,
                                 parent, session_id)
values ('00000000-0000-0000-0000-000000000000', $1, $2, false, now(), now(), $3, $4)
"""

REFRESH_TOKEN_FOR_UPDATE = """
select t.*, extract(epoch from now() - t.updated_at) as age
from auth.refresh_tokens t where t.token = $1 for update
"""

ACTIVE_CHILD_TOKEN = """
select token from auth.refresh_tokens
where session_id = $1 and parent = $2 and revoked = false
order by id desc limit 1
"""

# The refresh grant's common case in one statement (one round trip, its own transaction):
# the presented token is live, its session exists and its user is not banned, so it is revoked,
# its child inserted, the session touched and the audit row written together.  No row back
# means "not the common case" (unknown, revoked, banned, no session); the caller then takes
# the statement-by-statement path that tells these apart.  A concurrent refresh of the same
# token waits on the row lock and then finds it revoked, so a token rotates exactly once.
# The audit payload is GoTrue's shape, as `context.audit` writes it for every other event.
REFRESH_ROTATE = f"""
with t as (
  select id, token, user_id, session_id from auth.refresh_tokens
  where token = $1 and revoked = false
  for update
), u as (
  select {USER_COLUMNS} from auth.users u, t
  where u.id = case when t.user_id ~* '^[0-9a-f]{{8}}-([0-9a-f]{{4}}-){{3}}[0-9a-f]{{12}}$'
                    then t.user_id::uuid end
    and (u.banned_until is null or u.banned_until <= now())
), s as (
  select s.id, s.aal from auth.sessions s, t where s.id = t.session_id
), ok as (
  select t.* from t, s where exists (select from u)
), revoke as (
  update auth.refresh_tokens r set revoked = true, updated_at = now()
  from ok where r.id = ok.id
), child as (
  insert into auth.refresh_tokens (instance_id, token, user_id, revoked, created_at, updated_at,
                                   parent, session_id)
  select '00000000-0000-0000-0000-000000000000', $2, ok.user_id, false, now(), now(),
         ok.token, ok.session_id
  from ok
), touch as (
  update auth.sessions x set refreshed_at = now(), updated_at = now()
  from ok where x.id = ok.session_id
), logged as (
  insert into auth.audit_log_entries (instance_id, id, payload, created_at, ip_address)
  select '00000000-0000-0000-0000-000000000000', gen_random_uuid(),
         json_build_object('action', 'token_refreshed', 'log_type', 'token',
                           'actor_id', u.id::text,
                           'actor_username', coalesce(nullif(u.email, ''), nullif(u.phone, ''), ''),
                           'actor_via_sso', false),
         clock_timestamp(), $3
  from u, ok
)
select u.*, s.id as rotated_session_id, s.aal as rotated_aal,
       coalesce((select json_agg(json_build_object(
                   'method', c.authentication_method,
                   'timestamp', extract(epoch from c.updated_at)::bigint)
                 order by c.updated_at desc)
                 from auth.mfa_amr_claims c where c.session_id = s.id), '[]')::text as amr_json
from u, s
"""

REVOKE_TOKEN = "update auth.refresh_tokens set revoked = true, updated_at = now() where id = $1"

# Revoking a family leaves updated_at alone: the reuse interval counts from each token's own
# last use, so a revoked family cannot be revived by presenting its newest member at once.
REVOKE_SESSION_TOKENS = """
update auth.refresh_tokens set revoked = true where session_id = $1 and revoked = false
"""

TOUCH_SESSION = "update auth.sessions set refreshed_at = now(), updated_at = now() where id = $1"

DELETE_SESSION = "delete from auth.sessions where id = $1"
DELETE_USER_SESSIONS = "delete from auth.sessions where user_id = $1"
DELETE_OTHER_SESSIONS = "delete from auth.sessions where user_id = $1 and id <> $2"

SIGNED_IN = """
update auth.users set last_sign_in_at = now(), updated_at = now() where id = $1;
"""
IDENTITY_SIGNED_IN = """
update auth.identities set last_sign_in_at = now() where user_id = $1 and provider = $2
"""

# ------------------------------------------------------------------ PKCE

INSERT_FLOW_STATE = """
insert into auth.flow_state (id, user_id, auth_code, code_challenge_method, code_challenge,
                             provider_type, authentication_method, created_at, updated_at)
values (gen_random_uuid(), $1, $2, $3::auth.code_challenge_method, $4, $5, $6, now(), now())
"""

ISSUE_AUTH_CODE = """
update auth.flow_state set auth_code_issued_at = now(), updated_at = now()
where id = (select id from auth.flow_state
            where user_id = $1 and authentication_method = $2
            order by created_at desc limit 1)
returning auth_code
"""

FLOW_STATE_BY_CODE = """
select *, extract(epoch from now() - coalesce(auth_code_issued_at, created_at)) as age
from auth.flow_state where auth_code = $1 for update
"""

DELETE_FLOW_STATE = "delete from auth.flow_state where id = $1"

# ------------------------------------------------------------------ audit log

# clock_timestamp(), not now(): the events of one transaction keep their order, as GoTrue's
# entries (each stamped when written) do.
AUDIT = """
insert into auth.audit_log_entries (instance_id, id, payload, created_at, ip_address)
values ('00000000-0000-0000-0000-000000000000', gen_random_uuid(), $1::json, clock_timestamp(),
        $2)
"""

# ------------------------------------------------------------------ hook

CALL_HOOK = "select {fn}($1::jsonb)::text"

# ------------------------------------------------------------------ one-time tokens
# (metadata merges follow GoTrue: top-level keys are set, a key set to null is removed)
# The token column and its sent-at column for each kind of emailed secret (fixed names).

SET_TOKEN = {
    kind: f"update auth.users set {col} = $2, {sent} = now(), updated_at = now() where id = $1"
    for kind, (col, sent) in {
        "confirmation": ("confirmation_token", "confirmation_sent_at"),
        "recovery": ("recovery_token", "recovery_sent_at"),
        "reauthentication": ("reauthentication_token", "reauthentication_sent_at"),
    }.items()
}

SET_EMAIL_CHANGE = """
update auth.users
   set email_change = $2, email_change_token_new = $3, email_change_token_current = $4,
       email_change_sent_at = now(), email_change_confirm_status = 0, updated_at = now()
 where id = $1
"""

UPSERT_ONE_TIME_TOKEN = """
insert into auth.one_time_tokens (id, user_id, token_type, token_hash, relates_to)
values (gen_random_uuid(), $1, $2::auth.one_time_token_type, $3, $4)
on conflict (user_id, token_type) do update
  set token_hash = excluded.token_hash, relates_to = excluded.relates_to, updated_at = now()
"""

CLEAR_ONE_TIME_TOKENS = """
delete from auth.one_time_tokens
where user_id = $1 and token_type = any($2::auth.one_time_token_type[])
"""

CONFIRM_EMAIL = """
update auth.users
   set email_confirmed_at = coalesce(email_confirmed_at, now()), confirmation_token = '',
       updated_at = now()
 where id = $1
"""

CLEAR_RECOVERY = """
update auth.users set recovery_token = '', updated_at = now() where id = $1
"""

CLEAR_REAUTHENTICATION = """
update auth.users set reauthentication_token = '', updated_at = now() where id = $1
"""

EMAIL_CHANGE_HALF_CONFIRMED = """
update auth.users
   set email_change_confirm_status = 1,
       email_change_token_current = case when email_change_token_current = $2 then ''
                                         else email_change_token_current end,
       email_change_token_new = case when email_change_token_new = $2 then ''
                                     else email_change_token_new end,
       updated_at = now()
 where id = $1
"""

APPLY_EMAIL_CHANGE = """
update auth.users
   set email = email_change, email_confirmed_at = now(), email_change = '',
       email_change_token_current = '', email_change_token_new = '',
       email_change_confirm_status = 0, is_anonymous = false, updated_at = now(),
       raw_app_meta_data = coalesce(raw_app_meta_data, '{}'::jsonb)
         || jsonb_build_object('provider', coalesce(raw_app_meta_data ->> 'provider', 'email'),
                               'providers', (select coalesce(jsonb_agg(distinct p), '["email"]')
                                               from jsonb_array_elements_text(
                                                 coalesce(raw_app_meta_data -> 'providers', '[]')
                                                 || '["email"]') p))
 where id = $1
returning email
"""

SET_PASSWORD = """
update auth.users set encrypted_password = $2, updated_at = now() where id = $1
"""

MERGE_USER_METADATA = """
update auth.users
   set raw_user_meta_data = (coalesce(raw_user_meta_data, '{}'::jsonb) || $2::jsonb)
         - coalesce((select array_agg(key) from jsonb_each($2::jsonb)
                     where value = 'null'::jsonb), '{}'::text[]),
       updated_at = now()
 where id = $1
"""

MERGE_APP_METADATA = """
update auth.users
   set raw_app_meta_data = (coalesce(raw_app_meta_data, '{}'::jsonb) || $2::jsonb)
         - coalesce((select array_agg(key) from jsonb_each($2::jsonb)
                     where value = 'null'::jsonb), '{}'::text[]),
       updated_at = now()
 where id = $1
"""

USER_EMAIL_TAKEN = """
select exists (select 1 from auth.users
               where lower(email) = lower($1) and aud = $2 and id <> $3 and is_sso_user = false)
"""

# ------------------------------------------------------------------ admin

COUNT_USERS = "select count(*) from auth.users where aud = $1"

# GoTrue's audit search: $1 the scope (author, action, type or null), $2 an ILIKE pattern.
_AUDIT_WHERE = """
where instance_id = '00000000-0000-0000-0000-000000000000' and case $1::text
  when 'author' then payload->>'actor_username' ilike $2 or payload->>'actor_name' ilike $2
  when 'action' then payload->>'action' ilike $2
  when 'type' then payload->>'log_type' ilike $2
  else true end
"""
COUNT_AUDIT = "select count(*) from auth.audit_log_entries" + _AUDIT_WHERE
LIST_AUDIT = f"""
select instance_id, id, payload::text as payload, created_at, ip_address
from auth.audit_log_entries {_AUDIT_WHERE}
order by created_at desc, id limit $3 offset $4
"""
LIST_USERS = f"""
select {USER_COLUMNS} from auth.users u where u.aud = $1
order by u.created_at desc, u.id limit $2 offset $3
"""
ADMIN_UPDATE_USER = """
update auth.users set
  email = coalesce($2, email),
  encrypted_password = coalesce($3, encrypted_password),
  email_confirmed_at = case when $4 then coalesce(email_confirmed_at, now())
                            when $4 = false then null else email_confirmed_at end,
  role = coalesce($5, role),
  banned_until = case when $6 then $7 else banned_until end,
  phone = coalesce($8, phone),
  phone_confirmed_at = case when $9 then coalesce(phone_confirmed_at, now())
                            when $9 = false then null else phone_confirmed_at end,
  updated_at = now()
where id = $1
"""
DELETE_USER = "delete from auth.users where id = $1"
SOFT_DELETE_USER = """
update auth.users set
  deleted_at = now(), updated_at = now(), encrypted_password = '',
  email = case when email is null then null else 'deleted-' || id || '@deleted.invalid' end,
  phone = null, confirmation_token = '', recovery_token = '', email_change = '',
  email_change_token_current = '', email_change_token_new = '', reauthentication_token = '',
  raw_app_meta_data = '{}', raw_user_meta_data = '{}'
where id = $1
"""
DELETE_USER_IDENTITIES = "delete from auth.identities where user_id = $1"
SET_INVITED = """
update auth.users set invited_at = coalesce(invited_at, now()), updated_at = now() where id = $1
"""

# ------------------------------------------------------------------ MFA

USER_FACTORS = "select * from auth.mfa_factors where user_id = $1 order by created_at, id"
FACTOR_FOR_USER = "select * from auth.mfa_factors where id = $1 and user_id = $2"
INSERT_FACTOR = """
insert into auth.mfa_factors (id, user_id, friendly_name, factor_type, status, created_at,
                              updated_at, secret)
values ($1, $2, $3, $4::auth.factor_type, 'unverified', now(), now(), $5)
returning *
"""
DELETE_FACTOR = "delete from auth.mfa_factors where id = $1 returning *"
DELETE_UNVERIFIED_FACTORS = """
delete from auth.mfa_factors where user_id = $1 and status = 'unverified'
  and created_at < now() - interval '1 day'
"""
VERIFY_FACTOR = """
update auth.mfa_factors set status = 'verified', updated_at = now() where id = $1
"""
INSERT_CHALLENGE = """
insert into auth.mfa_challenges (id, factor_id, created_at, ip_address)
values ($1, $2, now(), coalesce($3::inet, '0.0.0.0'::inet))
returning id, created_at
"""
TOUCH_FACTOR_CHALLENGED = """
update auth.mfa_factors set last_challenged_at = now() where id = $1
"""
CHALLENGE_FOR_UPDATE = """
select *, extract(epoch from now() - created_at) as age
from auth.mfa_challenges where id = $1 and factor_id = $2 for update
"""
CHALLENGE_VERIFIED = "update auth.mfa_challenges set verified_at = now() where id = $1"
ACTIVE_SESSION_TOKEN = """
select * from auth.refresh_tokens where session_id = $1 and revoked = false
order by id desc limit 1 for update
"""

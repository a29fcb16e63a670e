-- The built-in mail catcher: where Auth's emails go when no SMTP server is configured, so a
-- developer can read confirmation links and codes (`supalite mail`, GET /inbox/v1/messages).
-- In the database rather than in memory so that every supalite process of a fleet shares one
-- inbox.  Only the owner reads it: magic links are credentials.

create table if not exists _supalite.mail_inbox (
  id bigserial primary key,
  created_at timestamptz not null default now(),
  recipient text not null,
  subject text not null,
  html text not null,
  text text not null,
  kind text not null
);

create index if not exists mail_inbox_recipient_idx
  on _supalite.mail_inbox (lower(recipient), id desc);

revoke all on _supalite.mail_inbox from public;

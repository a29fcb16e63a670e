"""Every statement the cron scheduler sends.  Tables are pg_cron's (`cron.job`,
`cron.job_run_details`) plus supalite's claim table; see db/sql/bootstrap/0004_cron.sql."""

from __future__ import annotations

# The emulation is in use: no real pg_cron (the emulation's own pg_extension row has version
# 'supalite'), and the `cron` schema is the one supalite made.
EMULATION_IN_USE = """
select not exists (select 1 from pg_extension
                    where extname = 'pg_cron' and extversion <> 'supalite')
   and coalesce(obj_description((select oid from pg_namespace where nspname = 'cron'),
                                'pg_namespace'), '') like 'supalite:%'
   and to_regclass('_supalite.cron_claims') is not null
"""

SERVER_INFO = """
select current_database() as database,
       pg_postmaster_start_time() as started,
       (select rolsuper from pg_roles where rolname = current_user) as superuser
"""

LOAD_JOBS = """
select jobid, schedule from cron.job where active order by jobid
"""

# Runs left 'starting'/'running' by a supalite process that died: their connection is gone.
# pg_cron marks them 'server restarted' when it starts; with several processes sharing the
# database only the dead connections can be told apart.
MARK_LOST_RUNS = """
update cron.job_run_details d
   set status = 'failed', return_message = 'job connection lost', end_time = now()
 where d.status in ('starting', 'running')
   and not exists (select 1 from pg_stat_activity a where a.pid = d.job_pid)
"""

# A session-level advisory lock per job, held by the connection running it, so a job still
# running (in any process) is not started again.  The two-int form keeps clear of the bigint
# keys applications use.
TRY_RUN_LOCK = "select pg_try_advisory_lock($1::int, $2::int)"

# Claim (job, scheduled time) and open its run record in one statement: the first process to
# insert the claim runs the job, and a job unscheduled (or rescheduled) before this statement
# started is not run.  $1 jobid, $2 scheduled time, $3 schedule as loaded, $4 who claims.
CLAIM_RUN = """
with job as (
  select jobid, database, username, command from cron.job
   where jobid = $1 and active and schedule = $3
), claim as (
  insert into _supalite.cron_claims (jobid, scheduled_at, claimed_by)
  select jobid, $2, $4 from job
  on conflict do nothing
  returning jobid
)
insert into cron.job_run_details (jobid, job_pid, database, username, command, status)
select job.jobid, pg_backend_pid(), job.database, job.username, job.command, 'starting'
  from job join claim using (jobid)
returning runid, database, username, command
"""

MARK_RUNNING = """
update cron.job_run_details set status = 'running', start_time = now() where runid = $1
"""

# The job's session: pg_cron's application name, the timeout, the scheduled time (for
# commands that want it), then the job's user.  $1 statement_timeout, $2 scheduled time.
PREPARE_SESSION = """
select set_config('application_name', 'pg_cron', false),
       set_config('statement_timeout', $1, false),
       set_config('supalite.cron_scheduled_at', $2, false)
"""
AS_SESSION_USER = "select set_config('session_authorization', $1, false)"
AS_ROLE = "select set_config('role', $1, false)"

FINISH_RUN = """
update cron.job_run_details
   set status = $2, return_message = $3, start_time = coalesce(start_time, now()),
       end_time = now()
 where runid = $1
"""

PRUNE_CLAIMS = """
delete from _supalite.cron_claims
 where scheduled_at < now() - interval '1 hour' and scheduled_at <> pg_postmaster_start_time()
"""

LISTEN_CHANNEL = "supalite_cron"

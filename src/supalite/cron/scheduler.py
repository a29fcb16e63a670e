"""The scheduler that runs the `cron` emulation's jobs: one asyncio task per supalite process.

Every process that shares a database runs one; the database decides who runs what.  At each
due time the processes race to insert (job, scheduled time) into `_supalite.cron_claims`; the
insert that wins opens the run record in the same statement, so each job runs exactly once per
scheduled time however many processes tick.  A job that is still running holds a session-level
advisory lock on its own connection, so no process starts it again until it finishes (pg_cron
would queue that run; supalite skips it).  A process that dies drops its connections, which
releases the locks and rolls back whatever its jobs had not committed.

Jobs are read from `cron.job` at every tick, and a trigger on it wakes the schedulers at once
(NOTIFY supalite_cron), so jobs scheduled by SQL need no restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import socket
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from supalite.config import CronSettings
from supalite.cron import sql
from supalite.cron.schedule import (
    CronSchedule,
    IntervalSchedule,
    RebootSchedule,
    Schedule,
    ScheduleError,
    parse,
)

log = logging.getLogger("supalite.cron")

_LOCK_CLASS = 0x43524F4E  # "CRON": first key of the per-job advisory locks
_CATCH_UP = timedelta(minutes=5)  # a tick that comes late still runs what fell due meanwhile
_SHUTDOWN_GRACE = 5.0  # seconds a running job gets to finish when supalite stops
_CONNECT_TIMEOUT = 10.0


@dataclass(frozen=True)
class Job:
    jobid: int
    schedule_text: str
    schedule: Schedule


def due_slot(schedule: Schedule, after: datetime, now: datetime) -> datetime | None:
    """The latest time in (after, now] at which `schedule` falls due, if any."""
    after = max(after, now - _CATCH_UP)
    if isinstance(schedule, IntervalSchedule):
        slot = datetime.fromtimestamp(
            int(now.timestamp()) // schedule.seconds * schedule.seconds, UTC
        )
        return slot if slot > after else None
    if isinstance(schedule, CronSchedule):
        minute = now.replace(second=0, microsecond=0)
        while minute > after:
            if schedule.matches(minute):
                return minute
            minute -= timedelta(minutes=1)
    return None


def run_message(status: str) -> str:
    """What pg_cron records for a command that succeeded: the command tag, or "N rows" for
    a query that returned rows (asyncpg reports those as `SELECT N`)."""
    if status.startswith("SELECT "):
        n = status.removeprefix("SELECT ")
        return f"{n} row" if n == "1" else f"{n} rows"
    return status or "0 rows"


def error_message(e: BaseException) -> str:
    """What pg_cron records for a command that failed: libpq's error text."""
    if isinstance(e, asyncpg.PostgresError):
        text = f"{getattr(e, 'severity', None) or 'ERROR'}:  {e.args[0] if e.args else e}\n"
        if getattr(e, "detail", None):
            text += f"DETAIL:  {e.detail}\n"
        if getattr(e, "hint", None):
            text += f"HINT:  {e.hint}\n"
        return text
    return str(e) or type(e).__name__


def _lock_key(jobid: int) -> int:
    return (jobid + 2**31) % 2**32 - 2**31


class CronScheduler:
    """Start with `start()` (returns False, and does nothing, when the emulation is not in use
    or is disabled); `stop()` cancels the loop and gives running jobs a moment to finish."""

    def __init__(
        self,
        admin_url: str,
        pool: asyncpg.Pool,
        settings: CronSettings,
        *,
        shutdown_grace: float = _SHUTDOWN_GRACE,
    ) -> None:
        self.admin_url = admin_url
        self.pool = pool  # bookkeeping: short statements as the database owner
        self.settings = settings
        self.shutdown_grace = shutdown_grace
        self.node = f"{socket.gethostname()}:{os.getpid()}"
        self._task: asyncio.Task[None] | None = None
        self._running: dict[int, asyncio.Task[None]] = {}
        self._wake = asyncio.Event()
        self._listener: asyncpg.Connection | None = None
        self._database = ""
        self._started_at = datetime.now(UTC)
        self._superuser = False

    async def start(self) -> bool:
        if not self.settings.enabled:
            return False
        async with self.pool.acquire() as conn:
            if not await conn.fetchval(sql.EMULATION_IN_USE):
                return False
            info = await conn.fetchrow(sql.SERVER_INFO)
            await conn.execute(sql.MARK_LOST_RUNS)
        self._database = info["database"]
        self._started_at = info["started"]
        self._superuser = bool(info["superuser"])
        self._task = asyncio.create_task(self._loop(), name="supalite-cron")
        log.info("cron: scheduler running (%s)", self.node)
        return True

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        running = [t for t in self._running.values() if not t.done()]
        if running:
            _, pending = await asyncio.wait(running, timeout=self.shutdown_grace)
            for t in pending:
                t.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        if self._listener is not None:
            with contextlib.suppress(Exception):
                await self._listener.close()
            self._listener = None

    # ---------------------------------------------------------------- the loop

    async def _loop(self) -> None:
        last = datetime.now(UTC)
        reboot_done = False
        last_prune = last
        jobs: list[Job] = []
        while True:
            await self._ensure_listener()
            self._wake.clear()  # before reading: a change made from here on wakes the sleep
            try:
                jobs = await self._load_jobs()
            except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as e:
                log.warning("cron: cannot read cron.job: %s", e)
            now = datetime.now(UTC)
            if not reboot_done:
                for job in jobs:
                    if isinstance(job.schedule, RebootSchedule):
                        self._launch(job, self._started_at)
                reboot_done = True
            for job in jobs:
                slot = due_slot(job.schedule, last, now)
                if slot is not None:
                    self._launch(job, slot)
            last = now
            if now - last_prune >= timedelta(minutes=1):
                last_prune = now
                await self._prune()
            await self._sleep_until(self._next_tick(jobs, now))

    def _next_tick(self, jobs: list[Job], now: datetime) -> datetime:
        tick = now.replace(second=0, microsecond=0) + timedelta(minutes=1)
        for job in jobs:
            if isinstance(job.schedule, IntervalSchedule):
                tick = min(tick, job.schedule.next_after(now))
        return tick

    async def _sleep_until(self, tick: datetime) -> None:
        """Until `tick` or a change to cron.job, whichever comes first."""
        delay = (tick - datetime.now(UTC)).total_seconds() + 0.005  # never wake just before it
        # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancellation that
        # arrives as the event fires, and stop() would then wait for ever.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(max(delay, 0.005)):
                await self._wake.wait()

    async def _load_jobs(self) -> list[Job]:
        async with self.pool.acquire() as conn:
            rows = await conn.fetch(sql.LOAD_JOBS)
        jobs = []
        for r in rows:
            try:
                jobs.append(Job(r["jobid"], r["schedule"], parse(r["schedule"])))
            except ScheduleError:
                # Written straight into cron.job past the validator: never runs, as in pg_cron.
                log.warning("cron: invalid schedule for job %s: %s", r["jobid"], r["schedule"])
        return jobs

    async def _ensure_listener(self) -> None:
        if self._listener is not None and not self._listener.is_closed():
            return
        try:
            conn = await asyncpg.connect(
                self.admin_url,
                timeout=_CONNECT_TIMEOUT,
                server_settings={"application_name": "supalite cron"},
            )
            await conn.add_listener(sql.LISTEN_CHANNEL, self._notified)
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as e:
            log.warning("cron: cannot listen for job changes (polling each minute): %s", e)
            self._listener = None
            return
        self._listener = conn

    def _notified(self, *_: Any) -> None:
        self._wake.set()

    async def _prune(self) -> None:
        try:
            async with self.pool.acquire() as conn:
                await conn.execute(sql.PRUNE_CLAIMS)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as e:
            log.warning("cron: cannot prune claims: %s", e)

    # ---------------------------------------------------------------- one run

    def _launch(self, job: Job, slot: datetime) -> None:
        current = self._running.get(job.jobid)
        if current is not None and not current.done():
            return  # still running here; the advisory lock covers the other processes
        task = asyncio.create_task(self.run_once(job, slot), name=f"supalite-cron-{job.jobid}")
        self._running[job.jobid] = task
        task.add_done_callback(functools.partial(self._forget, job.jobid))

    def _forget(self, jobid: int, task: asyncio.Task[None]) -> None:
        if self._running.get(jobid) is task:
            del self._running[jobid]
        if not task.cancelled() and task.exception() is not None:
            log.error("cron: job %s: %s", jobid, task.exception())

    async def run_once(self, job: Job, slot: datetime) -> None:
        """Run `job` for the time `slot` unless some process (this one included) already has,
        or is still running the job."""
        try:
            conn = await asyncpg.connect(self.admin_url, timeout=_CONNECT_TIMEOUT)
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as e:
            log.warning("cron: job %s: cannot connect: %s", job.jobid, e)
            return
        runid: int | None = None
        try:
            if not await conn.fetchval(sql.TRY_RUN_LOCK, _LOCK_CLASS, _lock_key(job.jobid)):
                return  # still running, here or in another process
            row = await conn.fetchrow(sql.CLAIM_RUN, job.jobid, slot, job.schedule_text, self.node)
            if row is None:
                return  # another process has it, or the job changed since it was loaded
            runid = row["runid"]
            if row["database"] != self._database:
                await self._finish(
                    runid,
                    "failed",
                    f'supalite runs cron jobs only in database "{self._database}"; '
                    f'this job is for database "{row["database"]}"',
                )
                return
            await conn.execute(sql.MARK_RUNNING, runid)
            status, message = await self._execute(conn, row, slot)
            await self._finish(runid, status, message)
        except asyncio.CancelledError:
            conn.terminate()  # the server rolls the command back
            if runid is not None:
                await self._finish(runid, "failed", "job cancelled: supalite stopped")
            raise
        finally:
            if not conn.is_closed():
                await conn.close()

    async def _execute(
        self, conn: asyncpg.Connection, row: asyncpg.Record, slot: datetime
    ) -> tuple[str, str]:
        """Run the command as its user; (status, return_message) as pg_cron records them."""
        timeout_ms = str(int(self.settings.job_timeout * 1000))
        try:
            await conn.fetchrow(sql.PREPARE_SESSION, timeout_ms, slot.isoformat())
            # A superuser owner can become the job's user entirely (session_user too, as in a
            # pg_cron login); otherwise SET ROLE, which needs membership in the job's role.
            switch = sql.AS_SESSION_USER if self._superuser else sql.AS_ROLE
            await conn.fetchval(switch, row["username"])
            # The simple-query protocol: several statements run as one implicit transaction,
            # and VACUUM or procedures that COMMIT work, as they do under pg_cron.
            status = await conn.execute(row["command"])
        except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as e:
            return "failed", error_message(e)
        return "succeeded", run_message(status)

    async def _finish(self, runid: int, status: str, message: str) -> None:
        try:
            async with self.pool.acquire() as conn:
                await conn.execute(sql.FINISH_RUN, runid, status, message)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as e:
            log.warning("cron: cannot record run %s: %s", runid, e)

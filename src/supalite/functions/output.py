"""What functions print, into the request log: one entry per message, with the function's name
and the execution id of the call that printed it, capped per call.

Both workers (worker.py, deno_worker.ts) run several calls at once on one stdout, so they frame
each message as one line, `MARK` + JSON `{"id": execution id or null, "level", "msg"}`: `print`
and `sys.stdout` are `log`, `sys.stderr` is `error` (Python); `console.log/info/debug/warn/
error` keep their level (Deno).  An uncaught exception's trace is one `error` message.  Lines
without the mark (a C library writing to the file descriptor, Deno's `console.table`) belong to
the function but to no call.  The execution id reaches the worker in EXECUTION_HEADER, which the
worker takes off before the function sees the request.

Supabase keeps the same two kinds of records (`function_edge_logs`: one per call;
`function_logs`: one per console message, with `execution_id` and `level`).
"""

from __future__ import annotations

import collections
import json
from typing import Any

from supalite.logs import RequestLog, timestamp

EXECUTION_HEADER = "x-supalite-execution-id"
MARK = "\x1esupalite\x1f"
# A message longer than this is cut by the worker (so a line always fits the pipe reader).
MAX_MESSAGE = 16 * 1024
# Output logged per call (and per worker for output of no call); the rest is dropped, so a
# chatty function cannot fill the disk.
MAX_PER_INVOCATION = 64 * 1024
# Calls whose output is still counted (the oldest are forgotten first).
_TRACKED = 4096


def frame(execution_id: str | None, level: str, message: str) -> str:
    """One message as the worker writes it (a single line)."""
    if len(message) > MAX_MESSAGE:
        message = message[:MAX_MESSAGE] + f"… (cut at {MAX_MESSAGE} characters)"
    return MARK + json.dumps({"id": execution_id, "level": level, "msg": message}) + "\n"


def parse(line: str) -> tuple[str | None, str, str]:
    """(execution id, level, message) of a line a worker wrote."""
    if line.startswith(MARK):
        try:
            data = json.loads(line[len(MARK) :])
            eid, level, msg = data["id"], data["level"], data["msg"]
            if (eid is None or isinstance(eid, str)) and isinstance(level, str):
                return eid, level, str(msg)
        except (ValueError, KeyError, TypeError):
            pass
    return None, "log", line


class OutputLog:
    """Writes functions' messages to the request log, at most MAX_PER_INVOCATION per call.

    Not to the server's stderr as well: a blocking write there (a full pipe nobody reads)
    would stall every request; `supalite logs` and `functions serve` show the messages."""

    def __init__(self, log: RequestLog | None, limit: int = MAX_PER_INVOCATION) -> None:
        self.log = log
        self.limit = limit
        self._used: collections.OrderedDict[str, int] = collections.OrderedDict()

    def write(
        self, function: str, execution_id: str | None, level: str, message: str, *, key: str
    ) -> None:
        """`key` counts output of no call (one per worker)."""
        counted = execution_id or key
        used = self._used.pop(counted, 0)
        size = len(message.encode("utf-8", "replace")) + 1
        self._used[counted] = used + size
        while len(self._used) > _TRACKED:
            self._used.popitem(last=False)
        if used >= self.limit:
            return
        if used + size > self.limit:
            message = (
                f"(more output of this {'call' if execution_id else 'worker'} dropped: over "
                f"{self.limit} bytes)"
            )
            level = "warn"
        self._emit(function, execution_id, level, message)

    def _emit(self, function: str, execution_id: str | None, level: str, message: str) -> None:
        if self.log is None:
            return
        entry: dict[str, Any] = {
            "time": timestamp(),
            "service": "functions",
            "function": function,
            "execution_id": execution_id,
            "level": level,
            "message": message,
        }
        self.log.write(entry)

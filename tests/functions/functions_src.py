"""The functions the tests serve: name → {file name: source}."""

from __future__ import annotations

HELLO = """
async def handler(request):
    body = await request.body()
    data = None
    if request.headers.get("content-type", "").startswith("application/json") and body:
        data = await request.json()
    return {
        "method": request.method,
        "path": request.url.path,
        "query": dict(request.query_params),
        "custom": request.headers.get("x-custom"),
        "authorization": request.headers.get("authorization"),
        "json": data,
    }
"""

ECHO = """
from starlette.responses import Response

async def handler(request):
    body = await request.body()
    return Response(
        body,
        status_code=int(request.query_params.get("status", "200")),
        media_type=request.headers.get("content-type", "application/octet-stream"),
        headers={"x-echo-length": str(len(body)), "x-echo-method": request.method},
    )
"""

FORM = """
async def handler(request):
    form = await request.form()
    out = {}
    for key, value in form.multi_items():
        if hasattr(value, "read"):
            data = await value.read()
            out[key] = {"filename": value.filename, "size": len(data), "type": value.content_type}
        else:
            out[key] = value
    return out
"""

# The caller's token reaches the Data API: RLS decides what the function sees.
NOTES = """
import os
import httpx

async def handler(request):
    url = os.environ["SUPABASE_URL"] + "/rest/v1/notes?select=body&order=body"
    headers = {
        "apikey": os.environ["SUPABASE_ANON_KEY"],
        "Authorization": request.headers["authorization"],
    }
    async with httpx.AsyncClient() as client:
        r = await client.get(url, headers=headers)
    return {"status": r.status_code, "rows": r.json()}
"""

ENV = """
import os

def handler(request):  # a plain function works too
    names = ["SUPABASE_URL", "SUPABASE_ANON_KEY", "SUPABASE_SERVICE_ROLE_KEY", "SUPABASE_DB_URL",
             "MY_SECRET", "QUOTED_SECRET", "JWT_SECRET", "DATABASE_URL", "SUPALITE_TEST_LEAK"]
    return {name: os.environ.get(name) for name in names}
"""

# Server-sent events: the second event is sent only once the caller has seen the first (it
# creates the file named in the query), which only a streamed response allows.
SSE = """
import asyncio
from pathlib import Path
from starlette.responses import StreamingResponse

async def handler(request):
    gate = Path(request.query_params["gate"])

    async def events():
        yield b"data: one\\n\\n"
        for _ in range(2000):
            if gate.exists():
                break
            await asyncio.sleep(0.01)
        yield b"data: two\\n\\n"

    return StreamingResponse(events(), media_type="text/event-stream")
"""

PID = """
import os

async def handler(request):
    return {"pid": os.getpid()}
"""

SPIN = """
import os
from pathlib import Path

def handler(request):
    Path(request.query_params["pidfile"]).write_text(str(os.getpid()))
    while True:  # never answers, and holds the worker's only thread
        pass
"""

CRASH = """
import os

async def handler(request):
    if request.query_params.get("crash"):
        os._exit(1)
    return {"pid": os.getpid()}
"""

HOG = """
import os

async def handler(request):
    if request.query_params.get("hog"):
        hoard = []
        while True:
            hoard.append(bytearray(16 * 1024 * 1024))
    return {"pid": os.getpid()}
"""

BOOM = """
async def handler(request):
    raise ValueError("boom-detail-4711 must stay in the server log")
"""

BROKEN = """
def handler(request) return 1
"""

# As `supalite functions new` writes it: the preflight is the function's to answer.
CORS = """
from starlette.responses import JSONResponse, Response

CORS_HEADERS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Headers": "authorization, x-client-info, apikey, content-type",
    "Access-Control-Allow-Methods": "POST, GET, OPTIONS",
}

async def handler(request):
    if request.method == "OPTIONS":
        return Response("ok", headers=CORS_HEADERS)
    return JSONResponse({"ok": True}, headers=CORS_HEADERS)
"""

BIG = """
from starlette.responses import Response, StreamingResponse

async def handler(request):
    n = int(request.query_params["n"])
    if request.query_params.get("stream"):
        async def chunks():
            for _ in range(n // 100_000):
                yield b"z" * 100_000
        return StreamingResponse(chunks(), media_type="application/octet-stream")
    return Response(b"z" * n, media_type="application/octet-stream")
"""

CUSTOM = """
async def handler(request):
    return "served from a custom entrypoint"
"""

TS_HELLO = """
Deno.serve(async (req: Request) => {
  const url = new URL(req.url)
  const type = req.headers.get("content-type") ?? ""
  const text = await req.text()
  return Response.json({
    method: req.method,
    url: req.url,
    path: url.pathname,
    query: Object.fromEntries(url.searchParams),
    custom: req.headers.get("x-custom"),
    json: type.startsWith("application/json") && text ? JSON.parse(text) : null,
    secret: Deno.env.get("MY_SECRET") ?? null,
    supabaseUrl: Deno.env.get("SUPABASE_URL") ?? null,
    leak: Deno.env.get("SUPALITE_TEST_LEAK") ?? null,
    pid: Deno.pid,
  })
})
"""

TS_DEFAULT = """
export default {
  fetch: async (req: Request) => new Response(`default export: ${req.method}`),
}
"""

TS_BOOM = """
Deno.serve(() => {
  throw new Error("ts-boom-detail-9876 must stay in the server log")
})
"""

TS_BROKEN = """
Deno.serve((req) => { return new Response("unclosed" }
"""

# supabase-js inside the function, pointed at the injected variables, with the caller's token.
TS_NOTES = """
import { createClient } from "npm:@supabase/supabase-js@2"

Deno.serve(async (req: Request) => {
  const url = Deno.env.get("SUPABASE_URL")!
  const supabase = createClient(url, Deno.env.get("SUPABASE_ANON_KEY")!, {
    global: { headers: { Authorization: req.headers.get("Authorization")! } },
    auth: { persistSession: false },
  })
  const { data, error } = await supabase.from("notes").select("body").order("body")
  return Response.json({ rows: data, error })
})
"""

TS_SSE = r"""
Deno.serve((req: Request) => {
  const gate = new URL(req.url).searchParams.get("gate")!
  const enc = new TextEncoder()
  const body = new ReadableStream({
    async start(controller) {
      controller.enqueue(enc.encode("data: one\n\n"))
      for (let i = 0; i < 2000; i++) {
        try { await Deno.stat(gate); break } catch { await new Promise((r) => setTimeout(r, 10)) }
      }
      controller.enqueue(enc.encode("data: two\n\n"))
      controller.close()
    },
  })
  return new Response(body, { headers: { "Content-Type": "text/event-stream" } })
})
"""

TS_SPIN = """
Deno.serve((req: Request) => {
  Deno.writeTextFileSync(new URL(req.url).searchParams.get("pidfile")!, String(Deno.pid))
  while (true) { /* never answers */ }
})
"""

FUNCTIONS: dict[str, dict[str, str]] = {
    "hello": {"main.py": HELLO},
    "echo": {"main.py": ECHO},
    "form": {"main.py": FORM},
    "notes": {"main.py": NOTES},
    "env": {"main.py": ENV},
    "sse": {"main.py": SSE},
    "pid": {"main.py": PID},
    "spin": {"main.py": SPIN},
    "crash": {"main.py": CRASH},
    "hog": {"main.py": HOG},
    "boom": {"main.py": BOOM},
    "broken": {"main.py": BROKEN},
    "cors": {"main.py": CORS},
    "ts-hello": {"index.ts": TS_HELLO},
    "ts-default": {"index.ts": TS_DEFAULT},
    "ts-boom": {"index.ts": TS_BOOM},
    "ts-broken": {"index.ts": TS_BROKEN},
    "ts-notes": {"index.ts": TS_NOTES},
    "ts-sse": {"index.ts": TS_SSE},
    "ts-spin": {"index.ts": TS_SPIN},
    "hidden": {"main.py": PID},
    "big": {"main.py": BIG},
    "_lib": {"server.py": CUSTOM},  # not a function by itself: `custom` points at it
}

CONFIG = """
[functions.echo]
verify_jwt = false

[functions.cors]
verify_jwt = false

[functions.spin]
verify_jwt = false

[functions.ts-default]
verify_jwt = false

[functions.ts-spin]
verify_jwt = false

[functions.big]
verify_jwt = false

[functions.custom]
verify_jwt = false
entrypoint = "./functions/_lib/server.py"

[functions.hidden]
enabled = false
"""

DOTENV = """# secrets for the functions
MY_SECRET=s3cr3t-value
export QUOTED_SECRET="two words"
SUPABASE_URL=http://not-this
"""

MIGRATION = """
create table notes (
  id bigint generated by default as identity primary key,
  owner uuid not null default auth.uid(),
  body text
);
alter table notes enable row level security;
create policy own_notes on notes for all to authenticated
  using (owner = auth.uid()) with check (owner = auth.uid());
grant select, insert on notes to authenticated;
"""

// One TypeScript function's worker process, run by Deno:
//   deno run --allow-all deno_worker.ts SOCKET ENTRY_URL
// It imports the function's index.ts, which calls `Deno.serve(handler)` or has
// `export default { fetch }` (as Supabase Edge Functions do), and serves that handler over a
// Unix socket.  The socket is bound under a temporary name and renamed once listening: its path
// appearing is the "ready" signal supalite waits for (runtime.py).  An import failure exits
// with status 3 (a boot error) before the socket exists.
//
// console.log/info/debug/warn/error are written as framed lines carrying the execution id of
// the call that logged them (output.py: MARK + {"id", "level", "msg"}); the id arrives in the
// x-supalite-execution-id header, taken off before the function sees the request, and follows
// the call through awaits (AsyncLocalStorage).

import { AsyncLocalStorage } from "node:async_hooks"
import { format } from "node:util"

type Handler = (req: Request, info?: unknown) => Response | Promise<Response>

const [socketPath, entry] = Deno.args
const EXECUTION_HEADER = "x-supalite-execution-id"
const MARK = "\x1esupalite\x1f"
const MAX_MESSAGE = 16 * 1024
const execution = new AsyncLocalStorage<string>()
const encoder = new TextEncoder()

function emit(level: string, args: unknown[]): void {
  let msg = format(...args)
  if (msg.length > MAX_MESSAGE) {
    msg = msg.slice(0, MAX_MESSAGE) + `… (cut at ${MAX_MESSAGE} characters)`
  }
  const id = execution.getStore() || null
  let data = encoder.encode(MARK + JSON.stringify({ id, level, msg }) + "\n")
  while (data.length > 0) data = data.subarray(Deno.stdout.writeSync(data))
}

for (const level of ["log", "info", "debug", "warn", "error"] as const) {
  console[level] = (...args: unknown[]) => emit(level, args)
}

let handler: Handler | null = null
const realServe = Deno.serve.bind(Deno)

// Functions call Deno.serve themselves: capture the handler instead of opening a port.
// deno-lint-ignore no-explicit-any
;(Deno as any).serve = (...args: any[]) => {
  for (const a of args) {
    if (typeof a === "function") handler = a
    else if (a && typeof a.handler === "function") handler = a.handler
    else if (a && typeof a.fetch === "function") handler = (req) => a.fetch(req)
  }
  return {
    finished: new Promise<void>(() => {}),
    addr: { transport: "unix", path: socketPath },
    shutdown: async () => {},
    ref() {},
    unref() {},
    [Symbol.asyncDispose]: async () => {},
  }
}

// Supabase's runtime global, for functions that hand it background work.
// deno-lint-ignore no-explicit-any
;(globalThis as any).EdgeRuntime ??= {
  waitUntil(p: Promise<unknown>) {
    p.catch((e) => console.error(e))
  },
}

try {
  const mod = await import(entry)
  const def = mod.default
  if (!handler && def && typeof def.fetch === "function") handler = (req) => def.fetch(req)
} catch (e) {
  console.error(e)
  Deno.exit(3)
}
if (!handler) {
  console.error(`${entry} neither calls Deno.serve nor exports default { fetch }`)
  Deno.exit(3)
}
const serve: Handler = handler

// Over a Unix socket Deno makes the URL `http+unix://…`; the function sees the public one, as
// on Supabase (the scheme supalite was called with, and the caller's Host).
function asPublic(req: Request): Request {
  if (!req.url.startsWith("http+unix:")) return req
  const url = new URL(req.url)
  const proto = req.headers.get("x-forwarded-proto") ?? "http"
  const host = req.headers.get("host") ?? "localhost"
  return new Request(`${proto}://${host}${url.pathname}${url.search}`, req)
}

const tmp = `${socketPath}.${Deno.pid}`
realServe(
  {
    transport: "unix",
    path: tmp,
    onListen() {
      Deno.renameSync(tmp, socketPath)
    },
  },
  (req: Request) => {
    const id = req.headers.get(EXECUTION_HEADER) ?? ""
    const publicReq = asPublic(req)
    publicReq.headers.delete(EXECUTION_HEADER)
    return execution.run(id, () => call(publicReq))
  },
)

async function call(req: Request): Promise<Response> {
  try {
    return await serve(req)
  } catch (e) {
    // The trace goes to the request log, never to the caller.
    console.error(e)
    return Response.json(
      { code: "WORKER_ERROR", message: "Function exited due to an error (please check logs)" },
      { status: 500 },
    )
  }
}

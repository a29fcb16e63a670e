// One TypeScript function's worker process, run by Deno:
//   deno run --allow-all deno_worker.ts SOCKET ENTRY_URL
// It imports the function's index.ts, which calls `Deno.serve(handler)` or has
// `export default { fetch }` (as Supabase Edge Functions do), and serves that handler over a
// Unix socket.  The socket is bound under a temporary name and renamed once listening: its path
// appearing is the "ready" signal supalite waits for (runtime.py).  An import failure exits
// with status 3 (a boot error) before the socket exists.

type Handler = (req: Request, info?: unknown) => Response | Promise<Response>

const [socketPath, entry] = Deno.args
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
  async (req: Request) => {
    try {
      return await serve(asPublic(req))
    } catch (e) {
      // The trace goes to the server log, never to the caller.
      console.error(e)
      return Response.json(
        { code: "WORKER_ERROR", message: "Function exited due to an error (please check logs)" },
        { status: 500 },
      )
    }
  },
)

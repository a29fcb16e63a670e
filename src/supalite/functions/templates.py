"""What `supalite functions new` writes: a working function with CORS and auth handling.

CORS as Supabase's guides have it (the function answers its own preflight); the caller's
identity from Auth (`/auth/v1/user` with the caller's token), which verify_jwt (on by default)
has already checked for validity."""

from __future__ import annotations

PYTHON = '''\
"""{name}: a supalite function, served at /functions/v1/{name}.

`handler(request)` takes a Starlette Request and returns a Response, or a dict/list (JSON),
str (text) or bytes.  SUPABASE_URL, SUPABASE_ANON_KEY, SUPABASE_SERVICE_ROLE_KEY and
SUPABASE_DB_URL are in the environment, with the secrets of supabase/functions/.env.

Invoke it:
  curl -i -X POST '{url}/functions/v1/{name}' \\\\
    -H 'apikey: <anon or publishable key>' -H 'Authorization: Bearer <user token>' \\\\
    -H 'Content-Type: application/json' -d '{{"name": "Functions"}}'
"""

import os

import httpx
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

CORS_HEADERS = {{
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Headers": "authorization, x-client-info, apikey, content-type",
    "Access-Control-Allow-Methods": "POST, GET, OPTIONS",
}}


async def current_user(request: Request) -> dict | None:
    """The caller's user, as Auth knows it (None for the anon or service_role key)."""
    authorization = request.headers.get("authorization")
    if not authorization:
        return None
    async with httpx.AsyncClient() as client:
        r = await client.get(
            os.environ["SUPABASE_URL"] + "/auth/v1/user",
            headers={{"apikey": os.environ["SUPABASE_ANON_KEY"], "Authorization": authorization}},
        )
    return r.json() if r.status_code == 200 else None


async def handler(request: Request) -> Response:
    if request.method == "OPTIONS":  # the browser's CORS preflight
        return Response("ok", headers=CORS_HEADERS)
    try:
        body = await request.json()
    except ValueError:
        body = {{}}
    name = body.get("name", "world") if isinstance(body, dict) else "world"
    user = await current_user(request)
    return JSONResponse(
        {{"message": f"Hello {{name}}!", "user": user["email"] if user else None}},
        headers=CORS_HEADERS,
    )
'''

TYPESCRIPT = """\
// {name}: a Supabase Edge Function, served by supalite at /functions/v1/{name} (run by Deno).
//
// Invoke it:
//   curl -i -X POST '{url}/functions/v1/{name}' \\
//     -H 'apikey: <anon or publishable key>' -H 'Authorization: Bearer <user token>' \\
//     -H 'Content-Type: application/json' -d '{{"name": "Functions"}}'

import {{ createClient }} from "npm:@supabase/supabase-js@2"

const corsHeaders = {{
  "Access-Control-Allow-Origin": "*",
  "Access-Control-Allow-Headers": "authorization, x-client-info, apikey, content-type",
  "Access-Control-Allow-Methods": "POST, GET, OPTIONS",
}}

Deno.serve(async (req: Request) => {{
  if (req.method === "OPTIONS") {{
    return new Response("ok", {{ headers: corsHeaders }})  // the browser's CORS preflight
  }}
  // supabase-js with the caller's token: Auth and the Data API see the caller (RLS applies).
  const authorization = req.headers.get("Authorization")
  const url = Deno.env.get("SUPABASE_URL")!
  const supabase = createClient(url, Deno.env.get("SUPABASE_ANON_KEY")!, {{
    global: {{ headers: authorization ? {{ Authorization: authorization }} : {{}} }},
    auth: {{ persistSession: false }},
  }})
  const {{ data }} = await supabase.auth.getUser()
  const body = await req.json().catch(() => ({{}}))
  const name = typeof body?.name === "string" ? body.name : "world"
  return Response.json(
    {{ message: `Hello ${{name}}!`, user: data?.user?.email ?? null }},
    {{ headers: corsHeaders }},
  )
}})
"""

CONFIG = """
[functions.{name}]
enabled = true
verify_jwt = true
"""

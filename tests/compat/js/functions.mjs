// Functions through supabase-js (functions-js), run by tests/compat/test_functions_js.py.
//
// Reads SUPABASE_URL, SUPABASE_ANON_KEY, ALICE_TOKEN, BOB_TOKEN and GATE_DIR from the
// environment; the server serves the functions of tests/functions/functions_src.py. Prints one
// JSON object to stdout: {check: {ok: true, detail} | {ok: false, error}}; a check fails by
// throwing, and the Python test asserts on each.

import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import {
  createClient,
  FunctionsFetchError,
  FunctionsHttpError,
  FunctionsRelayError,
} from '@supabase/supabase-js'
import ws from 'ws'

const env = process.env

class CheckFailed extends Error {}

function expect(cond, what, got) {
  if (!cond) throw new CheckFailed(`${what}; got ${JSON.stringify(got)?.slice(0, 2000)}`)
}

function client(token) {
  const options = {
    auth: { persistSession: false, autoRefreshToken: false, detectSessionInUrl: false },
    ...(globalThis.WebSocket ? {} : { realtime: { transport: ws } }),
  }
  if (token) options.global = { headers: { Authorization: `Bearer ${token}` } }
  return createClient(env.SUPABASE_URL, env.SUPABASE_ANON_KEY, options)
}

const anon = client()

const checks = {
  async json_round_trip() {
    const { data, error } = await anon.functions.invoke('hello?lang=js', {
      body: { name: 'js' },
      headers: { 'x-custom': 'c' },
    })
    expect(!error, 'no error', error?.message)
    expect(data.method === 'POST' && data.json?.name === 'js', 'JSON echoed', data)
    expect(data.query?.lang === 'js' && data.custom === 'c', 'query and headers passed', data)
    return data.path
  },

  async text_body() {
    const { data, error } = await anon.functions.invoke('echo', { body: 'plain text' })
    expect(!error && data === 'plain text', 'text echoed', { data, error: error?.message })
  },

  async binary_body() {
    const bytes = new Uint8Array(1024).map((_, i) => i % 256)
    const { data, error } = await anon.functions.invoke('echo', { body: bytes.buffer })
    expect(!error && data instanceof Blob, 'a Blob back', { error: error?.message })
    const back = new Uint8Array(await data.arrayBuffer())
    expect(back.length === 1024 && back.every((b, i) => b === i % 256), 'bytes echoed', back.length)
  },

  async form_data() {
    const form = new FormData()
    form.append('title', 'report')
    form.append('file', new Blob([new Uint8Array(3000)], { type: 'application/x-thing' }), 'a.bin')
    const { data, error } = await anon.functions.invoke('form', { body: form })
    expect(!error, 'no error', error?.message)
    expect(data.title === 'report' && data.file?.size === 3000 && data.file?.filename === 'a.bin',
      'multipart parsed by the function', data)
  },

  async get_method() {
    const { data, error } = await anon.functions.invoke('hello', { method: 'GET' })
    expect(!error && data.method === 'GET', 'GET reached the function', data)
  },

  async user_context() {
    const rows = {}
    for (const [who, token] of [['alice', env.ALICE_TOKEN], ['bob', env.BOB_TOKEN]]) {
      const { data, error } = await client(token).functions.invoke('notes', { method: 'GET' })
      expect(!error && data.status === 200, 'Data API called with the caller token', data)
      rows[who] = data.rows.map((r) => r.body)
    }
    expect(JSON.stringify(rows) === JSON.stringify({ alice: ['js-note'], bob: [] }),
      'RLS applied to the caller', rows)
    const c = client()
    c.functions.setAuth(env.BOB_TOKEN)
    const { data } = await c.functions.invoke('notes', { method: 'GET' })
    expect(data.rows.length === 0, 'setAuth token used', data)
  },

  async server_sent_events() {
    const gate = join(env.GATE_DIR, 'js-gate')
    const { data, error } = await anon.functions.invoke(`sse?gate=${encodeURIComponent(gate)}`,
      { method: 'GET' })
    expect(!error && data instanceof Response, 'the raw Response for text/event-stream', error)
    const reader = data.body.getReader()
    const decoder = new TextDecoder()
    let text = ''
    while (!text.includes('\n\n')) {
      const { value, done } = await reader.read()
      expect(!done, 'first event before the end', text)
      text += decoder.decode(value, { stream: true })
    }
    expect(text === 'data: one\n\n', 'first event alone', text)
    writeFileSync(gate, 'go') // the function sends the second event only now
    for (;;) {
      const { value, done } = await reader.read()
      if (done) break
      text += decoder.decode(value, { stream: true })
    }
    expect(text === 'data: one\n\ndata: two\n\n', 'second event after the gate', text)
  },

  async invalid_jwt() {
    const c = client()
    c.functions.setAuth('not-a-jwt')
    const { data, error } = await c.functions.invoke('hello', { body: {} })
    expect(error instanceof FunctionsHttpError, 'FunctionsHttpError', error?.name)
    expect(error.context.status === 401, '401', error.context.status)
    const body = await error.context.json()
    expect(body.msg === 'Invalid JWT', 'Supabase body', body)
    expect(data === null, 'no data', data)
  },

  async function_error() {
    const { error } = await anon.functions.invoke('boom', { body: {} })
    expect(error instanceof FunctionsHttpError, 'FunctionsHttpError', error?.name)
    expect(error.context.status === 500, '500', error.context.status)
    const text = await error.context.text()
    expect(!text.includes('boom-detail') && !text.includes('Traceback'), 'no trace', text)
    const teapot = await anon.functions.invoke('echo?status=418', { body: 'x' })
    expect(teapot.error instanceof FunctionsHttpError && teapot.error.context.status === 418,
      "the function's own status", teapot.error?.context?.status)
  },

  async not_found() {
    const { error } = await anon.functions.invoke('does-not-exist', { body: {} })
    expect(error instanceof FunctionsHttpError, 'FunctionsHttpError', error?.name)
    expect(error.context.status === 404, '404', error.context.status)
    expect((await error.context.text()) === 'Function not found', 'Supabase text', null)
  },

  async relay_error() {
    const crash = await anon.functions.invoke('crash?crash=1', { body: {} })
    expect(crash.error instanceof FunctionsRelayError, 'FunctionsRelayError', crash.error?.name)
    expect(crash.error.context.status === 500, '500', crash.error.context.status)
    const hog = await anon.functions.invoke('hog?hog=1', { body: {} })
    expect(hog.error instanceof FunctionsRelayError, 'FunctionsRelayError', hog.error?.name)
    expect(hog.error.context.status === 546, '546', hog.error.context.status)
    const again = await anon.functions.invoke('crash', { body: {} })
    expect(!again.error && again.data.pid, 'a fresh worker answers', again.error?.message)
  },

  async ts_json_round_trip() {
    const { data, error } = await anon.functions.invoke('ts-hello?lang=ts', {
      body: { name: 'ts' },
      headers: { 'x-custom': 'c' },
    })
    expect(!error, 'no error', error?.message)
    expect(data.method === 'POST' && data.json?.name === 'ts' && data.query?.lang === 'ts',
      'JSON echoed by the Deno function', data)
  },

  async ts_user_context() {
    const { data, error } = await client(env.ALICE_TOKEN).functions.invoke('ts-notes',
      { method: 'GET' })
    expect(!error, 'no error', error?.message)
    expect(JSON.stringify(data.rows) === JSON.stringify([{ body: 'js-note' }]),
      'supabase-js inside the function sees RLS', data)
  },

  async ts_http_error() {
    const { error } = await anon.functions.invoke('ts-boom', { body: {} })
    expect(error instanceof FunctionsHttpError, 'FunctionsHttpError', error?.name)
    expect(error.context.status === 500, '500', error.context.status)
  },

  async fetch_error() {
    const c = createClient('http://127.0.0.1:9', env.SUPABASE_ANON_KEY, {
      auth: { persistSession: false, autoRefreshToken: false },
      ...(globalThis.WebSocket ? {} : { realtime: { transport: ws } }),
    })
    const { error } = await c.functions.invoke('hello', { body: {} })
    expect(error instanceof FunctionsFetchError, 'FunctionsFetchError (no server)', error?.name)
  },
}

const only = process.argv.slice(2)
const out = {}
for (const [name, check] of Object.entries(checks)) {
  if (only.length && !only.includes(name)) continue
  try {
    out[name] = { ok: true, detail: (await check()) ?? null }
  } catch (e) {
    out[name] = { ok: false, error: `${e?.name}: ${e?.message}` }
  }
}
process.stdout.write(JSON.stringify(out))

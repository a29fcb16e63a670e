// Realtime through supabase-js (realtime-js, vsn 2.0.0), run by tests/compat/test_realtime_js.py.
//
// Reads SUPABASE_URL, SUPABASE_ANON_KEY and JWT_SECRET (to mint users' tokens, as Auth would)
// from the environment. Runs named checks and prints one JSON object to stdout:
// {check: {ok: true, detail} | {ok: false, error}}; the Python test asserts on each.

import { createHmac, randomUUID } from 'node:crypto'
import { createClient } from '@supabase/supabase-js'
import ws from 'ws'

const env = process.env
const URL_ = env.SUPABASE_URL
const ANON = env.SUPABASE_ANON_KEY
const SECRET = env.JWT_SECRET
const ALICE = '11111111-1111-1111-1111-111111111111'
const BOB = '22222222-2222-2222-2222-222222222222'

class CheckFailed extends Error {}

function expect(cond, what, got) {
  if (!cond) throw new CheckFailed(`${what}; got ${JSON.stringify(got, null, 1)?.slice(0, 2000)}`)
}

const b64 = (obj) => Buffer.from(JSON.stringify(obj)).toString('base64url')

function mint(sub, ttl = 3600) {
  const now = Math.floor(Date.now() / 1000)
  const head = b64({ alg: 'HS256', typ: 'JWT' })
  const body = b64({ sub, role: 'authenticated', aud: 'authenticated', iat: now, exp: now + ttl })
  const sig = createHmac('sha256', SECRET).update(`${head}.${body}`).digest('base64url')
  return `${head}.${body}.${sig}`
}

// A client acting for a user: the Data API with the user's token, Realtime with setAuth.
async function client(token) {
  const c = createClient(URL_, ANON, {
    auth: { persistSession: false, autoRefreshToken: false, detectSessionInUrl: false },
    global: token ? { headers: { Authorization: `Bearer ${token}` } } : {},
    // Node < 22 has no global WebSocket: realtime-js is given `ws`.
    ...(globalThis.WebSocket ? {} : { realtime: { transport: ws } }),
  })
  if (token) await c.realtime.setAuth(token)
  return c
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

// Wait (with a deadline) until `pred()` holds.
async function until(pred, what, ms = 10000) {
  const end = Date.now() + ms
  while (Date.now() < end) {
    if (pred()) return
    await sleep(25)
  }
  throw new CheckFailed(`timed out waiting for ${typeof what === 'function' ? what() : what}`)
}

function subscribed(channel) {
  return new Promise((resolve, reject) => {
    channel.subscribe((status, err) => {
      if (status === 'SUBSCRIBED') resolve(channel)
      else if (status === 'CHANNEL_ERROR' || status === 'TIMED_OUT') reject(new CheckFailed(`${status}: ${err?.message}`))
    })
  })
}

function subscribeStatus(channel) {
  return new Promise((resolve) => {
    channel.subscribe((status, err) => {
      if (status !== 'SUBSCRIBED') resolve({ status, message: err?.message ?? null })
      else resolve({ status })
    })
  })
}

const results = {}
const clients = []

async function check(name, fn) {
  try {
    const detail = await fn()
    results[name] = { ok: true, detail: detail ?? null }
  } catch (e) {
    results[name] = { ok: false, error: e instanceof CheckFailed ? e.message : String(e?.stack ?? e) }
  }
}

function track(c) {
  clients.push(c)
  return c
}

const name = (prefix) => `${prefix}-${randomUUID().slice(0, 8)}`

await check('changes_crud', async () => {
  const alice = track(await client(mint(ALICE)))
  const seen = []
  await subscribed(
    alice.channel(name('crud')).on('postgres_changes', { event: '*', schema: 'public', table: 'todos' }, (p) => seen.push(p)),
  )
  const { data: row, error } = await alice.from('todos').insert({ title: 'milk', n: 1 }).select().single()
  expect(!error, 'insert through the Data API', error)
  // Each change is checked against the row as it is when it is delivered (as Supabase's
  // apply_rls does), so the next write waits for the previous change to arrive.
  await until(() => seen.length >= 1, 'the INSERT')
  await alice.from('todos').update({ done: true }).eq('id', row.id)
  await until(() => seen.length >= 2, 'the UPDATE')
  await alice.from('todos').delete().eq('id', row.id)
  await until(() => seen.length >= 3, () => `INSERT, UPDATE and DELETE (saw ${JSON.stringify(seen)})`)
  const [ins, upd, del] = seen
  expect(ins.eventType === 'INSERT' && ins.new.title === 'milk' && ins.new.done === false && ins.new.owner === ALICE,
    'INSERT payload', ins)
  expect(ins.schema === 'public' && ins.table === 'todos' && typeof ins.commit_timestamp === 'string', 'INSERT envelope', ins)
  expect(upd.eventType === 'UPDATE' && upd.new.done === true && upd.old.id === row.id, 'UPDATE payload', upd)
  expect(del.eventType === 'DELETE' && del.old.id === row.id && Object.keys(del.new).length === 0, 'DELETE payload', del)
  return { events: seen.map((p) => p.eventType) }
})

await check('changes_filter_and_event', async () => {
  const alice = track(await client(mint(ALICE)))
  const big = []
  const updates = []
  await subscribed(
    alice
      .channel(name('filter'))
      .on('postgres_changes', { event: 'INSERT', schema: 'public', table: 'todos', filter: 'n=gt.5' }, (p) => big.push(p.new.n))
      .on('postgres_changes', { event: 'UPDATE', schema: 'public', table: 'todos' }, (p) => updates.push(p.new.n)),
  )
  await alice.from('todos').insert([{ title: 'small', n: 3 }, { title: 'large', n: 7 }])
  await until(() => big.length >= 1, 'the filtered INSERT')
  await sleep(500)
  expect(JSON.stringify(big) === '[7]' && updates.length === 0, 'only n > 5, and no UPDATE', { big, updates })
  return { big }
})

await check('changes_rls', async () => {
  const alice = track(await client(mint(ALICE)))
  const bob = track(await client(mint(BOB)))
  const bobSeen = []
  await subscribed(
    bob.channel(name('rls')).on('postgres_changes', { event: 'INSERT', schema: 'public', table: 'todos' }, (p) => bobSeen.push(p.new)),
  )
  await alice.from('todos').insert({ title: 'alice only', n: 0 })
  await bob.from('todos').insert({ title: 'bob only', n: 0 })
  await until(() => bobSeen.length >= 1, "bob's own row")
  await sleep(500)
  expect(bobSeen.length === 1 && bobSeen[0].title === 'bob only', "bob sees his row and never alice's", bobSeen)
})

await check('broadcast_self_ack', async () => {
  const topic = name('room')
  const a = track(await client())
  const b = track(await client())
  const got = { a: [], b: [] }
  const ca = await subscribed(
    a.channel(topic, { config: { broadcast: { self: true, ack: true } } }).on('broadcast', { event: 'msg' }, (p) => got.a.push(p.payload)),
  )
  const cb = await subscribed(b.channel(topic).on('broadcast', { event: 'msg' }, (p) => got.b.push(p.payload)))
  const acked = await ca.send({ type: 'broadcast', event: 'msg', payload: { n: 1 } })
  expect(acked === 'ok', 'ack', acked)
  await cb.send({ type: 'broadcast', event: 'msg', payload: { n: 2 } })
  await until(() => got.a.length >= 2 && got.b.length >= 1, 'broadcasts')
  await sleep(300)
  expect(JSON.stringify(got.a) === '[{"n":1},{"n":2}]', 'a (self: true) hears both', got.a)
  expect(JSON.stringify(got.b) === '[{"n":1}]', 'b (self: false) hears only a', got.b)
  return got
})

await check('http_send', async () => {
  const topic = name('http')
  const a = track(await client())
  const got = []
  const ch = await subscribed(a.channel(topic).on('broadcast', { event: 'rest' }, (p) => got.push(p.payload)))
  const sender = track(await client()).channel(topic)
  const res = await sender.httpSend('rest', { via: 'http' })
  expect(res.success !== false, 'httpSend', res)
  await until(() => got.length >= 1, 'the REST broadcast')
  expect(got[0].via === 'http', 'payload', got)
  return { channel: ch.topic }
})

await check('presence', async () => {
  const topic = name('lobby')
  const a = track(await client())
  const b = track(await client())
  const joins = []
  const leaves = []
  const ca = await subscribed(
    a
      .channel(topic, { config: { presence: { key: 'alice' } } })
      .on('presence', { event: 'join' }, ({ key }) => joins.push(key))
      .on('presence', { event: 'leave' }, ({ key }) => leaves.push(key)),
  )
  expect((await ca.track({ mood: 'happy' })) === 'ok', 'track', null)
  const cb = await subscribed(b.channel(topic, { config: { presence: { key: 'bob' } } }).on('presence', { event: 'sync' }, () => {}))
  await cb.track({ mood: 'sleepy' })
  await until(() => Object.keys(ca.presenceState()).length === 2, 'both present')
  const state = ca.presenceState()
  expect(state.alice[0].mood === 'happy' && state.bob[0].mood === 'sleepy' && state.bob[0].presence_ref,
    'presenceState() keys and metas', state)
  await until(() => Object.keys(cb.presenceState()).length === 2, 'bob sees both')
  await cb.untrack()
  await until(() => leaves.includes('bob'), 'the leave')
  expect(joins.includes('alice') && joins.includes('bob'), 'joins', joins)
  return { joins, leaves }
})

await check('presence_retrack', async () => {
  // track() again with what is already tracked (apps do, e.g. on every render): the others
  // see nothing, as on Supabase; a real change is one diff.
  const topic = name('retrack')
  const a = track(await client())
  const b = track(await client())
  const seen = [] // alice's moods at each sync bob gets
  let cb = null
  cb = await subscribed(
    b.channel(topic, { config: { presence: { key: 'bob' } } }).on('presence', { event: 'sync' }, () =>
      seen.push((cb?.presenceState().alice ?? []).map((m) => m.mood)),
    ),
  )
  await until(() => seen.length === 1, 'the presence_state sync')
  const ca = await subscribed(a.channel(topic, { config: { presence: { key: 'alice' } } }))
  for (const mood of ['ok', 'ok', 'away']) {
    expect((await ca.track({ mood })) === 'ok', 'track answered', mood)
  }
  await until(() => seen.some((s) => s.includes('away')), () => `away in ${JSON.stringify(seen)}`)
  expect(JSON.stringify(seen.slice(1)) === '[["ok"],["away"]]', 'one sync per real change', seen)
  return seen
})

await check('private_channels', async () => {
  const topic = name('alice-private')
  const alice = track(await client(mint(ALICE)))
  const bob = track(await client(mint(BOB)))
  const allowed = await subscribeStatus(alice.channel(topic, { config: { private: true } }))
  expect(allowed.status === 'SUBSCRIBED', 'alice may join', allowed)
  const refused = await subscribeStatus(bob.channel(topic, { config: { private: true } }))
  expect(refused.status === 'CHANNEL_ERROR' && /permissions to read/.test(refused.message), 'bob is refused', refused)
  return { refused }
})

await check('token_refresh', async () => {
  const topic = name('refresh')
  const c = track(await client(mint(ALICE, 3)))
  const got = []
  const statuses = []
  const ch = c.channel(topic, { config: { broadcast: { self: true } } }).on('broadcast', { event: 'ping' }, (p) => got.push(p.payload))
  await new Promise((resolve) => ch.subscribe((s) => { statuses.push(s); if (s === 'SUBSCRIBED') resolve() }))
  await c.realtime.setAuth(mint(ALICE, 3600)) // before the first token expires
  await sleep(4500)
  await ch.send({ type: 'broadcast', event: 'ping', payload: { alive: true } })
  await until(() => got.length >= 1, 'a broadcast after the first token expired')
  expect(!statuses.includes('CLOSED') && !statuses.includes('CHANNEL_ERROR'), 'still subscribed', statuses)
  return { statuses }
})

await check('token_expiry_closes', async () => {
  const c = track(await client(mint(ALICE, 2)))
  const systems = []
  const statuses = []
  const ch = c.channel(name('expiry')).on('system', {}, (p) => systems.push(p))
  ch.subscribe((s) => statuses.push(s))
  await until(() => statuses.includes('CLOSED'), 'the channel to close', 15000)
  const sys = systems.find((p) => p.status === 'error')
  expect(sys && sys.extension === 'system' && /Token has expired/.test(sys.message), 'the system message', systems)
  return { statuses, message: sys.message }
})

for (const c of clients) await c.removeAllChannels()
process.stdout.write(JSON.stringify(results))
process.exit(0)

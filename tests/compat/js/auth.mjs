// The Auth flows through supabase-js (auth-js), run by tests/compat/test_auth_js.py.
//
//   node auth.mjs autoconfirm     against a server with mailer autoconfirm and anonymous sign-ins
//   node auth.mjs confirm         against a server with [auth.email] enable_confirmations = true
//
// Reads SUPABASE_URL, SUPABASE_ANON_KEY and SUPABASE_SERVICE_ROLE_KEY from the environment.
// Runs named checks in order (later ones build on the sessions earlier ones made) and prints
// one JSON object to stdout: {check: {ok: true, detail} | {ok: false, error}}. A check fails by
// throwing; its error says what the client handed back. The Python test asserts on each.

import { createHmac } from 'node:crypto'
import { AuthApiError, createClient, isAuthApiError, isAuthSessionMissingError } from '@supabase/supabase-js'
import ws from 'ws'

const env = process.env
const URL_ = env.SUPABASE_URL
const ANON = env.SUPABASE_ANON_KEY
const SERVICE = env.SUPABASE_SERVICE_ROLE_KEY
const PASSWORD = 'correct-horse-battery'
const tag = Math.random().toString(36).slice(2, 8)
const email = (who) => `${who}-${tag}@example.com`

// ------------------------------------------------------------------ helpers

class CheckFailed extends Error {}

function expect(cond, what, got) {
  if (!cond) {
    throw new CheckFailed(`${what}; got ${JSON.stringify(got, null, 1)?.slice(0, 2000)}`)
  }
}

// An in-memory storage, as a server-side app gives auth-js (it keeps the PKCE verifier there).
function memoryStorage() {
  const items = new Map()
  return {
    getItem: (k) => (items.has(k) ? items.get(k) : null),
    setItem: (k, v) => void items.set(k, v),
    removeItem: (k) => void items.delete(k),
  }
}

function client(key = ANON, auth = {}) {
  return createClient(URL_, key, {
    auth: { persistSession: false, autoRefreshToken: false, detectSessionInUrl: false, ...auth },
    // Node < 22 has no global WebSocket; supabase-js needs one for its (unused) realtime client.
    ...(globalThis.WebSocket ? {} : { realtime: { transport: ws } }),
  })
}

const pkceClient = () => client(ANON, { flowType: 'pkce', persistSession: true, storage: memoryStorage() })
const service = () => client(SERVICE)

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))
// [auth.email] max_frequency is 1 s: one email per address per second.
const pastMaxFrequency = () => sleep(1100)

const claimsOf = (jwt) => JSON.parse(Buffer.from(jwt.split('.')[1], 'base64url').toString())

const errorOf = (e) =>
  e && {
    name: e.name,
    code: e.code ?? null,
    status: e.status ?? null,
    message: e.message,
    api: isAuthApiError(e),
  }

// The client call must have succeeded; returns its data.
function ok(res, what) {
  expect(!res.error, `${what}: expected no error`, errorOf(res.error))
  return res.data
}

// The client call must have failed with an AuthApiError whose code is one of `codes`.
function apiError(res, what, codes, status) {
  const e = res.error
  expect(e, `${what}: expected an error`, res.data)
  expect(e instanceof AuthApiError, `${what}: expected an AuthApiError`, errorOf(e))
  expect(codes.includes(e.code), `${what}: expected code ${codes.join(' or ')}`, errorOf(e))
  if (status !== undefined) expect(e.status === status, `${what}: expected status ${status}`, errorOf(e))
  return errorOf(e)
}

// A signed-out session's access token: the server answers 403 session_not_found, which
// auth-js turns into an AuthSessionMissingError (the user is signed out).
async function expectSignedOut(accessToken, what) {
  const res = await client().auth.getUser(accessToken)
  expect(isAuthSessionMissingError(res.error), `${what}: getUser gives AuthSessionMissingError`, errorOf(res.error))
  const raw = await fetch(`${URL_}/auth/v1/user`, {
    headers: { apikey: ANON, Authorization: `Bearer ${accessToken}`, 'X-Supabase-Api-Version': '2024-01-01' },
  })
  const body = await raw.json()
  expect(raw.status === 403 && body.code === 'session_not_found', `${what}: GET /user is 403 session_not_found`, { status: raw.status, body })
}

async function signedIn(who, password = PASSWORD) {
  const c = client()
  const data = ok(await c.auth.signInWithPassword({ email: email(who), password }), `sign in ${who}`)
  expect(data.session?.access_token, `sign in ${who}: expected a session`, data)
  return { c, session: data.session }
}

// A fresh client presenting `token` to the refresh grant.
const refreshWith = (token) => client().auth.refreshSession({ refresh_token: token })

// RFC 6238 TOTP: HMAC-SHA1, 6 digits, 30 s steps, over the base32 secret.
function totp(secret, now = Date.now()) {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567'
  let bits = ''
  for (const ch of secret.replace(/=+$/, '').toUpperCase()) {
    bits += alphabet.indexOf(ch).toString(2).padStart(5, '0')
  }
  const key = Buffer.from(bits.match(/.{8}/g).map((b) => parseInt(b, 2)))
  const counter = Buffer.alloc(8)
  counter.writeBigUInt64BE(BigInt(Math.floor(now / 1000 / 30)))
  const mac = createHmac('sha1', key).update(counter).digest()
  const offset = mac[mac.length - 1] & 0x0f
  const n = (mac.readUInt32BE(offset) & 0x7fffffff) % 1_000_000
  return String(n).padStart(6, '0')
}

// The newest message of `kind` to `to` in the built-in inbox (waits a little for it).
async function inbox(to, kind) {
  const url = `${URL_}/inbox/v1/messages?to=${encodeURIComponent(to)}`
  let last = null
  for (let i = 0; i < 50; i++) {
    const r = await fetch(url, { headers: { apikey: SERVICE } })
    last = { status: r.status, body: await r.json() }
    expect(r.status === 200, `inbox for ${to}: expected 200`, last)
    const found = last.body.find((m) => m.kind === kind)
    if (found) return found
    await sleep(100)
  }
  throw new CheckFailed(`no ${kind} message to ${to} in the inbox: ${JSON.stringify(last)}`)
}

const unescapeHtml = (s) =>
  s.replace(/&amp;/g, '&').replace(/&#39;/g, "'").replace(/&quot;/g, '"').replace(/&lt;/g, '<').replace(/&gt;/g, '>')

function linkIn(message) {
  const m = message.html.match(/href="([^"]+)"/)
  expect(m, 'expected a link in the message', message)
  return unescapeHtml(m[1])
}

function codeIn(message) {
  const m = message.text.match(/\b(\d{6})\b/)
  expect(m, 'expected a 6-digit code in the message', message)
  return m[1]
}

// Follow an emailed link as a browser would, but stop at the redirect: its Location.
async function follow(link) {
  const r = await fetch(link, { redirect: 'manual' })
  const location = r.headers.get('location')
  expect(r.status === 303 && location, `GET ${link}: expected a 303 with a Location`, {
    status: r.status,
    location,
    body: await r.text(),
  })
  return new URL(location)
}

// The owner-only `notes` table through the Data API, as the client's session.
async function notesRoundTrip(c, label) {
  const body = `${label} ${tag}`
  const inserted = ok(await c.from('notes').insert({ body }).select('id, owner, body'), `${label}: insert`)
  const { data: userData } = await c.auth.getUser()
  expect(inserted.length === 1 && inserted[0].owner === userData.user.id, `${label}: insert returns the row with owner = auth.uid()`, inserted)
  const mine = ok(await c.from('notes').select('owner, body'), `${label}: select`)
  expect(mine.length >= 1 && mine.every((n) => n.owner === userData.user.id), `${label}: sees only its own notes`, mine)
  expect(mine.some((n) => n.body === body), `${label}: sees the note it wrote`, mine)
  return { visible: mine.length }
}

// ------------------------------------------------------------------ the runner

const results = {}

async function check(name, fn) {
  try {
    const detail = await fn()
    results[name] = { ok: true, detail: detail ?? null }
  } catch (e) {
    results[name] = { ok: false, error: e instanceof CheckFailed ? e.message : String(e?.stack ?? e) }
  }
}

// ------------------------------------------------------------------ autoconfirm server

async function autoconfirm() {
  const s = {}

  await check('signup_autoconfirm', async () => {
    const c = client()
    const data = ok(
      await c.auth.signUp({ email: email('alice'), password: PASSWORD, options: { data: { plan: 'free' } } }),
      'signUp',
    )
    expect(data.session?.access_token && data.session.refresh_token, 'signUp: expected a session (autoconfirm)', data)
    expect(data.user?.email === email('alice'), 'signUp: expected the user', data.user)
    expect(data.user.email_confirmed_at, 'signUp: expected email_confirmed_at', data.user)
    expect(data.user.user_metadata.plan === 'free', 'signUp: expected the metadata', data.user)
    const claims = claimsOf(data.session.access_token)
    expect(claims.sub === data.user.id && claims.role === 'authenticated' && claims.aal === 'aal1',
      'signUp: access token claims', claims)
    const bob = ok(await client().auth.signUp({ email: email('bob'), password: PASSWORD }), 'signUp bob')
    expect(bob.session, 'signUp bob: expected a session', bob)
    s.alice = { c, session: data.session, id: data.user.id }
    s.bobId = bob.user.id
  })

  await check('password_signin', async () => {
    const { c, session } = await signedIn('alice')
    expect(session.user.id === s.alice.id, 'sign in: same user as signUp', session.user)
    expect(session.token_type === 'bearer' && session.expires_in > 0 && session.expires_at, 'sign in: session fields', session)
    const { data } = await c.auth.getSession()
    expect(data.session?.access_token === session.access_token, 'getSession: the stored session', data)
    s.alice.c = c
    s.alice.session = session
  })

  await check('password_wrong', async () => {
    const res = await client().auth.signInWithPassword({ email: email('alice'), password: 'wrong-password' })
    const nobody = await client().auth.signInWithPassword({ email: email('nobody'), password: PASSWORD })
    return {
      wrong: apiError(res, 'wrong password', ['invalid_credentials'], 400),
      unknown: apiError(nobody, 'unknown email', ['invalid_credentials'], 400),
    }
  })

  await check('signup_errors', async () => {
    const taken = await client().auth.signUp({ email: email('alice'), password: PASSWORD })
    const weak = await client().auth.signUp({ email: email('weakling'), password: 'abc' })
    expect(weak.error?.name === 'AuthWeakPasswordError' && weak.error.code === 'weak_password' &&
      weak.error.status === 422 && weak.error.reasons?.includes('length'), 'a short password: AuthWeakPasswordError', errorOf(weak.error))
    return {
      taken: apiError(taken, 'signUp with a registered email (autoconfirm)', ['user_already_exists'], 422),
    }
  })

  await check('get_user', async () => {
    const data = ok(await s.alice.c.auth.getUser(), 'getUser')
    expect(data.user.id === s.alice.id && data.user.email === email('alice'), 'getUser: the signed-in user', data.user)
    expect(data.user.aud === 'authenticated' && data.user.role === 'authenticated', 'getUser: aud and role', data.user)
    expect(Array.isArray(data.user.identities) && data.user.identities[0]?.provider === 'email', 'getUser: the email identity', data.user)
    const bad = await client().auth.getUser('not-a-jwt')
    expect(bad.error, 'getUser(garbage): expected an error', bad)
    const claims = ok(await s.alice.c.auth.getClaims(), 'getClaims')
    expect(claims.claims.sub === s.alice.id && claims.claims.email === email('alice') &&
      claims.claims.session_id && claims.claims.aal === 'aal1', 'getClaims: the token claims', claims.claims)
  })

  await check('update_user_data', async () => {
    const data = ok(await s.alice.c.auth.updateUser({ data: { color: 'blue' } }), 'updateUser')
    expect(data.user.user_metadata.color === 'blue' && data.user.user_metadata.plan === 'free',
      'updateUser: metadata merged', data.user.user_metadata)
    const again = ok(await s.alice.c.auth.getUser(), 'getUser after update')
    expect(again.user.user_metadata.color === 'blue', 'getUser: the update persisted', again.user)
  })

  await check('refresh_rotation', async () => {
    const { c, session } = await signedIn('alice')
    const old = session.refresh_token
    const first = ok(await c.auth.refreshSession(), 'refreshSession')
    expect(first.session.refresh_token && first.session.refresh_token !== old, 'refresh: a new refresh token', first.session)
    const { data: stored } = await c.auth.getSession()
    expect(stored.session.refresh_token === first.session.refresh_token, 'refresh: the client stores the new session', stored)
    // A retry with the old (parent) token within the reuse interval: the active token back.
    const retry = ok(await refreshWith(old), 'refresh with the old token within 10 s')
    expect(retry.session?.access_token, 'refresh with the old token: a session', retry)
    expect(retry.session.refresh_token === first.session.refresh_token, 'old token: returns the active refresh token', {
      active: first.session.refresh_token,
      returned: retry.session.refresh_token,
    })
    // Two rotations on: the grandparent is still within the interval and gets a session too.
    const second = ok(await refreshWith(first.session.refresh_token), 'second refresh')
    const grand = ok(await refreshWith(old), 'grandparent token within 10 s')
    expect(grand.session?.access_token, 'grandparent within the reuse interval: a session', grand)
    expect(claimsOf(second.session.access_token).session_id === claimsOf(session.access_token).session_id,
      'refresh keeps the session id', null)
    const garbage = apiError(await refreshWith('no-such-token'), 'unknown refresh token', ['refresh_token_not_found'], 400)
    return { garbage }
  })

  await check('signout_others', async () => {
    const a = await signedIn('alice')
    const b = await signedIn('alice')
    const cc = await signedIn('alice')
    ok(await a.c.auth.signOut({ scope: 'others' }), "signOut({scope: 'others'})")
    const codes = ['refresh_token_not_found', 'session_not_found']
    const bErr = apiError(await refreshWith(b.session.refresh_token), 'other session refresh after others-signout', codes, 400)
    apiError(await refreshWith(cc.session.refresh_token), 'third session refresh after others-signout', codes, 400)
    await expectSignedOut(b.session.access_token, "other session's access token after others-signout")
    const still = ok(await a.c.auth.getUser(), 'signing-out session still works')
    expect(still.user.id === s.alice.id, 'signOut others: own session kept', still)
    const mine = ok(await refreshWith(a.session.refresh_token), 'own refresh after others-signout')
    expect(mine.session, 'own refresh: a session', mine)
    return { other: bErr }
  })

  await check('signout_local', async () => {
    const a = await signedIn('alice')
    const b = await signedIn('alice')
    ok(await a.c.auth.signOut({ scope: 'local' }), "signOut({scope: 'local'})")
    const { data } = await a.c.auth.getSession()
    expect(data.session === null, 'signOut local: the client forgets its session', data)
    apiError(await refreshWith(a.session.refresh_token), 'refresh after local signout',
      ['refresh_token_not_found', 'session_not_found'], 400)
    const other = ok(await refreshWith(b.session.refresh_token), 'the other session after local signout')
    expect(other.session, 'signOut local: other session kept', other)
  })

  await check('signout_global', async () => {
    const a = await signedIn('alice')
    const b = await signedIn('alice')
    ok(await a.c.auth.signOut(), 'signOut() (global)')
    const codes = ['refresh_token_not_found', 'session_not_found']
    apiError(await refreshWith(a.session.refresh_token), 'own refresh after global signout', codes, 400)
    apiError(await refreshWith(b.session.refresh_token), 'other refresh after global signout', codes, 400)
    await expectSignedOut(b.session.access_token, 'access token after global signout')
  })

  await check('anonymous_then_link_email', async () => {
    const c = client()
    const data = ok(await c.auth.signInAnonymously({ options: { data: { nick: 'anon' } } }), 'signInAnonymously')
    expect(data.session?.access_token && data.user?.is_anonymous === true, 'anonymous: a session, is_anonymous', data)
    const claims = claimsOf(data.session.access_token)
    expect(claims.is_anonymous === true && claims.role === 'authenticated', 'anonymous: token claims', claims)
    const notes = await notesRoundTrip(c, 'anonymous')
    const linked = ok(await c.auth.updateUser({ email: email('carol') }), 'updateUser({email}) as anonymous')
    expect(linked.user.email === email('carol') && linked.user.is_anonymous === false,
      'linking: email set and is_anonymous false', linked.user)
    ok(await c.auth.updateUser({ password: PASSWORD }), 'updateUser({password}) after linking')
    const again = await signedIn('carol')
    expect(again.session.user.id === data.user.id && again.session.user.is_anonymous === false,
      'linked user signs in with a password as the same user', again.session.user)
    expect(claimsOf(again.session.access_token).is_anonymous === false, 'linked: token says not anonymous', null)
    return { notes }
  })

  await check('admin', async () => {
    const admin = service().auth.admin
    const created = ok(await admin.createUser({
      email: email('dave'), password: PASSWORD, email_confirm: true, user_metadata: { team: 'red' },
    }), 'admin.createUser')
    const id = created.user.id
    expect(created.user.email === email('dave') && created.user.email_confirmed_at, 'createUser: confirmed user', created.user)
    const list = ok(await admin.listUsers({ page: 1, perPage: 50 }), 'admin.listUsers')
    expect(list.users.some((u) => u.id === id) && list.users.some((u) => u.id === s.alice.id), 'listUsers: includes them', list)
    const paged = ok(await admin.listUsers({ page: 1, perPage: 1 }), 'admin.listUsers perPage 1')
    expect(paged.users.length === 1 && paged.nextPage === 2, 'listUsers: paginated', { n: paged.users.length, nextPage: paged.nextPage, total: paged.total })
    const updated = ok(await admin.updateUserById(id, { user_metadata: { team: 'blue' }, app_metadata: { tier: 'gold' } }), 'admin.updateUserById')
    expect(updated.user.user_metadata.team === 'blue' && updated.user.app_metadata.tier === 'gold', 'updateUserById: applied', updated.user)
    const got = ok(await admin.getUserById(id), 'admin.getUserById')
    expect(got.user.app_metadata.tier === 'gold', 'getUserById: the update', got.user)
    const dave = await signedIn('dave')
    expect(claimsOf(dave.session.access_token).app_metadata.tier === 'gold', 'app_metadata in the token', claimsOf(dave.session.access_token))
    ok(await admin.deleteUser(id), 'admin.deleteUser')
    apiError(await admin.getUserById(id), 'getUserById after delete', ['user_not_found'], 404)
    apiError(await client().auth.signInWithPassword({ email: email('dave'), password: PASSWORD }), 'sign in after delete', ['invalid_credentials'], 400)
    // The anon key is not an admin.
    const denied = await client().auth.admin.listUsers()
    expect(denied.error, 'listUsers with the anon key: expected an error', denied)
  })

  await check('mfa_totp', async () => {
    const { c } = await signedIn('alice')
    const enrolled = ok(await c.auth.mfa.enroll({ factorType: 'totp', friendlyName: 'phone app' }), 'mfa.enroll')
    expect(enrolled.id && enrolled.type === 'totp' && enrolled.totp?.secret && enrolled.totp.uri.startsWith('otpauth://totp/'),
      'enroll: factor with secret and uri', { ...enrolled, totp: { ...enrolled.totp, qr_code: '…' } })
    const before = ok(await c.auth.mfa.getAuthenticatorAssuranceLevel(), 'aal before verify')
    expect(before.currentLevel === 'aal1', 'before verify: aal1', before)
    const wrong = await c.auth.mfa.challengeAndVerify({ factorId: enrolled.id, code: totp(enrolled.totp.secret, Date.now() - 10 * 60_000) })
    apiError(wrong, 'a stale TOTP code', ['mfa_verification_failed'], 422)
    const verified = ok(await c.auth.mfa.challengeAndVerify({ factorId: enrolled.id, code: totp(enrolled.totp.secret) }), 'mfa.challengeAndVerify')
    expect(verified.access_token && claimsOf(verified.access_token).aal === 'aal2', 'verify: an aal2 access token', verified)
    const aal = ok(await c.auth.mfa.getAuthenticatorAssuranceLevel(), 'getAuthenticatorAssuranceLevel')
    expect(aal.currentLevel === 'aal2' && aal.nextLevel === 'aal2', 'after verify: aal2', aal)
    expect(aal.currentAuthenticationMethods.some((m) => m.method === 'totp'), 'amr includes totp', aal)
    const factors = ok(await c.auth.mfa.listFactors(), 'mfa.listFactors')
    expect(factors.totp.length === 1 && factors.totp[0].id === enrolled.id, 'listFactors: the verified factor', factors)
    // The aal2 session survives a refresh as aal2.
    const refreshed = ok(await c.auth.refreshSession(), 'refresh the aal2 session')
    expect(claimsOf(refreshed.session.access_token).aal === 'aal2', 'refresh keeps aal2', claimsOf(refreshed.session.access_token))
    // A new password sign-in is aal1, with aal2 as the next level.
    const fresh = await signedIn('alice')
    const level = ok(await fresh.c.auth.mfa.getAuthenticatorAssuranceLevel(), 'aal of a new sign-in')
    expect(level.currentLevel === 'aal1' && level.nextLevel === 'aal2', 'new sign-in: aal1 → aal2', level)
    s.aal2 = c
    s.aal1 = fresh.c
    s.factor = { id: enrolled.id, secret: enrolled.totp.secret }
  })

  await check('rls_aal2_policy', async () => {
    expect(s.aal1 && s.aal2, 'needs the sessions of mfa_totp', null)
    const denied = await s.aal1.from('secrets').insert({ id: 1, body: 'aal1' })
    expect(denied.error?.code === '42501', 'aal1 insert: refused by RLS (42501)', denied)
    const wrote = ok(await s.aal2.from('secrets').insert({ id: 2, body: 'aal2' }).select(), 'aal2 insert')
    expect(wrote.length === 1 && wrote[0].owner === s.alice.id, 'aal2 insert: the row, owned', wrote)
    const seenByAal2 = ok(await s.aal2.from('secrets').select('id, body'), 'aal2 select')
    expect(seenByAal2.length === 1 && seenByAal2[0].id === 2, 'aal2 select: its row', seenByAal2)
    const seenByAal1 = ok(await s.aal1.from('secrets').select('id'), 'aal1 select')
    expect(seenByAal1.length === 0, 'aal1 select: nothing', seenByAal1)
    const bob = await signedIn('bob')
    const seenByBob = ok(await bob.c.from('secrets').select('id'), 'bob select')
    expect(seenByBob.length === 0, 'another user: nothing', seenByBob)
    // Stepping up the aal1 session with a challenge makes it read.
    ok(await s.aal1.auth.mfa.challengeAndVerify({ factorId: s.factor.id, code: totp(s.factor.secret) }), 'step up the aal1 session')
    const stepped = ok(await s.aal1.from('secrets').select('id'), 'stepped-up select')
    expect(stepped.length === 1, 'stepped up to aal2: reads', stepped)
  })

  await check('mfa_unenroll', async () => {
    expect(s.aal2 && s.factor, 'needs the sessions of mfa_totp', null)
    const bob = await signedIn('bob')
    apiError(await bob.c.auth.mfa.unenroll({ factorId: s.factor.id }), "unenroll another user's factor", ['mfa_factor_not_found'], 404)
    const fresh = await signedIn('alice')
    apiError(await fresh.c.auth.mfa.unenroll({ factorId: s.factor.id }), 'unenroll a verified factor at aal1', ['insufficient_aal'], 401)
    ok(await s.aal2.auth.mfa.unenroll({ factorId: s.factor.id }), 'mfa.unenroll at aal2')
    const factors = ok(await fresh.c.auth.mfa.listFactors(), 'listFactors after unenroll')
    expect(factors.all.length === 0, 'no factors left', factors)
    const level = ok(await (await signedIn('alice')).c.auth.mfa.getAuthenticatorAssuranceLevel(), 'aal after unenroll')
    expect(level.currentLevel === 'aal1' && level.nextLevel === 'aal1', 'after unenroll: aal1 → aal1', level)
  })

  await check('update_password', async () => {
    const { c } = await signedIn('bob')
    ok(await c.auth.updateUser({ password: 'bobs-new-password' }), 'updateUser({password})')
    apiError(await client().auth.signInWithPassword({ email: email('bob'), password: PASSWORD }), 'the old password', ['invalid_credentials'], 400)
    ok(await client().auth.signInWithPassword({ email: email('bob'), password: 'bobs-new-password' }), 'the new password')
    ok(await c.auth.updateUser({ password: PASSWORD }), 'and back')
    const same = await c.auth.updateUser({ password: PASSWORD })
    return { same: apiError(same, 'the same password again', ['same_password'], 422) }
  })

  await check('rls_notes_password_session', async () => {
    const alice = await notesRoundTrip((await signedIn('alice')).c, 'alice')
    const bob = await notesRoundTrip((await signedIn('bob')).c, 'bob')
    const anon = ok(await client().from('notes').select('id'), 'anon select')
    expect(anon.length === 0, 'anon: sees no notes', anon)
    return { alice, bob }
  })
}

// ------------------------------------------------------------------ confirmations server

async function confirm() {
  await check('pkce_signup_confirm', async () => {
    const c = pkceClient()
    const data = ok(await c.auth.signUp({
      email: email('erin'), password: PASSWORD,
      options: { emailRedirectTo: 'http://127.0.0.1:3000/welcome' },
    }), 'signUp (pkce, confirmations on)')
    expect(data.user?.email === email('erin') && data.session === null, 'signUp: a user and no session', data)
    expect(!data.user.email_confirmed_at && data.user.confirmation_sent_at, 'signUp: unconfirmed, confirmation sent', data.user)
    const early = await client().auth.signInWithPassword({ email: email('erin'), password: PASSWORD })
    const unconfirmed = apiError(early, 'sign in before confirming', ['email_not_confirmed'], 400)
    const message = await inbox(email('erin'), 'confirmation')
    const link = linkIn(message)
    expect(link.includes('/auth/v1/verify?') && link.includes('pkce_'), 'confirmation link: /verify with a pkce token', link)
    const location = await follow(link)
    expect(location.origin + location.pathname === 'http://127.0.0.1:3000/welcome', 'redirects to emailRedirectTo', location.href)
    const code = location.searchParams.get('code')
    expect(code, 'Location has ?code=', location.href)
    const exchanged = ok(await c.auth.exchangeCodeForSession(code), 'exchangeCodeForSession')
    expect(exchanged.session?.access_token && exchanged.user.email_confirmed_at, 'exchange: a session, confirmed', exchanged)
    const again = await c.auth.exchangeCodeForSession(code)
    expect(again.error, 'the code is single-use', again)
    await notesRoundTrip(c, 'pkce')
    const signin = ok(await client().auth.signInWithPassword({ email: email('erin'), password: PASSWORD }), 'sign in after confirming')
    expect(signin.session, 'sign in after confirming: a session', signin)
    return { unconfirmed }
  })

  await check('otp_code_implicit', async () => {
    const c = client()
    ok(await c.auth.signInWithOtp({ email: email('frank') }), 'signInWithOtp')
    const message = await inbox(email('frank'), 'confirmation')
    const token = codeIn(message)
    const bad = await c.auth.verifyOtp({ email: email('frank'), token: token === '000000' ? '111111' : '000000', type: 'email' })
    apiError(bad, 'verifyOtp with a wrong code', ['otp_expired'], 403)
    const data = ok(await c.auth.verifyOtp({ email: email('frank'), token, type: 'email' }), 'verifyOtp')
    expect(data.session?.access_token && data.user.email === email('frank') && data.user.email_confirmed_at,
      'verifyOtp: a session for a confirmed user', data)
    await notesRoundTrip(c, 'otp')
    // An existing, confirmed user gets a magic link email with a code.
    ok(await client().auth.signInWithOtp({ email: email('frank'), options: { shouldCreateUser: false } }), 'signInWithOtp again')
    const magic = await inbox(email('frank'), 'magic_link')
    const again = ok(await client().auth.verifyOtp({ email: email('frank'), token: codeIn(magic), type: 'email' }), 'verifyOtp (magic link code)')
    expect(again.session, 'magic link code: a session', again)
  })

  await check('recovery_implicit', async () => {
    ok(await service().auth.admin.createUser({ email: email('gina'), password: PASSWORD, email_confirm: true }), 'createUser')
    const c = client()
    ok(await c.auth.resetPasswordForEmail(email('gina'), { redirectTo: 'http://127.0.0.1:3000/reset' }), 'resetPasswordForEmail')
    const location = await follow(linkIn(await inbox(email('gina'), 'recovery')))
    expect(location.origin + location.pathname === 'http://127.0.0.1:3000/reset', 'redirects to redirectTo', location.href)
    const fragment = new URLSearchParams(location.hash.slice(1))
    expect(fragment.get('access_token') && fragment.get('refresh_token') && fragment.get('type') === 'recovery',
      'Location fragment: access_token, refresh_token, type=recovery', location.href)
    ok(await c.auth.setSession({ access_token: fragment.get('access_token'), refresh_token: fragment.get('refresh_token') }), 'setSession')
    ok(await c.auth.updateUser({ password: 'a-brand-new-password' }), 'updateUser({password}) in the recovery session')
    await notesRoundTrip(c, 'recovery')
    apiError(await client().auth.signInWithPassword({ email: email('gina'), password: PASSWORD }), 'old password', ['invalid_credentials'], 400)
    const data = ok(await client().auth.signInWithPassword({ email: email('gina'), password: 'a-brand-new-password' }), 'new password')
    expect(data.session, 'the new password signs in', data)
  })

  await check('recovery_pkce', async () => {
    const c = pkceClient()
    ok(await c.auth.resetPasswordForEmail(email('erin'), { redirectTo: 'http://127.0.0.1:3000/reset' }), 'resetPasswordForEmail (pkce)')
    const location = await follow(linkIn(await inbox(email('erin'), 'recovery')))
    const code = location.searchParams.get('code')
    expect(code, 'pkce recovery: Location has ?code=', location.href)
    const data = ok(await c.auth.exchangeCodeForSession(code), 'exchangeCodeForSession (recovery)')
    expect(data.session?.access_token, 'pkce recovery: a session', data)
  })

  await check('magiclink_pkce', async () => {
    const c = pkceClient()
    await pastMaxFrequency()
    ok(await c.auth.signInWithOtp({ email: email('frank'), options: { emailRedirectTo: 'http://127.0.0.1:3000/in' } }), 'signInWithOtp (pkce)')
    const tooSoon = await client().auth.signInWithOtp({ email: email('frank') })
    const limited = apiError(tooSoon, 'a second email to the same address right away', ['over_email_send_rate_limit'], 429)
    const location = await follow(linkIn(await inbox(email('frank'), 'magic_link')))
    const code = location.searchParams.get('code')
    expect(code && location.pathname === '/in', 'magic link: Location is the redirect with ?code=', location.href)
    const data = ok(await c.auth.exchangeCodeForSession(code), 'exchangeCodeForSession (magic link)')
    expect(data.session && data.user.email === email('frank'), 'magic link: a session', data)
    const amr = claimsOf(data.session.access_token).amr
    expect(amr?.some((m) => m.method === 'magiclink' || m.method === 'otp'), 'magic link: amr', amr)
    return { limited }
  })

  await check('recovery_code', async () => {
    await pastMaxFrequency()
    ok(await client().auth.resetPasswordForEmail(email('gina')), 'resetPasswordForEmail')
    const token = codeIn(await inbox(email('gina'), 'recovery'))
    const data = ok(await client().auth.verifyOtp({ email: email('gina'), token, type: 'recovery' }), "verifyOtp type 'recovery'")
    expect(data.session?.access_token, 'recovery code: a session', data)
  })

  await check('invite', async () => {
    const invited = ok(await service().auth.admin.inviteUserByEmail(email('hank'), {
      data: { invited_by: 'admin' }, redirectTo: 'http://127.0.0.1:3000/join',
    }), 'admin.inviteUserByEmail')
    expect(invited.user.email === email('hank') && invited.user.invited_at, 'invite: an invited user', invited.user)
    const location = await follow(linkIn(await inbox(email('hank'), 'invite')))
    const fragment = new URLSearchParams(location.hash.slice(1))
    expect(location.pathname === '/join' && fragment.get('access_token') && fragment.get('type') === 'invite',
      'invite link: fragment with access_token and type=invite', location.href)
    const c = client()
    ok(await c.auth.setSession({ access_token: fragment.get('access_token'), refresh_token: fragment.get('refresh_token') }), 'setSession')
    ok(await c.auth.updateUser({ password: PASSWORD }), 'set a password')
    await notesRoundTrip(c, 'invite')
    ok(await client().auth.signInWithPassword({ email: email('hank'), password: PASSWORD }), 'sign in after the invite')
  })

  await check('generate_link', async () => {
    const admin = service().auth.admin
    const data = ok(await admin.generateLink({ type: 'magiclink', email: email('gina') }), "admin.generateLink('magiclink')")
    expect(data.properties?.action_link?.includes('/auth/v1/verify?') && data.properties.email_otp &&
      data.properties.verification_type === 'magiclink', 'generateLink: action link and code', data.properties)
    const session = ok(await client().auth.verifyOtp({ email: email('gina'), token: data.properties.email_otp, type: 'email' }), 'verifyOtp with the generated code')
    expect(session.session, 'generated code: a session', session)
    // The token-hash flow of the SSR guides: {{ .TokenHash }} in the email, verified server-side.
    const again = ok(await admin.generateLink({ type: 'magiclink', email: email('gina') }), 'generateLink again')
    expect(again.properties.hashed_token, 'generateLink: hashed_token', again.properties)
    const byHash = ok(await client().auth.verifyOtp({ token_hash: again.properties.hashed_token, type: 'magiclink' }), 'verifyOtp({token_hash})')
    expect(byHash.session && byHash.user.email === email('gina'), 'token hash: a session', byHash)
    const replay = await client().auth.verifyOtp({ token_hash: again.properties.hashed_token, type: 'magiclink' })
    apiError(replay, 'the same token hash twice', ['otp_expired'], 403)
  })

  await check('email_change_double_confirm', async () => {
    const { c } = await signedIn('erin')
    const data = ok(await c.auth.updateUser({ email: email('erin2') }), 'updateUser({email})')
    expect(data.user.email === email('erin') && data.user.new_email === email('erin2'), 'email change pending: new_email set', data.user)
    const toNew = await inbox(email('erin2'), 'email_change')
    const toOld = await inbox(email('erin'), 'email_change')
    await follow(linkIn(toOld))
    const mid = ok(await c.auth.getUser(), 'getUser after the first confirmation')
    expect(mid.user.email === email('erin'), 'one of two confirmations: email unchanged', mid.user)
    await follow(linkIn(toNew))
    const after = ok(await service().auth.admin.getUserById(data.user.id), 'getUserById after both')
    expect(after.user.email === email('erin2'), 'both confirmed: the email changed', after.user)
    ok(await client().auth.signInWithPassword({ email: email('erin2'), password: PASSWORD }), 'sign in with the new email')
  })

  await check('resend_signup_implicit', async () => {
    const c = client()
    const data = ok(await c.auth.signUp({ email: email('ivy'), password: PASSWORD }), 'signUp (implicit)')
    expect(data.session === null && data.user, 'signUp: no session yet', data)
    // Signing up again with the unconfirmed address (past max_frequency: it sends the
    // confirmation again): no error, no session, nothing revealed.
    await pastMaxFrequency()
    const twice = ok(await client().auth.signUp({ email: email('ivy'), password: PASSWORD }), 'signUp again')
    expect(twice.session === null, 'signUp again: no session', twice)
    await pastMaxFrequency()
    ok(await c.auth.resend({ type: 'signup', email: email('ivy') }), "resend({type: 'signup'})")
    const location = await follow(linkIn(await inbox(email('ivy'), 'confirmation')))
    const fragment = new URLSearchParams(location.hash.slice(1))
    expect(fragment.get('access_token') && fragment.get('type') === 'signup', 'confirmation link: fragment with type=signup', location.href)
    const user = ok(await client().auth.getUser(fragment.get('access_token')), 'getUser with the fragment token')
    expect(user.user.email === email('ivy') && user.user.email_confirmed_at, 'confirmed by the link', user.user)
  })

  await check('refresh_reuse_after_interval', async () => {
    // This server's refresh_token_reuse_interval is 1 s.
    const { session } = await signedIn('gina', 'a-brand-new-password')
    const t0 = session.refresh_token
    const t1 = ok(await refreshWith(t0), 'refresh 1').session.refresh_token
    const t2 = ok(await refreshWith(t1), 'refresh 2').session.refresh_token
    await sleep(2200)
    const reused = apiError(await refreshWith(t0), 'a revoked token past the reuse interval', ['refresh_token_already_used'], 400)
    // The whole family was revoked: past the interval, the once-active token is refused too
    // (within it, GoTrue would still swap it, as any recently revoked token).
    await sleep(2200)
    apiError(await refreshWith(t2), 'the active token after a reuse was detected (family revoked)',
      ['refresh_token_already_used'], 400)
    return { reused }
  })
}

const suites = { autoconfirm, confirm }
const suite = suites[process.argv[2]]
if (!suite) {
  console.error(`usage: node auth.mjs ${Object.keys(suites).join('|')}`)
  process.exit(2)
}
await suite()
process.stdout.write(JSON.stringify(results))
process.exit(0)

// TUS resumable uploads through the real tus-js-client, as Supabase's docs use it, run by
// tests/compat/test_storage_tus_js.py.
//
// Reads SUPABASE_URL, SUPABASE_ANON_KEY, ALICE_EMAIL, USER_PASSWORD from the environment.  The
// server has the folder policy from Supabase's docs on bucket `private` and a global limit
// above two 6 MB chunks.  Runs named checks in order and prints one JSON object to stdout:
// {check: {ok: true, detail} | {ok: false, error}}.  A check fails by throwing.

import { createClient } from '@supabase/supabase-js'
import * as tus from 'tus-js-client'
import ws from 'ws'
import { createHash, createHmac, randomBytes } from 'node:crypto'

const env = process.env
const URL_ = env.SUPABASE_URL
const ENDPOINT = `${URL_}/storage/v1/upload/resumable`
const SIGNED_ENDPOINT = `${ENDPOINT}/sign`
const CHUNK = 6 * 1024 * 1024 // Supabase's docs: chunks must be exactly 6 MB

class CheckFailed extends Error {}

function expect(cond, what, got) {
  if (!cond) {
    throw new CheckFailed(`${what}; got ${JSON.stringify(got, null, 1)?.slice(0, 2000)}`)
  }
}

const sha = (buf) => createHash('sha256').update(buf).digest('hex')

// The options of Supabase's docs example (uploadFile with tus-js-client).
function docsOptions(token, bucketName, objectName, extra = {}) {
  return {
    endpoint: ENDPOINT,
    retryDelays: [0, 100],
    headers: { authorization: `Bearer ${token}`, 'x-upsert': 'true' },
    uploadDataDuringCreation: true,
    removeFingerprintOnSuccess: true,
    metadata: {
      bucketName,
      objectName,
      contentType: 'application/octet-stream',
      cacheControl: '3600',
    },
    chunkSize: CHUNK,
    ...extra,
  }
}

// Runs an upload to its end: resolves on success, rejects with tus-js-client's error.
function run(file, options) {
  return new Promise((resolve, reject) => {
    const upload = new tus.Upload(file, {
      ...options,
      onError: reject,
      onSuccess: () => resolve(upload),
    })
    upload.start()
  })
}

// The error of an upload that must fail: tus-js-client's DetailedError with the response.
async function refused(file, options, status, body, what) {
  let error
  try {
    await run(file, { ...options, retryDelays: null })
  } catch (e) {
    error = e
  }
  expect(error, `${what} should fail`, null)
  const res = error.originalResponse
  expect(res, `${what}: a response`, String(error))
  expect(res.getStatus() === status && res.getBody() === body, `${what}: ${status} ${body}`, {
    status: res.getStatus(), body: res.getBody(),
  })
}

async function download(c, path) {
  const { data, error } = await c.storage.from('private').download(path)
  if (error) throw new CheckFailed(`download ${path}: ${error.message}`)
  return Buffer.from(await data.arrayBuffer())
}

const results = {}
async function check(name, fn) {
  try {
    results[name] = { ok: true, detail: (await fn()) ?? null }
  } catch (e) {
    results[name] = { ok: false, error: `${e?.name}: ${e?.message}` }
  }
}

const c = createClient(URL_, env.SUPABASE_ANON_KEY, {
  auth: { persistSession: false, autoRefreshToken: false, detectSessionInUrl: false },
  ...(globalThis.WebSocket ? {} : { realtime: { transport: ws } }),
})
const { data: signIn, error: signInError } = await c.auth.signInWithPassword({
  email: env.ALICE_EMAIL, password: env.USER_PASSWORD,
})
if (signInError) throw signInError
const token = signIn.session.access_token
const uid = signIn.user.id
// Larger than two chunks, so three requests carry it.
const file = randomBytes(2 * CHUNK + 123_457)

// Starts an upload of `file` and aborts it once the server has accepted one chunk: its URL.
function abortAfterOneChunk(options) {
  return new Promise((resolve, reject) => {
    const upload = new tus.Upload(file, {
      ...options,
      onError: reject,
      onSuccess: () => reject(new CheckFailed('the first attempt should not finish')),
      onChunkComplete: (chunkSize, accepted) => {
        if (accepted === CHUNK) {
          upload.abort().then(() => resolve(upload.url), reject)
        }
      },
    })
    upload.start()
  })
}

// A new Upload on the same URL asks the server (HEAD) and goes on from the offset it kept,
// without creating another upload, and the object has the whole file: the requests it made.
async function resumeFromKeptOffset(options, uploadUrl, name) {
  const seen = []
  await run(file, {
    ...options,
    uploadUrl,
    onBeforeRequest: (req) => {
      seen.push(`${req.getMethod()} ${req.getHeader('Upload-Offset') ?? ''}`.trim())
    },
  })
  expect(seen[0] === 'HEAD', 'the resume starts with HEAD', seen)
  expect(!seen.some((s) => s.startsWith('POST')), 'no new upload is created', seen)
  expect(seen[1] === `PATCH ${CHUNK}`, 'the first PATCH starts at the kept offset', seen)
  const got = await download(c, name)
  expect(got.length === file.length && sha(got) === sha(file), 'the same bytes', got.length)
  return seen
}

await check('upload_in_chunks', async () => {
  const methods = []
  await run(file, docsOptions(token, 'private', `${uid}/chunks.bin`, {
    onAfterResponse: (req, res) => { methods.push(`${req.getMethod()} ${res.getStatus()}`) },
  }))
  expect(
    JSON.stringify(methods) === JSON.stringify(['POST 201', 'PATCH 204', 'PATCH 204']),
    'one creation with the first chunk, then two PATCHes', methods,
  )
  const got = await download(c, `${uid}/chunks.bin`)
  expect(got.length === file.length && sha(got) === sha(file), 'the same bytes', got.length)
  const { data: info } = await c.storage.from('private').info(`${uid}/chunks.bin`)
  expect(info?.cacheControl === 'max-age=3600' || info?.cache_control === 'max-age=3600',
    'cacheControl from the metadata', info)
  return { requests: methods }
})

await check('resume_after_abort', async () => {
  const name = `${uid}/resumed.bin`
  // First attempt: stopped after one chunk (the creation carried it).
  const uploadUrl = await abortAfterOneChunk(docsOptions(token, 'private', name))
  expect(typeof uploadUrl === 'string' && uploadUrl.startsWith(`${ENDPOINT}/`), 'an upload URL',
    uploadUrl)
  const head = await fetch(uploadUrl, {
    method: 'HEAD', headers: { authorization: `Bearer ${token}`, 'tus-resumable': '1.0.0' },
  })
  expect(head.headers.get('upload-offset') === String(CHUNK), 'the server kept one chunk',
    head.headers.get('upload-offset'))
  const listed = await c.storage.from('private').list(uid)
  expect(!listed.data.some((o) => o.name === 'resumed.bin'), 'no object before the end',
    listed.data.map((o) => o.name))
  // Second attempt, a new Upload on the same URL: it asks the server and goes on from there.
  const seen = await resumeFromKeptOffset(docsOptions(token, 'private', name), uploadUrl, name)
  return { requests: seen }
})

await check('rls_refused', async () => {
  const small = randomBytes(1000)
  await refused(small, docsOptions(token, 'private', 'someone-else/x.bin'), 403,
    'new row violates row-level security policy', "another user's folder")
})

await check('upsert_conflict', async () => {
  const small = randomBytes(1000)
  const options = docsOptions(token, 'private', `${uid}/chunks.bin`)
  options.headers = { ...options.headers, 'x-upsert': 'false' }
  await refused(small, options, 409, 'The resource already exists', 'x-upsert false on an object')
})

// The options of Supabase's docs for a signed upload URL: the token in `x-signature`, no
// authorization header at all.
function signedOptions(signature, objectName, extra = {}) {
  return {
    endpoint: SIGNED_ENDPOINT,
    retryDelays: [0, 100],
    headers: { 'x-signature': signature },
    uploadDataDuringCreation: true,
    removeFingerprintOnSuccess: true,
    metadata: { bucketName: 'private', objectName, contentType: 'application/octet-stream' },
    chunkSize: CHUNK,
    ...extra,
  }
}

async function signUpload(path) {
  const { data, error } = await c.storage.from('private').createSignedUploadUrl(path)
  if (error) throw new CheckFailed(`createSignedUploadUrl ${path}: ${error.message}`)
  return data.token
}

await check('signed_resume_after_abort', async () => {
  const name = `${uid}/signed.bin`
  const signature = await signUpload(name)
  const sent = []
  const uploadUrl = await abortAfterOneChunk(signedOptions(signature, name, {
    onBeforeRequest: (req) => {
      sent.push(req.getHeader('authorization') ?? req.getHeader('Authorization') ?? null)
    },
  }))
  expect(sent.length > 0 && sent.every((h) => h === null), 'no authorization header sent', sent)
  expect(typeof uploadUrl === 'string' && uploadUrl.startsWith(`${SIGNED_ENDPOINT}/`),
    'an upload URL under /upload/resumable/sign', uploadUrl)
  const head = await fetch(uploadUrl, {
    method: 'HEAD', headers: { 'x-signature': signature, 'tus-resumable': '1.0.0' },
  })
  expect(head.status === 200 && head.headers.get('upload-offset') === String(CHUNK),
    'the server kept one chunk', { status: head.status, offset: head.headers.get('upload-offset') })
  const seen = await resumeFromKeptOffset(signedOptions(signature, name), uploadUrl, name)
  const { data: info, error } = await c.storage.from('private').info(name)
  expect(!error && info?.size === file.length, 'info of the object', { info, error })
  return { requests: seen }
})

// An HS256 token with the claims of a real one but a secret that is not the server's.
function forge(claims) {
  const part = (obj) => Buffer.from(JSON.stringify(obj)).toString('base64url')
  const body = `${part({ alg: 'HS256', typ: 'JWT' })}.${part(claims)}`
  return `${body}.${createHmac('sha256', 'not-the-secret').update(body).digest('base64url')}`
}

await check('signed_refused', async () => {
  const small = randomBytes(1000)
  const name = `${uid}/signed-refused.bin`
  const other = await signUpload(`${uid}/signed-other.bin`)
  await refused(small, signedOptions(other, name), 400, 'Invalid signature',
    'a token for another object')
  const claims = JSON.parse(Buffer.from(other.split('.')[1], 'base64url').toString())
  await refused(small, signedOptions(forge({ ...claims, url: `private/${name}` }), name), 400,
    'signature verification failed', 'a forged token')
  await refused(small, signedOptions('', name), 400, 'Missing x-signature header',
    'no token')
  const { data: listed } = await c.storage.from('private').list(uid)
  expect(!listed.some((o) => o.name.startsWith('signed-refused') || o.name === 'signed-other.bin'),
    'nothing stored', listed.map((o) => o.name))
})

process.stdout.write(JSON.stringify(results))

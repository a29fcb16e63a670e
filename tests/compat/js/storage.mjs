// Storage through supabase-js (storage-js), run by tests/compat/test_storage_js.py.
//
// Reads SUPABASE_URL, SUPABASE_ANON_KEY, SUPABASE_SERVICE_ROLE_KEY, ALICE_EMAIL, BOB_EMAIL,
// USER_PASSWORD from the environment.  The server has the folder policy from Supabase's docs on
// bucket `private` (users read and write only under a folder named by their auth.uid()).
// Runs named checks in order and prints one JSON object to stdout:
// {check: {ok: true, detail} | {ok: false, error}}.  A check fails by throwing.

import { createClient } from '@supabase/supabase-js'
import ws from 'ws'
import { deflateSync, crc32 } from 'node:zlib'

const env = process.env
const URL_ = env.SUPABASE_URL
const ANON = env.SUPABASE_ANON_KEY
const SERVICE = env.SUPABASE_SERVICE_ROLE_KEY

class CheckFailed extends Error {}

function expect(cond, what, got) {
  if (!cond) {
    throw new CheckFailed(`${what}; got ${JSON.stringify(got, null, 1)?.slice(0, 2000)}`)
  }
}

function client(key = ANON) {
  return createClient(URL_, key, {
    auth: { persistSession: false, autoRefreshToken: false, detectSessionInUrl: false },
    ...(globalThis.WebSocket ? {} : { realtime: { transport: ws } }),
  })
}

async function signedIn(email) {
  const c = client()
  const { data, error } = await c.auth.signInWithPassword({ email, password: env.USER_PASSWORD })
  if (error) throw error
  return { c, uid: data.user.id }
}

// The data of a call that must succeed.
function ok({ data, error }, what) {
  if (error) throw new CheckFailed(`${what}: ${JSON.stringify(error)} ${error.message}`)
  return data
}

// The error of a call that must fail, with Supabase's statusCode.
function fails({ data, error }, statusCode, what) {
  expect(error, `${what} should fail`, data)
  expect(error.statusCode === statusCode, `${what}: statusCode ${statusCode}`, {
    statusCode: error.statusCode, message: error.message, code: error.code,
  })
  return error
}

const text = async (blob) => (blob instanceof Blob ? await blob.text() : String(blob))

// A w×h grey PNG, built here (Node has no image library): signature, IHDR, IDAT, IEND.
function png(w, h) {
  const chunk = (type, data) => {
    const out = Buffer.alloc(12 + data.length)
    out.writeUInt32BE(data.length, 0)
    out.write(type, 4, 'latin1')
    data.copy(out, 8)
    out.writeUInt32BE(crc32(out.subarray(4, 8 + data.length)), 8 + data.length)
    return out
  }
  const ihdr = Buffer.alloc(13)
  ihdr.writeUInt32BE(w, 0); ihdr.writeUInt32BE(h, 4); ihdr[8] = 8; ihdr[9] = 0 // 8-bit grey
  const rows = Buffer.alloc((w + 1) * h, 128)
  for (let y = 0; y < h; y++) rows[y * (w + 1)] = 0 // filter byte: none
  return Buffer.concat([Buffer.from([137, 80, 78, 71, 13, 10, 26, 10]), chunk('IHDR', ihdr),
    chunk('IDAT', deflateSync(rows)), chunk('IEND', Buffer.alloc(0))])
}

// [width, height] of PNG bytes (IHDR), or null if they are not a PNG.
function pngSize(buf) {
  const b = Buffer.from(buf)
  if (b.length < 24 || b.toString('latin1', 12, 16) !== 'IHDR') return null
  return [b.readUInt32BE(16), b.readUInt32BE(20)]
}

const service = client(SERVICE)
const anon = client(ANON)
let alice, bob

const checks = {
  async buckets() {
    ok(await service.storage.createBucket('private'), 'create private')
    ok(await service.storage.createBucket('public-js', { public: true }), 'create public')
    ok(
      await service.storage.createBucket('limited', {
        public: false, fileSizeLimit: '1MB', allowedMimeTypes: ['image/*'],
      }),
      'create limited'
    )
    const all = ok(await service.storage.listBuckets(), 'list')
    const names = all.map((b) => b.name)
    expect(['private', 'public-js', 'limited', 'configured'].every((n) => names.includes(n)),
      'all buckets listed', names)
    const b = ok(await service.storage.getBucket('limited'), 'get')
    expect(b.file_size_limit === 1000000 && b.allowed_mime_types[0] === 'image/*', 'limits', b)
    ok(await service.storage.updateBucket('limited', { public: true, fileSizeLimit: 2000 }), 'update')
    expect(ok(await service.storage.getBucket('limited'), 'get').public === true, 'updated', null)
    const dup = fails(await service.storage.createBucket('private'), '409', 'duplicate')
    expect(dup.message === 'The resource already exists', 'duplicate message', dup.message)
    fails(await service.storage.getBucket('nope'), '404', 'missing bucket')
    expect(ok(await anon.storage.listBuckets(), 'anon list').length === 0, 'anon sees none', null)
    fails(await anon.storage.createBucket('anon-bucket'), '403', 'anon create')
    ok(await service.storage.from('limited').upload('x.png', new Blob(['x'], { type: 'image/png' })), 'up')
    fails(await service.storage.deleteBucket('limited'), '409', 'delete non-empty')
    ok(await service.storage.emptyBucket('limited'), 'empty')
    ok(await service.storage.deleteBucket('limited'), 'delete')
    return names
  },

  async sign_in() {
    alice = await signedIn(env.ALICE_EMAIL)
    bob = await signedIn(env.BOB_EMAIL)
    expect(alice.uid && bob.uid && alice.uid !== bob.uid, 'two users', [alice.uid, bob.uid])
  },

  async upload_forms() {
    const files = alice.c.storage.from('private')
    const p = `${alice.uid}/docs/blob.txt`
    // A Blob goes as multipart (field ''), a string as a raw body.
    const up = ok(await files.upload(p, new Blob(['from a blob'], { type: 'text/plain' }), {
      metadata: { kind: 'blob' },
    }), 'blob upload')
    expect(up.path === p && up.fullPath === `private/${p}` && up.id, 'upload result', up)
    ok(await files.upload(`${alice.uid}/docs/raw.txt`, 'raw string body', {
      contentType: 'text/plain', cacheControl: '120', metadata: { kind: 'raw' },
    }), 'raw upload')
    ok(await files.upload(`${alice.uid}/docs/bytes.bin`, new Uint8Array([1, 2, 3, 255]), {
      contentType: 'application/octet-stream',
    }), 'bytes upload')
    const info = ok(await files.info(`${alice.uid}/docs/raw.txt`), 'info')
    expect(info.size === 15 && info.contentType === 'text/plain' && info.cacheControl === 'max-age=120',
      'info of raw', info)
    expect(info.metadata?.kind === 'raw', 'user metadata', info)
    const blobInfo = ok(await files.info(p), 'info blob')
    expect(blobInfo.metadata?.kind === 'blob' && blobInfo.cacheControl === 'max-age=3600', 'blob info', blobInfo)
    const bytes = ok(await files.download(`${alice.uid}/docs/bytes.bin`), 'download bytes')
    const arr = new Uint8Array(await bytes.arrayBuffer())
    expect(arr.length === 4 && arr[3] === 255, 'bytes round trip', Array.from(arr))
    expect(await text(ok(await files.download(p), 'download')) === 'from a blob', 'blob round trip', null)
    return info
  },

  async exists_list_update() {
    const files = alice.c.storage.from('private')
    expect(ok(await files.exists(`${alice.uid}/docs/raw.txt`), 'exists') === true, 'exists', null)
    const { data: gone } = await files.exists(`${alice.uid}/docs/nope.txt`)
    expect(gone === false, 'not exists', gone)
    ok(await files.upload(`${alice.uid}/docs/sub/deep.txt`, 'deep', { contentType: 'text/plain' }), 'deep')
    const listing = ok(await files.list(`${alice.uid}/docs`), 'list')
    const shown = listing.map((e) => `${e.name}:${e.id === null ? 'folder' : 'file'}`)
    expect(JSON.stringify(shown) === JSON.stringify(
      ['blob.txt:file', 'bytes.bin:file', 'raw.txt:file', 'sub:folder']), 'listing', shown)
    const searched = ok(await files.list(`${alice.uid}/docs`, { search: 'ra', limit: 10 }), 'search')
    expect(searched.length === 1 && searched[0].name === 'raw.txt', 'search', searched)
    const page = ok(await files.list(`${alice.uid}/docs`, {
      limit: 2, offset: 1, sortBy: { column: 'name', order: 'desc' } }), 'page')
    expect(page.map((e) => e.name).join() === 'raw.txt,bytes.bin', 'page', page)
    fails(await files.upload(`${alice.uid}/docs/raw.txt`, 'again', { contentType: 'text/plain' }), '409', 'dup upload')
    ok(await files.upload(`${alice.uid}/docs/raw.txt`, 'upserted', { contentType: 'text/plain', upsert: true }), 'upsert')
    ok(await files.update(`${alice.uid}/docs/raw.txt`, 'updated!', { contentType: 'text/plain' }), 'update')
    expect(await text(ok(await files.download(`${alice.uid}/docs/raw.txt`), 'dl')) === 'updated!', 'updated', null)
    return shown
  },

  async move_copy_remove() {
    const files = alice.c.storage.from('private')
    const a = `${alice.uid}/docs/blob.txt`
    ok(await files.move(a, `${alice.uid}/moved.txt`), 'move')
    ok(await files.copy(`${alice.uid}/moved.txt`, `${alice.uid}/copied.txt`), 'copy')
    expect(await text(ok(await files.download(`${alice.uid}/copied.txt`), 'dl copy')) === 'from a blob', 'copied', null)
    fails(await files.move(`${alice.uid}/moved.txt`, `${bob.uid}/stolen.txt`), '403', 'move into bob')
    fails(await files.copy(`${alice.uid}/moved.txt`, `${bob.uid}/stolen.txt`), '403', 'copy into bob')
    const removed = ok(await files.remove([`${alice.uid}/copied.txt`, `${alice.uid}/nope.txt`]), 'remove')
    expect(removed.length === 1 && removed[0].name === `${alice.uid}/copied.txt`, 'removed', removed)
    // Across buckets, as service_role.
    ok(await service.storage.from('private').copy(`${alice.uid}/moved.txt`, 'from-private.txt',
      { destinationBucket: 'public-js' }), 'copy across')
    ok(await service.storage.from('public-js').move('from-private.txt', 'x/across.txt',
      { destinationBucket: 'public-js' }), 'move within')
    return removed.length
  },

  async rls_between_users() {
    const mine = `${alice.uid}/moved.txt`
    const theirs = bob.c.storage.from('private')
    fails(await theirs.download(mine), '404', 'bob downloads alice')
    fails(await theirs.info(mine), '404', 'bob info alice')
    expect(ok(await theirs.list(alice.uid), 'bob lists alice').length === 0, 'bob sees nothing', null)
    const e = fails(await theirs.upload(`${alice.uid}/evil.txt`, 'x', { contentType: 'text/plain' }), '403', 'bob writes alice')
    expect(e.message === 'new row violates row-level security policy', 'rls message', e.message)
    expect(ok(await theirs.remove([mine]), 'bob removes').length === 0, 'nothing removed', null)
    ok(await theirs.upload(`${bob.uid}/own.txt`, 'bob', { contentType: 'text/plain' }), 'bob own')
    fails(await alice.c.storage.from('private').download(`${bob.uid}/own.txt`), '404', 'alice reads bob')
    fails(await anon.storage.from('private').upload(`${alice.uid}/anon.txt`, 'x'), '403', 'anon writes')
    fails(await anon.storage.from('private').download(mine), '404', 'anon reads')
    // service_role bypasses RLS.
    expect(await text(ok(await service.storage.from('private').download(mine), 'service dl')) === 'from a blob',
      'service reads all', null)
    const root = ok(await service.storage.from('private').list(''), 'service root')
    expect(root.length === 2 && root.every((e) => e.id === null), 'both folders', root)
  },

  async public_urls() {
    const { data } = anon.storage.from('public-js').getPublicUrl('x/across.txt')
    const r = await fetch(data.publicUrl)
    expect(r.status === 200 && (await r.text()) === 'from a blob', 'public url', r.status)
    const { data: dl } = anon.storage.from('public-js').getPublicUrl('x/across.txt', { download: 'n.txt' })
    const r2 = await fetch(dl.publicUrl)
    expect(r2.headers.get('content-disposition')?.includes('filename=n.txt'), 'download name',
      r2.headers.get('content-disposition'))
    const { data: priv } = anon.storage.from('private').getPublicUrl(`${alice.uid}/moved.txt`)
    const r3 = await fetch(priv.publicUrl)
    const body = await r3.json()
    expect(body.statusCode === '404' && body.message === 'Bucket not found', 'private not public', body)
    return data.publicUrl
  },

  async signed_urls() {
    const files = alice.c.storage.from('private')
    const p = `${alice.uid}/moved.txt`
    const { signedUrl } = ok(await files.createSignedUrl(p, 60), 'sign')
    const r = await fetch(signedUrl)
    expect(r.status === 200 && (await r.text()) === 'from a blob', 'signed download', r.status)
    const { signedUrl: dlUrl } = ok(await files.createSignedUrl(p, 60, { download: true }), 'sign dl')
    const r2 = await fetch(dlUrl)
    expect(r2.headers.get('content-disposition')?.startsWith('attachment'), 'attachment', null)
    const many = ok(await files.createSignedUrls([p, `${alice.uid}/none.txt`], 60), 'sign many')
    expect(many[0].signedUrl && !many[0].error && many[1].error && !many[1].signedUrl, 'many', many)
    expect((await (await fetch(many[0].signedUrl)).text()) === 'from a blob', 'many dl', null)
    // The token does not open another path.
    const token = new URL(signedUrl).searchParams.get('token')
    const other = `${URL_}/storage/v1/object/sign/private/${bob.uid}/own.txt?token=${token}`
    const bad = await (await fetch(other)).json()
    expect(bad.statusCode === '400' && bad.error === 'InvalidSignature', 'other path refused', bad)
    fails(await bob.c.storage.from('private').createSignedUrl(p, 60), '404', 'bob signs alice')
    return signedUrl.split('?')[0]
  },

  async signed_upload() {
    const files = alice.c.storage.from('private')
    const p = `${alice.uid}/signed-up.txt`
    const { token, path, signedUrl } = ok(await files.createSignedUploadUrl(p), 'sign upload')
    expect(token && path === p && signedUrl.includes('/object/upload/sign/private/'), 'signed upload url',
      { token, path, signedUrl })
    const up = ok(await anon.storage.from('private').uploadToSignedUrl(p, token, 'via token',
      { contentType: 'text/plain' }), 'upload to signed')
    expect(up.fullPath === `private/${p}`, 'signed upload result', up)
    expect(await text(ok(await files.download(p), 'dl')) === 'via token', 'uploaded', null)
    fails(await anon.storage.from('private').uploadToSignedUrl(`${alice.uid}/else.txt`, token, 'x'),
      '400', 'token for another path')
    fails(await bob.c.storage.from('private').createSignedUploadUrl(`${alice.uid}/b.txt`), '403', 'bob signs upload')
    const blobUp = ok(await files.createSignedUploadUrl(`${alice.uid}/blob-up.txt`, { upsert: true }), 'sign 2')
    ok(await anon.storage.from('private').uploadToSignedUrl(`${alice.uid}/blob-up.txt`, blobUp.token,
      new Blob(['blob via token'], { type: 'text/plain' })), 'blob to signed')
    expect(await text(ok(await files.download(`${alice.uid}/blob-up.txt`), 'dl2')) === 'blob via token', 'blob up', null)
  },

  async limits() {
    const files = service.storage.from('configured')
    const big = fails(await files.upload('big.txt', 'x'.repeat(2 * 1024 * 1024), { contentType: 'text/plain' }),
      '413', 'too large')
    expect(big.message === 'The object exceeded the maximum allowed size', 'too large message', big.message)
    fails(await files.upload('a.pdf', '%PDF', { contentType: 'application/pdf' }), '415', 'mime')
    ok(await files.upload('ok.png', new Blob(['png'], { type: 'image/png' })), 'allowed')
    const missing = fails(await service.storage.from('private').download('no/such.txt'), '404', 'missing')
    expect(missing.code === 'NoSuchKey', 'NoSuchKey', missing)
  },

  async transform() {
    const src = new Blob([png(300, 150)], { type: 'image/png' })
    ok(await service.storage.from('public-js').upload('img/grey.png', src), 'upload public png')
    const mine = alice.c.storage.from('private')
    const p = `${alice.uid}/grey.png`
    ok(await mine.upload(p, src), 'upload private png')
    // download with transform: /render/image/authenticated/…, under RLS.
    const dl = ok(await mine.download(p, { transform: { width: 100, format: 'origin' } }), 'render dl')
    const dlSize = pngSize(await dl.arrayBuffer())
    expect(dlSize?.[0] === 100 && dlSize?.[1] === 50, 'rendered download 100×50', dlSize)
    fails(await bob.c.storage.from('private').download(p, { transform: { width: 10 } }), '404', 'bob renders')
    // getPublicUrl with transform: /render/image/public/…, and WebP when the client takes it.
    const { data } = anon.storage.from('public-js').getPublicUrl('img/grey.png',
      { transform: { width: 60, height: 60, resize: 'contain', quality: 50 } })
    expect(data.publicUrl.includes('/render/image/public/public-js/img/grey.png?'), 'public url', data)
    const r = await fetch(data.publicUrl)
    expect(r.status === 200 && r.headers.get('content-type') === 'image/png', 'public render', r.status)
    const pubSize = pngSize(await r.arrayBuffer())
    expect(pubSize?.[0] === 60 && pubSize?.[1] === 30, 'contain 60×30', pubSize)
    const w = await fetch(data.publicUrl, { headers: { accept: 'image/webp,*/*' } })
    expect(w.headers.get('content-type') === 'image/webp', 'webp negotiated', w.headers.get('content-type'))
    // createSignedUrl with transform: signed, then served from /render/image/sign/….
    const { signedUrl } = ok(await mine.createSignedUrl(p, 60,
      { transform: { width: 30, height: 30, format: 'origin' } }), 'sign render')
    expect(signedUrl.includes('/render/image/sign/private/'), 'signed render url', signedUrl)
    const sr = await fetch(signedUrl)
    const sSize = pngSize(await sr.arrayBuffer())
    expect(sSize?.[0] === 30 && sSize?.[1] === 30, 'cover 30×30', sSize)
    const bad = fails(await mine.download(p, { transform: { quality: 5 } }), '400', 'quality 5')
    expect(bad.message === 'querystring/quality must be >= 20', 'quality message', bad.message)
  },
}

const out = {}
for (const [name, fn] of Object.entries(checks)) {
  try {
    out[name] = { ok: true, detail: (await fn()) ?? null }
  } catch (e) {
    out[name] = { ok: false, error: `${e?.name}: ${e?.message}` }
  }
}
console.log(JSON.stringify(out))

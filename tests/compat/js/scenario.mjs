// The Data API scenario through supabase-js, run by tests/compat/test_rest_js.py.
//
// Reads the server's URL and keys, the users' access tokens and the plan (which case runs as
// whom, in which order) from the environment; prints one JSON object to stdout:
//   {"reads": {name: outcome}, "stories": {story: {step: outcome}}}
// where an outcome is what the client handed back: {status, data, count, error,
// content_range}, or {exception} if the client threw. The expected answers live in
// tests/compat/cases.py, shared with the supabase-py suite.

import { createClient } from '@supabase/supabase-js'
import ws from 'ws'

const env = process.env
const plan = JSON.parse(env.COMPAT_PLAN)
const ALICE = '11111111-1111-4111-8111-111111111111'
const BOB = '22222222-2222-4222-8222-222222222222'

// One client per caller. alice's token goes in the global Authorization header, bob's through
// the `accessToken` option (as with a third-party auth provider): the two ways an app hands a
// user's JWT to supabase-js without its Auth client. The fetch wrapper keeps the last response
// so that Content-Range can be checked too.
function caller(key, options = {}) {
  const last = { response: null }
  const client = createClient(env.SUPABASE_URL, key, {
    ...options,
    auth: { persistSession: false, autoRefreshToken: false, detectSessionInUrl: false },
    // Node < 22 has no global WebSocket; supabase-js then needs one for its realtime client
    // (unused here), as its docs say.
    ...(globalThis.WebSocket ? {} : { realtime: { transport: ws } }),
    global: {
      ...(options.global ?? {}),
      fetch: async (input, init) => {
        const response = await fetch(input, init)
        last.response = response
        return response
      },
    },
  })
  return { client, last }
}

const callers = {
  anon: caller(env.SUPABASE_ANON_KEY),
  alice: caller(env.SUPABASE_ANON_KEY, {
    global: { headers: { Authorization: `Bearer ${env.ALICE_TOKEN}` } },
  }),
  bob: caller(env.SUPABASE_ANON_KEY, { accessToken: async () => env.BOB_TOKEN }),
  service: caller(env.SUPABASE_SERVICE_ROLE_KEY),
}

const pickError = (e) =>
  e && {
    code: e.code ?? null,
    message: e.message ?? null,
    details: e.details ?? null,
    hint: e.hint ?? null,
  }

async function run(impl, role) {
  if (!impl) return { exception: 'scenario.mjs has no implementation for this case' }
  const { client, last } = callers[role]
  last.response = null
  try {
    const res = await impl(client)
    return {
      status: res.status,
      data: res.data === undefined ? null : res.data,
      count: res.count === undefined ? null : res.count,
      error: pickError(res.error),
      content_range: last.response ? last.response.headers.get('content-range') : null,
    }
  } catch (e) {
    return { exception: String(e?.stack ?? e) }
  }
}

// ------------------------------------------------------------------ reads

const tasksIds = (c) => c.from('tasks').select('id')
const projectsIds = (c) => c.from('projects').select('id')
const filtered = (build) => (c) => build(tasksIds(c)).order('id')
const filteredProjects = (build) => (c) => build(projectsIds(c)).order('id')

const reads = {
  embed_to_one: (c) =>
    c.from('tasks').select('id,title,project:projects(name)').in('id', [1, 5, 10]).order('id'),
  embed_to_one_as_bob: (c) =>
    c.from('tasks').select('id,project:projects(name)').in('id', [5, 9]).order('id'),
  embed_to_many: (c) =>
    c
      .from('projects')
      .select('name,tasks(title)')
      .order('name')
      .order('title', { referencedTable: 'tasks' }),
  embed_many_to_many: (c) =>
    c
      .from('tasks')
      .select('title,labels(name)')
      .eq('project_id', 1)
      .order('id')
      .order('name', { referencedTable: 'labels' }),
  embed_many_to_many_reverse: (c) =>
    c.from('labels').select('name,tasks(id)').order('name').order('id', { referencedTable: 'tasks' }),
  embed_inner_rls: (c) => c.from('tasks').select('id,project:projects!inner(name)').order('id'),
  embed_inner_filtered: (c) =>
    c.from('tasks').select('title,labels!inner(name)').eq('labels.name', 'urgent').order('id'),
  embed_hint_column: (c) =>
    c
      .from('tasks')
      .select('id,assignee:profiles!assignee_id(username),creator:profiles!created_by(username)')
      .in('id', [2, 4, 8])
      .order('id'),
  embed_hint_constraint: (c) =>
    c
      .from('tasks')
      .select('id,profiles!tasks_assignee_id_fkey(username)')
      .in('id', [3, 4])
      .order('id'),
  embed_ambiguous: (c) => c.from('tasks').select('title,profiles(username)'),
  embed_nested: (c) =>
    c
      .from('projects')
      .select(
        `name, owner:profiles(username),
         tasks(id, assignee:profiles!assignee_id(username), labels(name))`,
      )
      .eq('name', 'Apollo')
      .order('id', { referencedTable: 'tasks' })
      .order('name', { referencedTable: 'tasks.labels' }),
  embed_self_reference: (c) =>
    c
      .from('tasks')
      .select('id,parent:parent_id(title),subtasks:tasks!parent_id(id)')
      .in('id', [1, 2, 7])
      .order('id')
      .order('id', { referencedTable: 'subtasks' }),
  select_alias_cast_json_path: (c) =>
    c
      .from('tasks')
      .select(
        'id, name:title, prio:priority::text, estimate:meta->>estimate, est:meta->estimate::int, team:meta->owner->>team, meta->owner',
      )
      .in('id', [1, 2])
      .order('id'),

  filter_eq: filtered((q) => q.eq('status', 'done')),
  filter_neq: filtered((q) => q.neq('status', 'todo')),
  filter_gt: filtered((q) => q.gt('priority', 3)),
  filter_gte: filtered((q) => q.gte('priority', 3)),
  filter_lt: filtered((q) => q.lt('priority', 2)),
  filter_lte_date: filtered((q) => q.lte('due', '2024-02-01')),
  filter_like: filtered((q) => q.like('title', '%landing%')),
  filter_like_star: filtered((q) => q.like('title', '*page')),
  filter_ilike: filtered((q) => q.ilike('title', '%LANDING%')),
  filter_like_any_of: filtered((q) => q.likeAnyOf('title', ['*budget*', '*parts*'])),
  filter_ilike_all_of: filtered((q) => q.ilikeAllOf('title', ['*LANDING*', '*PAGE*'])),
  filter_isdistinct: filtered((q) => q.isDistinct('assignee_id', BOB)),
  filter_is_null: filtered((q) => q.is('due', null)),
  filter_not_is_null: filtered((q) => q.not('assignee_id', 'is', null)),
  filter_is_true: filteredProjects((q) => q.is('is_public', true)),
  filter_in: filtered((q) => q.in('status', ['doing', 'done'])),
  filter_in_quoted: filtered((q) => q.in('title', ['Order parts', 'Draft budget (Q1)'])),
  filter_contains_array: filtered((q) => q.contains('tags', ['web'])),
  filter_contains_jsonb: filtered((q) => q.contains('meta', { owner: { team: 'nav' } })),
  filter_contained_by: filtered((q) => q.containedBy('tags', ['web', 'design', 'copy'])),
  filter_overlaps: filtered((q) => q.overlaps('tags', ['hardware', 'finance'])),
  filter_fts: filtered((q) => q.textSearch('fts', 'landing & page', { config: 'english' })),
  filter_plfts: filtered((q) =>
    q.textSearch('fts', 'landing copy', { type: 'plain', config: 'english' }),
  ),
  filter_wfts: filtered((q) =>
    q.textSearch('fts', 'landing -review', { type: 'websearch', config: 'english' }),
  ),
  filter_fts_text_column: filtered((q) => q.textSearch('title', 'orbit', { config: 'english' })),
  filter_match: filtered((q) => q.match({ status: 'todo', priority: 3 })),
  filter_not_in: filtered((q) => q.not('status', 'in', '(todo,doing)')),
  filter_or: filtered((q) => q.or('priority.gte.5,status.eq.done')),
  filter_or_nested_and: filtered((q) =>
    q.or('status.eq.done,and(priority.gte.4,due.lt.2024-04-01)'),
  ),
  filter_or_referenced: (c) =>
    c
      .from('projects')
      .select('name,tasks(title)')
      .or('status.eq.done,priority.gte.5', { referencedTable: 'tasks' })
      .order('name')
      .order('id', { referencedTable: 'tasks' }),
  filter_generic_cs: filtered((q) => q.filter('tags', 'cs', '{science}')),
  filter_generic_imatch: filtered((q) => q.filter('title', 'imatch', '^(draft|hire)')),
  filter_json_path_text: filtered((q) => q.eq('meta->>estimate', '2')),
  filter_json_path_number: filtered((q) => q.gt('meta->estimate', 4)),
  filter_range_gt: filteredProjects((q) => q.rangeGt('period', '(2024-04-01,2024-05-01)')),
  filter_range_gte: filteredProjects((q) => q.rangeGte('period', '(2024-02-01,2024-03-01)')),
  filter_range_lt: filteredProjects((q) => q.rangeLt('period', '(2024-05-01,2024-06-01)')),
  filter_range_lte: filteredProjects((q) => q.rangeLte('period', '(2024-01-01,2024-10-01)')),
  filter_range_adjacent: filteredProjects((q) =>
    q.rangeAdjacent('period', '(2024-08-31,2024-10-01)'),
  ),
  filter_overlaps_range: filteredProjects((q) => q.overlaps('period', '[2024-03-15,2024-03-20]')),

  order_multi: (c) => tasksIds(c).order('priority', { ascending: false }).order('id'),
  order_nullsfirst: (c) => tasksIds(c).order('due', { nullsFirst: true }).order('id'),
  order_desc_nullslast: (c) =>
    tasksIds(c).order('due', { ascending: false, nullsFirst: false }).order('id'),
  order_foreign_table: (c) =>
    c
      .from('projects')
      .select('name,tasks(id)')
      .order('name')
      .order('priority', { ascending: false, referencedTable: 'tasks' })
      .order('id', { referencedTable: 'tasks' }),
  limit: (c) => tasksIds(c).order('id').limit(3),
  range_with_count: (c) => c.from('tasks').select('id', { count: 'exact' }).order('id').range(2, 4),
  limit_foreign_table: (c) =>
    c
      .from('projects')
      .select('name,tasks(id)')
      .order('name')
      .order('id', { ascending: false, referencedTable: 'tasks' })
      .limit(1, { referencedTable: 'tasks' }),

  single_row: (c) => c.from('projects').select('id,name').eq('id', 2).single(),
  single_many_rows: (c) => projectsIds(c).single(),
  single_hidden_row: (c) => projectsIds(c).eq('name', 'Borealis').single(),
  maybe_single_none: (c) => c.from('projects').select('id,name').eq('name', 'Borealis').maybeSingle(),
  maybe_single_one: (c) => c.from('projects').select('id,name').eq('name', 'Apollo').maybeSingle(),
  maybe_single_many: (c) => projectsIds(c).maybeSingle(),
  csv: (c) => c.from('tasks').select('id,title,status,due').in('id', [1, 4]).order('id').csv(),
  strip_nulls: (c) =>
    c.from('tasks').select('id,due,assignee_id').in('id', [3, 4]).order('id').stripNulls(),
  count_head: (c) => c.from('tasks').select('*', { count: 'exact', head: true }),
  count_filtered: (c) =>
    c.from('tasks').select('id', { count: 'exact' }).eq('status', 'todo').order('id'),

  rpc_scalar: (c) => c.rpc('add', { a: 2, b: 3 }),
  rpc_scalar_get: (c) => c.rpc('add', { a: 2, b: 3 }, { get: true }),
  rpc_setof: (c) => c.rpc('tasks_due_before', { d: '2024-03-01' }).select('id,title').order('id'),
  rpc_setof_filtered: (c) =>
    c
      .rpc('tasks_due_before', { d: '2024-12-31' })
      .select('id')
      .eq('status', 'todo')
      .order('due', { ascending: false }),
  rpc_setof_embed: (c) =>
    c
      .rpc('tasks_due_before', { d: '2024-02-01' })
      .select('title,project:projects(name)')
      .order('id'),
  rpc_setof_count: (c) =>
    c
      .rpc('tasks_due_before', { d: '2025-12-31' }, { count: 'exact' })
      .select('id')
      .order('id')
      .limit(2),
  rpc_json_named: (c) => c.rpc('summarize', { doc: { b: 1, a: { x: 2 } } }),
  rpc_json_unnamed: (c) => c.rpc('echo_body', { hello: 'world', n: [1, 2] }),
  rpc_raise_pt402: (c) => c.rpc('pay_up', { amount: 5 }),
  rpc_raise_plpgsql: (c) => c.rpc('assert_positive', { n: -1 }),
  rpc_plpgsql_ok: (c) => c.rpc('assert_positive', { n: 7 }),
  rpc_unknown_function: (c) => c.rpc('does_not_exist', { x: 1 }),

  error_unknown_table: (c) => c.from('nope').select('*'),
  error_unknown_column_select: (c) => c.from('tasks').select('id,nope'),
  error_unknown_column_filter: (c) => tasksIds(c).eq('nope', 1),
  error_invalid_input: (c) => tasksIds(c).eq('priority', 'high'),
  error_bad_operator: (c) => tasksIds(c).filter('status', 'foo', 'x'),
  error_no_relationship: (c) => c.from('tasks').select('id,events(id)'),
}

for (const role of ['anon', 'alice', 'bob', 'service']) {
  reads[`projects_as_${role}`] = (c) => c.from('projects').select('id,name').order('id')
  reads[`task_ids_as_${role}`] = (c) =>
    c.from('tasks').select('id', { count: 'exact' }).order('id')
}

// ------------------------------------------------------------------ write stories
// supabase-js asks for the written rows only when `.select()` follows the write.

const newTask = {
  id: 5001,
  project_id: 1,
  title: 'Write tests',
  priority: 2,
  tags: ['qa'],
  meta: { estimate: 3 },
}
const bulk = [
  { id: 5101, project_id: 2, title: 'Bulk one' },
  { id: 5102, project_id: 2, title: 'Bulk two', priority: 1 },
]

const stories = {
  insert: {
    insert_representation: (c) => c.from('tasks').insert(newTask).select(),
    insert_minimal: (c) =>
      c.from('tasks').insert({ id: 5002, project_id: 1, title: 'Quiet insert' }),
    read_back: (c) =>
      c
        .from('tasks')
        .select('id,title,status,created_by')
        .gte('id', 5001)
        .lt('id', 5100)
        .order('id'),
    insert_rls_denied: (c) =>
      c.from('tasks').insert({ id: 5003, project_id: 1, title: 'Sneaky' }).select(),
    insert_anon_denied: (c) =>
      c.from('tasks').insert({ id: 5004, project_id: 1, title: 'Anonymous' }).select(),
    insert_unknown_column: (c) =>
      c.from('tasks').insert({ id: 5005, project_id: 1, title: 'Typo', nope: 1 }).select(),
    insert_fk_violation: (c) =>
      c.from('tasks').insert({ id: 5006, project_id: 999, title: 'Orphan' }).select(),
    insert_check_violation: (c) =>
      c.from('tasks').insert({ id: 5007, project_id: 1, title: 'Odd', status: 'blocked' }).select(),
    nothing_else_written: (c) => tasksIds(c).gte('id', 5001).lt('id', 5100).order('id'),
  },
  bulk_insert: {
    missing_is_null: (c) => c.from('tasks').insert(bulk).select('id,title,priority,status'),
    missing_is_default: (c) =>
      c
        .from('tasks')
        .insert(bulk, { count: 'exact', defaultToNull: false })
        .select('id,title,priority,status'),
    hidden_from_anon: (c) => tasksIds(c).in('id', [5101, 5102]),
    visible_to_owner: (c) => tasksIds(c).in('id', [5101, 5102]).order('id'),
  },
  upsert: {
    unique_violation: (c) => c.from('labels').insert({ name: 'bug' }).select(),
    seed_row: (c) =>
      c.from('tasks').insert({ id: 5201, project_id: 1, title: 'Draft' }).select('id,title'),
    merge_on_primary_key: (c) =>
      c
        .from('tasks')
        .upsert([
          { id: 5201, project_id: 1, title: 'Final' },
          { id: 5202, project_id: 1, title: 'Fresh' },
        ])
        .select('id,title'),
    merge_only_conflicts: (c) =>
      c.from('tasks').upsert({ id: 5201, project_id: 1, title: 'Final v2' }).select('id,title'),
    ignore_duplicates_on_conflict: (c) =>
      c
        .from('labels')
        .upsert(
          [
            { name: 'bug', color: 'black' },
            { name: 'qa', color: 'teal' },
          ],
          { onConflict: 'name', ignoreDuplicates: true },
        )
        .select('name,color'),
    labels_after: (c) => c.from('labels').select('name,color').in('name', ['bug', 'qa']).order('name'),
    seed_project: (c) =>
      c
        .from('projects')
        .insert({ id: 5203, owner_id: ALICE, name: 'Zephyr' })
        .select('id,name,is_public'),
    merge_on_unique_column: (c) =>
      c
        .from('projects')
        .upsert({ name: 'Zephyr', owner_id: ALICE, is_public: true }, { onConflict: 'name' })
        .select('id,name,is_public'),
    merge_denied_by_rls: (c) =>
      c
        .from('projects')
        .upsert({ name: 'Zephyr', owner_id: BOB, is_public: true }, { onConflict: 'name' })
        .select('id,name,is_public'),
  },
  update_delete: {
    seed_row: (c) => c.from('tasks').insert({ id: 5301, project_id: 1, title: 'Temp' }).select('id'),
    update_own: (c) =>
      c
        .from('tasks')
        .update({ status: 'doing', priority: 4 }, { count: 'exact' })
        .eq('id', 5301)
        .select('id,status,priority'),
    update_other_users_row: (c) =>
      c.from('tasks').update({ status: 'done' }).eq('id', 5301).select('id'),
    update_as_anon: (c) => c.from('tasks').update({ status: 'done' }).eq('id', 5301).select('id'),
    update_unknown_column: (c) => c.from('tasks').update({ nope: 1 }).eq('id', 5301),
    update_minimal: (c) => c.from('tasks').update({ title: 'Temp 2' }).eq('id', 5301),
    delete_other_users_row: (c) => c.from('tasks').delete().eq('id', 5301).select('id'),
    delete_own: (c) =>
      c.from('tasks').delete({ count: 'exact' }).eq('id', 5301).select('id,title,status'),
    gone: (c) => tasksIds(c).eq('id', 5301),
    update_own_profile: (c) =>
      c
        .from('profiles')
        .update({ bio: 'Down the rabbit hole' })
        .eq('username', 'alice')
        .select('username,bio'),
    update_other_profile: (c) =>
      c.from('profiles').update({ bio: 'hacked' }).eq('username', 'bob').select('username,bio'),
    profiles_after: (c) => c.from('profiles').select('username,bio').order('username'),
  },
  rpc_writes: {
    seed_row: (c) =>
      c.from('tasks').insert({ id: 5401, project_id: 1, title: 'Finish me' }).select('id,status'),
    complete_other_users_task: (c) => c.rpc('complete_task', { task_id: 5401 }),
    complete_own_task: (c) => c.rpc('complete_task', { task_id: 5401 }),
    complete_again: (c) => c.rpc('complete_task', { task_id: 5401 }),
    status_after: (c) => c.from('tasks').select('status').eq('id', 5401).single(),
    void_function: (c) => c.rpc('log_event', { kind: 'login' }),
    void_function_denied: (c) => c.rpc('log_event', { kind: 'intrusion' }),
    events_of_alice: (c) => c.from('events').select('kind,actor'),
    events_of_bob: (c) => c.from('events').select('kind,actor'),
    events_of_anon: (c) => c.from('events').select('kind'),
  },
}

// ------------------------------------------------------------------ run the plan

const out = { reads: {}, stories: {} }
for (const [name, role] of plan.reads) {
  out.reads[name] = await run(reads[name], role)
}
for (const [story, steps] of plan.stories) {
  out.stories[story] = {}
  for (const [step, role] of steps) {
    out.stories[story][step] = await run(stories[story]?.[step], role)
  }
}
process.stdout.write(JSON.stringify(out), () => process.exit(0))

// #/jobs: every job with its state, schedule, recent outcomes and next fire;
// per-row and bulk actions; filter, search and pages.

import { get, post, del, enc, apiShape } from '../api.js';
import { shortHash, fmtInt } from '../format.js';
import {
  h, clear, dot, icon, whenEl, jobState, scheduleWords, runKind, toast, toastError,
  confirmDialog, emptyState, errorBox, pool,
} from '../ui.js';

const PAGE = 50;
const SEARCH_CAP = 1000; // the API has no text search: search looks through this many jobs
const STATES = ['scheduled', 'paused', 'auto-paused', 'waiting-for-plugin', 'finished'];

// Kept across visits so going to a job and back keeps the filter.
const st = { q: '', state: '', plugin: '', offset: 0 };

export async function render(root, ctx) {
  if (ctx.query.plugin !== undefined) { st.plugin = ctx.query.plugin; st.offset = 0; }
  if (ctx.query.state !== undefined) { st.state = ctx.query.state; st.offset = 0; }

  const selected = new Set();
  const dotsCache = new Map();
  let plugins = new Map();
  let jobs = [];
  let total = 0;
  let capped = false;

  const search = h('input', { type: 'search', id: 'job-search', 'data-testid': 'job-search', placeholder: 'Search by id or plugin  ( / )', value: st.q, autocomplete: 'off', spellcheck: 'false' });
  const stateSel = h('select', { id: 'job-state-filter' },
    h('option', { value: '' }, 'All states'), STATES.map((s) => h('option', { value: s }, s)));
  stateSel.value = st.state;
  const pluginChip = h('span');
  const count = h('span.sub.num');
  const bulk = h('div.bulkbar', { hidden: true, role: 'region', 'aria-label': 'Bulk actions' });
  const tbody = h('tbody');
  const allBox = h('input', { type: 'checkbox', 'aria-label': 'Select all jobs on this page', 'data-write': '' });
  const pagerText = h('span.num');
  const prev = h('button.btn.sm', { type: 'button' }, 'Previous');
  const next = h('button.btn.sm', { type: 'button' }, 'Next');
  const note = h('span');
  const tableCard = h('div.card.flush', null,
    h('div.table-wrap', null, h('table.table.jobs-table', null,
      h('caption.sr-only', null, 'Jobs'),
      h('thead', null, h('tr', null,
        h('th.check', { scope: 'col' }, allBox),
        h('th', { scope: 'col' }, 'State'),
        h('th', { scope: 'col' }, 'Job'),
        h('th', { scope: 'col' }, 'Plugin'),
        h('th', { scope: 'col' }, 'Last 20 runs'),
        h('th', { scope: 'col' }, 'Next fire'),
        h('th', { scope: 'col' }, h('span.sr-only', null, 'Actions')))),
      tbody)),
    h('div.card-foot', null, note, h('div.pager', null, pagerText, prev, next)));

  clear(root, h('div.page', null,
    h('div.page-head', null, h('div.title', null, h('h1', null, 'Jobs'), count)),
    h('div.toolbar', null,
      h('div.grow', null, h('label.sr-only', { for: 'job-search' }, 'Search jobs by id or plugin'), search),
      h('label.sr-only', { for: 'job-state-filter' }, 'Filter by state'), stateSel, pluginChip),
    bulk, tableCard));

  // ---- loading ----
  async function load() {
    const q = st.q.trim().toLowerCase();
    const apiState = st.state === 'auto-paused' ? 'paused' : st.state;
    // The host searches (`q`) and filters auto-paused jobs itself; an
    // older host without those filters is searched here, over its first
    // SEARCH_CAP jobs.
    const { jobsSearch: serverSide } = await apiShape();
    const local = !serverSide && (Boolean(q) || st.state === 'auto-paused');
    const query = { state: apiState, plugin: st.plugin, limit: local ? SEARCH_CAP : PAGE, offset: local ? 0 : st.offset };
    if (serverSide) Object.assign(query, { q: q || undefined, auto_paused: st.state === 'auto-paused' ? true : undefined });
    const [page, pl] = await Promise.all([
      get('/jobs', query, ctx.signal),
      plugins.size ? null : get('/plugins', null, ctx.signal).catch(() => []),
    ]);
    if (pl) plugins = new Map(pl.map((p) => [p.name, p]));
    if (local) {
      let all = page.jobs;
      if (st.state === 'auto-paused') all = all.filter((j) => j.auto_paused);
      if (q) all = all.filter((j) => j.spec.id.toLowerCase().includes(q) || j.spec.plugin.toLowerCase().includes(q));
      capped = page.total > SEARCH_CAP;
      total = all.length;
      if (st.offset >= total) st.offset = 0;
      jobs = all.slice(st.offset, st.offset + PAGE);
    } else {
      capped = false;
      total = page.total;
      jobs = page.jobs;
    }
  }

  function draw() {
    const first = total ? st.offset + 1 : 0;
    const last = Math.min(st.offset + PAGE, total);
    count.textContent = `${fmtInt(total)} ${total === 1 ? 'job' : 'jobs'}${st.state || st.q || st.plugin ? ' matching' : ''}`;
    pagerText.textContent = `${fmtInt(first)}–${fmtInt(last)} of ${fmtInt(total)}`;
    prev.disabled = st.offset === 0;
    next.disabled = st.offset + PAGE >= total;
    note.textContent = capped ? `Search looked through the first ${fmtInt(SEARCH_CAP)} jobs only.` : '';
    clear(pluginChip, st.plugin ? h('span.badge', null, `plugin: ${st.plugin}`,
      h('button.icon-btn', { type: 'button', 'aria-label': `Clear the plugin filter ${st.plugin}`, onclick: () => { st.plugin = ''; st.offset = 0; history.replaceState(null, '', '#/jobs'); refresh(); } }, icon('close'))) : null);
    for (const id of [...selected]) if (!jobs.some((j) => j.spec.id === id)) selected.delete(id);
    if (!jobs.length) {
      clear(tbody, h('tr', null, h('td', { colspan: 7 }, st.q || st.state || st.plugin
        ? emptyState('No jobs match', 'Clear the search or the filters to see every job.')
        : emptyState('No jobs yet', 'Add one with POST /jobs, a jobs file (--config) or a plugin sidecar.'))));
    } else {
      clear(tbody, jobs.map(row));
    }
    drawBulk();
    observeDots();
  }

  async function refresh() {
    try { await load(); draw(); } catch (e) { if (e.name !== 'AbortError') toastError(e, 'Could not load jobs'); }
  }

  // ---- rows ----
  function row(job) {
    const id = job.spec.id;
    const state = jobState(job);
    const p = plugins.get(job.spec.plugin);
    const box = h('input', { type: 'checkbox', 'aria-label': `Select ${id}`, checked: selected.has(id), 'data-write': '' });
    box.addEventListener('change', () => { if (box.checked) selected.add(id); else selected.delete(id); tr.classList.toggle('selected', box.checked); drawBulk(); });
    const dots = h('span.dots.loading', { 'data-dots': id, 'aria-label': 'Loading recent runs' });
    const paused = job.paused;
    const tr = h('tr', { 'data-job-id': id, class: selected.has(id) ? 'selected' : null },
      h('td.check.c-check', null, box),
      h('td.c-state', null, h('span', { 'data-testid': 'job-state', class: `badge k-${state}`, title: job.paused_reason || null },
        h('span.dot', { 'aria-hidden': 'true' }), state)),
      h('td.c-job', null, h('a.id', { href: `#/jobs/${enc(id)}` }, id), h('span.sub', null, scheduleWords(job))),
      h('td.c-plugin', null, h('span', null, job.spec.plugin), ' ',
        job.plugin_loaded && p && p.hash ? h('span.mono.muted', { title: p.hash }, shortHash(p.hash)) : h('span.badge.k-waiting-for-plugin', null, 'not loaded')),
      h('td.c-dots', null, dots),
      h('td.nowrap.c-next', null, job.next_run_time && !paused
        ? [state === 'waiting-for-plugin' ? h('span.muted', null, 'held: ') : null, whenEl(job.next_run_time)]
        : h('span.muted', null, paused ? 'paused' : '—')),
      h('td.c-actions', null, h('div.row-actions', null,
        action('run', 'Run', 'play', id, () => runNow(id)),
        paused ? action('resume', 'Resume', 'resume', id, () => setPaused(id, false))
          : action('pause', 'Pause', 'pause', id, () => setPaused(id, true)),
        action('delete', 'Delete', 'trash', id, () => remove([id]), 'danger', true))));
    return tr;
  }

  function action(name, label, ic, id, fn, extra, admin) {
    const b = h(`button.btn.sm.ghost${extra ? `.${extra}` : ''}`, { type: 'button', 'data-action': name, 'data-write': '', ...(admin ? { 'data-admin': '' } : {}), 'aria-label': `${label} ${id}`, title: `${label} ${id}` },
      icon(ic), h('span.lbl', null, label));
    b.addEventListener('click', async () => { b.disabled = true; try { await fn(); } finally { b.disabled = false; } });
    return b;
  }

  async function refreshRow(id) {
    try {
      const job = await get(`/jobs/${enc(id)}`, null, ctx.signal);
      const i = jobs.findIndex((j) => j.spec.id === id);
      if (i < 0) return;
      jobs[i] = job;
      const old = tbody.querySelector(`tr[data-job-id="${CSS.escape(id)}"]`);
      if (old) { dotsCache.delete(id); old.replaceWith(row(job)); observeDots(); }
    } catch (e) {
      if (e.status === 404) { jobs = jobs.filter((j) => j.spec.id !== id); draw(); return; }
      if (e.name !== 'AbortError') toastError(e);
    }
  }

  async function runNow(id) {
    try {
      const run = await post(`/jobs/${enc(id)}/run`);
      toast(h('span', null, `Run of ${id} queued. `, h('a', { href: `#/runs/${enc(run.run_id)}` }, 'Open run')));
    } catch (e) { toastError(e, `Could not run ${id}`); }
    await refreshRow(id);
  }

  async function setPaused(id, pause) {
    try {
      await post(`/jobs/${enc(id)}/${pause ? 'pause' : 'resume'}`);
      toast(`${id} ${pause ? 'paused' : 'resumed'}.`);
    } catch (e) { toastError(e, `Could not ${pause ? 'pause' : 'resume'} ${id}`); }
    await refreshRow(id);
  }

  async function remove(ids) {
    const one = ids.length === 1;
    const ok = await confirmDialog({
      title: one ? `Delete job ${ids[0]}?` : `Delete ${ids.length} jobs?`,
      message: `${one ? 'Its' : 'Their'} run history goes too, and runs in flight finish without being recorded. This cannot be undone.`,
      confirmLabel: one ? 'Delete job' : `Delete ${ids.length} jobs`,
      action: async () => {
        const failed = [];
        await pool(ids, 4, async (id) => { try { await del(`/jobs/${enc(id)}`); } catch (e) { failed.push(`${id}: ${e.message}`); } });
        if (failed.length === ids.length) throw new Error(failed.join('\n'));
        if (failed.length) toast(`Not deleted: ${failed.join('; ')}`, { kind: 'error' });
      },
    });
    if (!ok) return;
    ids.forEach((id) => selected.delete(id));
    toast(one ? `Deleted ${ids[0]}.` : `Deleted ${ids.length} jobs.`);
    await refresh();
  }

  // ---- bulk ----
  function drawBulk() {
    const n = selected.size;
    bulk.hidden = n === 0;
    const onPage = jobs.filter((j) => selected.has(j.spec.id)).length;
    allBox.checked = jobs.length > 0 && onPage === jobs.length;
    allBox.indeterminate = onPage > 0 && onPage < jobs.length;
    if (!n) return;
    const ids = [...selected];
    const many = (verb, fn) => async () => {
      const failed = [];
      await pool(ids, 4, async (id) => { try { await fn(id); } catch (e) { failed.push(`${id}: ${e.message}`); } });
      if (failed.length) toast(`${verb} failed for ${failed.length}: ${failed.join('; ')}`, { kind: 'error' });
      else toast(`${verb}: ${ids.length} ${ids.length === 1 ? 'job' : 'jobs'}.`);
      await refresh();
    };
    clear(bulk, h('span', null, `${n} selected`),
      h('button.btn.sm', { type: 'button', 'data-bulk': 'run', onclick: many('Run queued', (id) => post(`/jobs/${enc(id)}/run`)) }, icon('play'), 'Run'),
      h('button.btn.sm', { type: 'button', 'data-bulk': 'pause', onclick: many('Paused', (id) => post(`/jobs/${enc(id)}/pause`)) }, icon('pause'), 'Pause'),
      h('button.btn.sm', { type: 'button', 'data-bulk': 'resume', onclick: many('Resumed', (id) => post(`/jobs/${enc(id)}/resume`)) }, icon('resume'), 'Resume'),
      h('button.btn.sm.danger', { type: 'button', 'data-bulk': 'delete', 'data-admin': '', onclick: () => remove(ids) }, icon('trash'), 'Delete'),
      h('button.btn.sm.ghost', { type: 'button', onclick: () => { selected.clear(); draw(); } }, 'Clear selection'));
  }
  allBox.addEventListener('change', () => {
    for (const j of jobs) { if (allBox.checked) selected.add(j.spec.id); else selected.delete(j.spec.id); }
    draw();
  });

  // ---- last 20 outcomes: fetched only for rows on screen, three at a time ----
  const queue = [];
  let active = 0;
  const io = new IntersectionObserver((entries) => {
    for (const en of entries) {
      if (!en.isIntersecting) continue;
      io.unobserve(en.target);
      queue.push(en.target);
    }
    pump();
  }, { rootMargin: '200px' });
  ctx.onCleanup(() => io.disconnect());

  function observeDots() {
    for (const el of tbody.querySelectorAll('[data-dots]')) {
      if (dotsCache.has(el.dataset.dots)) fillDots(el, dotsCache.get(el.dataset.dots));
      else io.observe(el);
    }
  }
  function pump() {
    while (active < 3 && queue.length) {
      const el = queue.shift();
      if (!el.isConnected) continue;
      active++;
      const id = el.dataset.dots;
      get(`/jobs/${enc(id)}/runs`, { limit: 20 }, ctx.signal)
        .then((p) => { dotsCache.set(id, p.runs); const cur = tbody.querySelector(`[data-dots="${CSS.escape(id)}"]`); if (cur) fillDots(cur, p.runs); })
        .catch((e) => { if (e.name !== 'AbortError') { el.classList.remove('loading'); el.textContent = '—'; } })
        .finally(() => { active--; if (!ctx.stale()) pump(); });
    }
  }
  function fillDots(el, runs) {
    el.classList.remove('loading');
    if (!runs.length) { clear(el, h('span.muted', null, 'no runs yet')); el.setAttribute('aria-label', 'No runs yet'); return; }
    const counts = {};
    // Oldest on the left, newest on the right, as a timeline reads.
    clear(el, [...runs].reverse().map((r) => {
      const k = runKind(r);
      counts[k] = (counts[k] || 0) + 1;
      return dot(k, `${k} · attempt ${r.attempt} · ${new Date(r.scheduled_at).toLocaleString()}`);
    }));
    el.setAttribute('role', 'img');
    el.setAttribute('aria-label', `Last ${runs.length} runs: ${Object.entries(counts).map(([k, n]) => `${n} ${k}`).join(', ')}`);
  }

  // ---- controls ----
  let debounce;
  search.addEventListener('input', () => {
    clearTimeout(debounce);
    debounce = setTimeout(() => { st.q = search.value; st.offset = 0; refresh(); }, 200);
  });
  stateSel.addEventListener('change', () => { st.state = stateSel.value; st.offset = 0; refresh(); });
  prev.addEventListener('click', () => { st.offset = Math.max(0, st.offset - PAGE); refresh(); });
  next.addEventListener('click', () => { st.offset += PAGE; refresh(); });

  // ---- live: rows follow the event stream ----
  const pendingRows = new Set();
  let rowTimer = null;
  let listTimer = null;
  ctx.subscribe((name, ev) => {
    if (name === 'job-added' || name === 'job-removed' || name === 'stream-reconnected') {
      clearTimeout(listTimer);
      listTimer = setTimeout(refresh, 1000);
      return;
    }
    if (!ev || !ev.job_id || !jobs.some((j) => j.spec.id === ev.job_id)) return;
    // Only ends of runs and job changes move a row; on a busy host, batch them every 3 s.
    if (name === 'run-submitted' || name === 'run-started' || name === 'run-retried') return;
    pendingRows.add(ev.job_id);
    if (!rowTimer) {
      rowTimer = setTimeout(() => { rowTimer = null; const ids = [...pendingRows]; pendingRows.clear(); pool(ids, 3, refreshRow); }, 3000);
    }
  });
  ctx.onCleanup(() => { clearTimeout(rowTimer); clearTimeout(listTimer); clearTimeout(debounce); });

  try {
    await load();
    draw();
  } catch (e) {
    clear(tbody, h('tr', null, h('td', { colspan: 7 }, errorBox(e, 'Could not load jobs'))));
    if (e.name === 'AbortError') throw e;
  }
}

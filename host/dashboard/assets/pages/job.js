// #/jobs/<id>: the spec, the coming fires (DST shifts marked), what it may
// touch, who hears it, and its run history with a chart; run now, replay,
// backfill, pause/resume and delete.

import { get, post, del, enc, apiShape } from '../api.js';
import {
  fmtTime, fmtDuration, fmtFuel, shortHash, shortId, between, viewerZone, zoneOffset, offsetOfLocal,
  fmtOffset, markShifts, fmtInt,
} from '../format.js';
import {
  h, clear, badge, icon, timeEl, whenEl, jobState, scheduleWords, runKind, toast, toastError,
  formDialog, confirmDialog, field, emptyState, errorBox,
} from '../ui.js';
import { runChart } from '../chart.js';
import { argsForm } from '../argsform.js';

/** The zone a trigger's dates are read in: its own tz, the first among any/all, else UTC. */
function triggerZone(t) {
  if (!t) return 'UTC';
  if (t.tz) return t.tz;
  for (const c of t.triggers || []) { const z = triggerZone(c); if (z !== 'UTC') return z; }
  return 'UTC';
}

export async function render(root, ctx) {
  const id = ctx.params.id;
  ctx.setTitle(id);
  let detail;
  try {
    detail = await get(`/jobs/${enc(id)}`, { fires: 10 }, ctx.signal);
  } catch (e) {
    if (e.status === 404) {
      clear(root, h('div.page', null, h('div.crumbs', null, h('a', { href: '#/jobs' }, 'Jobs')),
        h('h1', null, id), h('div.callout.error', { role: 'alert' }, e.message)));
      return;
    }
    throw e;
  }

  const head = h('div');
  const firesCard = h('section.card', { 'aria-labelledby': 'fires-h' });
  const specCard = h('section.card', { 'aria-labelledby': 'spec-h' });
  const capsCard = h('section.card', { 'aria-labelledby': 'caps-h' });
  const hearsCard = h('section.card', { 'aria-labelledby': 'hears-h' });
  const histBody = h('tbody');
  const chartBox = h('div');
  const more = h('button.btn.sm', { type: 'button', hidden: true }, 'Load older runs');
  const histNote = h('span.num');
  const histCard = h('section.card.flush', { 'aria-labelledby': 'hist-h' },
    h('h2', { id: 'hist-h' }, 'Run history'),
    h('div.chart-pad', null, chartBox),
    h('div.table-wrap', null, h('table.table', null,
      h('thead', null, h('tr', null,
        ['Run', 'Outcome', 'Scheduled', 'Started', 'Duration', 'Attempt', 'Cause', 'Fuel', 'Plugin'].map((t, i) =>
          h(`th${i >= 7 ? '.hide-sm' : ''}${[4, 5, 7].includes(i) ? '.num' : ''}`, { scope: 'col' }, t)),
        h('th', { scope: 'col' }, h('span.sr-only', null, 'Actions')))),
      histBody)),
    h('div.card-foot', null, histNote, more));

  clear(root, h('div.page', null, head,
    h('div.grid.two', null, firesCard, specCard),
    h('div.grid.two', null, capsCard, hearsCard),
    histCard));

  // ---- head ----
  function drawHead() {
    const job = detail;
    const state = jobState(job);
    clear(head, h('div.page-head', null,
      h('div.title', null,
        h('div.crumbs', null, h('a', { href: '#/jobs' }, 'Jobs'), ' / '),
        h('div.title-row', null, h('h1', null, id),
          h('span', { 'data-testid': 'job-state', class: `badge k-${state}` }, h('span.dot', { 'aria-hidden': 'true' }), state)),
        h('div.sub', null, scheduleWords(job), h('span.sep-dot'), 'plugin ', h('a', { href: `#/plugins` }, job.spec.plugin),
          job.next_run_time && !job.paused ? [h('span.sep-dot'), 'next ', timeEl(job.next_run_time)] : null)),
      h('div.actions', { 'data-write': '' },
        h('button.btn.primary', { type: 'button', 'data-action': 'run', onclick: () => runDialog().catch((e) => toastError(e)) }, icon('play'), 'Run now…'),
        job.paused
          ? h('button.btn', { type: 'button', 'data-action': 'resume', onclick: () => setPaused(false) }, icon('resume'), 'Resume')
          : h('button.btn', { type: 'button', 'data-action': 'pause', onclick: () => setPaused(true) }, icon('pause'), 'Pause'),
        h('button.btn', { type: 'button', 'data-action': 'backfill', onclick: backfillDialog }, icon('backfill'), 'Backfill…'),
        h('button.btn.danger', { type: 'button', 'data-action': 'delete', 'data-admin': '', onclick: remove }, icon('trash'), 'Delete'))),
    job.paused_reason ? (job.auto_paused
      ? h('div.callout.warn', null, h('strong', null, 'Paused by the host: '), job.paused_reason, '. Resume it when the cause is fixed.')
      : h('div.callout', null, h('strong', null, 'Paused with a note: '), job.paused_reason)) : null,
    state === 'waiting-for-plugin' ? h('div.callout.warn', null, `Plugin “${job.spec.plugin}” is not loaded; the job is held at its next fire and goes on when the plugin loads. `, h('a', { href: '#/plugins' }, 'See plugins')) : null,
    (job.warnings || []).length ? h('div.callout.warn', null, h('ul.list-plain', null, job.warnings.map((w) => h('li', null, w)))) : null);
  }

  // ---- next fires ----
  async function drawFires() {
    const job = detail;
    const t = job.spec.trigger || {};
    const zone = triggerZone(t);
    let fires = (job.next_fires || []).map((at) => ({ at, offset: zoneOffset(at, zone) }));
    let excluded = (job.excluded_fires || []).map((f) => ({ at: f.at, by: f.excluded_by }));
    let source = 'the scheduler (jitter and calendars included)';
    if (t.type === 'cron' && !t.jitter && !t.start && !t.end && job.state !== 'finished') {
      try {
        const r = await get('/cron/next', { expr: t.expr, tz: t.tz || 'UTC', count: 10, exclude: (job.spec.exclude || []).join(',') }, ctx.signal);
        fires = r.fires.filter((f) => !f.excluded_by).map((f) => ({ at: f.utc, local: f.local, offset: offsetOfLocal(f.local) }));
        excluded = r.fires.filter((f) => f.excluded_by).map((f) => ({ at: f.utc, by: f.excluded_by }));
        source = 'GET /cron/next';
      } catch (e) { if (e.name === 'AbortError') throw e; /* keep the job's own five */ }
    }
    // A shift is marked between two listed fires only: against today's
    // offset, a first fire months ahead (or on a fall-back night) would be
    // marked with a change that is not between fires.
    const marked = markShifts(fires);
    const list = h('ol.fires', { 'data-testid': 'next-fires' }, marked.map((f) => h('li', null,
      h('span', null, h('span.wall', null, fmtTime(f.at, { zone, weekday: true })), ' ', h('span.muted', null, fmtOffset(f.offset)),
        f.shift ? h('span.shift', { title: 'The zone’s UTC offset changes before this fire (daylight saving)' }, `DST ${fmtOffset(f.shift.from)} → ${fmtOffset(f.shift.to)}`) : null),
      timeEl(f.at, { cls: 'muted' }),
      zone !== viewerZone ? h('span.alt', null, `${fmtTime(f.at)} your time (${viewerZone})`) : null)));
    clear(firesCard,
      h('h2', { id: 'fires-h' }, `Next ${fires.length || ''} fires`, h('span.muted', null, zone)),
      job.paused ? h('p.hint', null, 'Paused: these are the fires a resume now would plan.') : null,
      fires.length ? list : h('ol.fires', { 'data-testid': 'next-fires' }),
      fires.length ? null : emptyState(job.state === 'finished' ? 'No fire left' : 'No coming fires', job.state === 'finished' ? 'The trigger has no fire left.' : null),
      excluded.length ? h('div', null, h('h3.muted', null, 'Skipped by calendars'),
        h('ul.list-plain', { 'data-testid': 'excluded-fires' }, excluded.map((f) => h('li', null,
          h('span', null, fmtTime(f.at, { zone, weekday: true })), ' ', h('span.tag', null, f.by))))) : null,
      h('p.hint', null, `Times in ${zone}; from ${source}.`));
  }

  // ---- spec, capabilities, listeners ----
  function drawSpec() {
    const sp = detail.spec;
    const t = sp.trigger || {};
    const lim = sp.limits || {};
    const rows = [
      ['Trigger', t.type === 'cron' ? h('code', null, t.expr) : t.type === 'interval' ? `every ${t.every}` : t.type === 'date' ? t.at : t.type],
      ['Time zone', triggerZone(t)],
      t.jitter ? ['Jitter', t.jitter] : null,
      (sp.exclude || []).length ? ['Excludes', sp.exclude.map((x) => h('span.tag', null, x))] : null,
      ['Limits', `${lim.fuel ? fmtFuel(lim.fuel) + ' fuel' : 'default fuel'}, ${lim.timeout || 'default'} timeout, ${lim.memory_mib ? lim.memory_mib + ' MiB' : 'default memory'}`],
      sp.retry ? ['Retry', `${sp.retry.max_attempts || 1} attempts${sp.retry.backoff ? `, ${sp.retry.backoff}` : ''}${sp.retry.delay ? ` from ${sp.retry.delay}` : ''}`] : ['Retry', 'none'],
      ['Overlap', `${sp.overlap || 'skip'}, max ${sp.max_instances ?? 1} at once`],
      ['Misfires', `${sp.coalesce === false ? 'each missed fire runs' : 'coalesced'}${sp.misfire_grace ? `, grace ${sp.misfire_grace}` : ', no grace limit'}`],
      ['History', `the last ${sp.keep_runs ?? 100} recorded${sp.keep_for ? `, none ended over ${sp.keep_for} ago` : ''}`],
      sp.pause_after_failures ? ['Auto-pause', `after ${sp.pause_after_failures} failed fires in a row`] : null,
      ['Created', whenEl(detail.created_at)],
    ].filter(Boolean);
    clear(specCard, h('h2', { id: 'spec-h' }, 'Spec'),
      h('dl.facts', null, rows.map(([k, v]) => [h('dt', null, k), h('dd', null, v)])),
      h('h3.muted.spec-json-h', null, 'As stored (JSON)'),
      h('pre.code', { 'data-testid': 'job-spec', tabindex: '0', 'aria-label': 'Job spec as JSON' }, JSON.stringify(sp, null, 2)));

    const c = sp.capabilities;
    const capRows = c ? [
      (c.dirs || []).length ? ['Directories', h('ul.list-plain', null, c.dirs.map((d) => h('li', null, h('code', null, d.host), ' → ', h('code', null, d.guest), ' ', h('span.tag', null, d.mode || 'ro'))))] : null,
      (c.env || []).length ? ['Environment', c.env.map((x) => h('span.tag', null, x))] : null,
      (c.http || []).length ? ['HTTP', c.http.map((x) => h('span.tag', null, x))] : null,
      (c.secrets || []).length ? ['Secrets', c.secrets.map((x) => h('span.tag', null, x))] : null,
    ].filter(Boolean) : [];
    clear(capsCard, h('h2', { id: 'caps-h' }, 'Capabilities granted'),
      capRows.length ? h('dl.facts', null, capRows.map(([k, v]) => [h('dt', null, k), h('dd', null, v)]))
        : h('p.muted', null, c ? 'Nothing: no files, network or environment.' : 'None set on the job: it gets its plugin sidecar’s defaults, if any; otherwise no files, network or environment.'));

    const ls = sp.listeners || [];
    const chain = (ids) => ids.map((x) => [h('a', { href: `#/jobs/${enc(x)}` }, x), ' ']);
    clear(hearsCard, h('h2', { id: 'hears-h' }, 'Listeners and chains'),
      ls.length ? h('ul.list-plain', null, ls.map((l) => h('li', null,
        l.plugin ? ['plugin ', h('code', null, l.plugin)] : ['webhook ', h('code', null, l.webhook)],
        h('span.muted', null, ` hears ${(l.on || ['failed', 'missed']).join(', ')}${l.after_failures > 1 ? `, from failure ${l.after_failures} in a row on` : ''}`))))
        : h('p.muted', null, 'No listeners.'),
      (sp.on_success || []).length || (sp.on_failure || []).length ? h('dl.facts.chains', null,
        (sp.on_success || []).length ? [h('dt', null, 'On success'), h('dd', null, chain(sp.on_success))] : null,
        (sp.on_failure || []).length ? [h('dt', null, 'On failure'), h('dd', null, chain(sp.on_failure))] : null) : null);
  }

  // ---- history ----
  let runs = [];
  // "More" pages by cursor (the last run shown), so runs recorded while the
  // page is open do not shift the next page and show a run twice.
  let nextBefore = null;
  async function loadHistory(reset) {
    const query = reset || !nextBefore ? { limit: 50 } : { limit: 50, before: nextBefore };
    const page = await get(`/jobs/${enc(id)}/runs`, query, ctx.signal);
    runs = reset ? page.runs : runs.concat(page.runs);
    nextBefore = page.next_before;
    drawHistory();
  }
  function drawHistory() {
    more.hidden = nextBefore === null || nextBefore === undefined;
    histNote.textContent = `${fmtInt(runs.length)} ${runs.length === 1 ? 'run' : 'runs'} shown, latest scheduled first`;
    drawChart();
    if (!runs.length) { clear(histBody, h('tr', null, h('td', { colspan: 10 }, emptyState('No runs yet', 'Runs appear here as the job fires, or use Run now.')))); return; }
    clear(histBody, runs.map((r) => {
      const k = runKind(r);
      const late = r.started_at ? between(r.due_at || r.scheduled_at, r.started_at) : null;
      return h('tr', { 'data-run-id': r.run_id },
        h('td', null, h('a.mono', { href: `#/runs/${enc(r.run_id)}`, title: r.run_id }, shortId(r.run_id))),
        h('td.wrap', null, badge(k), r.note ? h('span.sub', { title: r.note }, r.note.length > 60 ? r.note.slice(0, 60) + '…' : r.note) : null),
        h('td.nowrap', null, timeEl(r.scheduled_at, { mode: 'abs' })),
        h('td.nowrap', null, r.started_at ? [timeEl(r.started_at, { mode: 'abs' }), h('span.sub', null, `${fmtDuration(late)} late`)] : h('span.muted', null, '—')),
        h('td.num', null, r.started_at && r.ended_at ? fmtDuration(between(r.started_at, r.ended_at)) : r.status === 'running' ? h('span.elapsed', { 'data-since': r.started_at }) : '—'),
        h('td.num', null, r.attempt),
        h('td', null, r.cause || '—', r.parent_run_id ? h('span.sub', null, 'from ', h('a', { href: `#/runs/${enc(r.parent_run_id)}` }, shortId(r.parent_run_id))) : null),
        h('td.num.hide-sm', null, fmtFuel(r.fuel)),
        h('td.hide-sm.mono.muted', { title: r.plugin_hash || '' }, shortHash(r.plugin_hash)),
        h('td', null, r.started_at ? h('button.btn.xs.ghost', { type: 'button', 'data-write': '', 'data-action': 'replay', 'aria-label': `Replay run ${r.run_id}`, onclick: () => replay(r) }, icon('replay'), h('span.hide-sm', null, 'Replay')) : null));
    }));
  }
  more.addEventListener('click', () => loadHistory(false).catch((e) => toastError(e)));

  // Drawn at the box's real width, and again when that changes.
  let chartWidth = 0;
  function drawChart() { chartWidth = chartBox.clientWidth; clear(chartBox, runChart(runs.slice(0, 100), chartWidth || 640)); }
  const ro = new ResizeObserver(() => { if (Math.abs(chartBox.clientWidth - chartWidth) > 20) drawChart(); });
  ro.observe(chartBox);
  ctx.onCleanup(() => ro.disconnect());

  // ---- actions ----
  const runLink = (run, what) => h('span', null, `${what} `, h('a', { href: `#/runs/${enc(run.run_id)}` }, 'Open run'));

  async function runDialog() {
    // A plugin that declares its args' schema gets a form; any other, or
    // one whose schema cannot be read now, the JSON box.
    let schema = null;
    try { schema = (await get(`/plugins/${enc(detail.spec.plugin)}`)).args_schema || null; } catch { /* the JSON box */ }
    const form = argsForm(schema, detail.spec.args || {});
    const args = h('textarea.mono', { spellcheck: 'false', rows: 8 }, JSON.stringify(detail.spec.args || {}, null, 2));
    const at = h('input.mono', { type: 'text', placeholder: 'now', spellcheck: 'false', autocomplete: 'off' });
    formDialog({
      title: `Run ${id} now`, submitLabel: 'Run now',
      body: [form
        ? h('div', null, h('p.hint', null, `Arguments (used instead of the job’s), as plugin ${detail.spec.plugin} declares them:`), form.el)
        : field('Arguments (JSON object, used instead of the job’s)', args),
        field('Scheduled at (optional)', at, 'RFC 3339 with an offset, e.g. 2026-12-01T09:00:00+08:00: what the run records and its guest sees. Empty: now.')],
      onSubmit: async () => {
        let parsed;
        if (form) parsed = form.value();
        else {
          try { parsed = JSON.parse(args.value || '{}'); } catch (e) { throw new Error(`Arguments are not valid JSON: ${e.message}`); }
        }
        if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw new Error('Arguments must be a JSON object, e.g. {"name": "Ada"}.');
        const body = { args: parsed };
        if (at.value.trim()) body.scheduled_at = at.value.trim();
        const run = await post(`/jobs/${enc(id)}/run`, body);
        toast(runLink(run, `Run of ${id} queued.`));
        return run;
      },
    }).then((r) => r && reload());
  }

  function replay(r) {
    confirmDialog({
      title: 'Replay this run?', danger: false, confirmLabel: 'Replay',
      message: `Runs ${id} again with the same args, scheduled time (${fmtTime(r.scheduled_at)}), attempt ${r.attempt} and plugin version ${shortHash(r.plugin_hash)}.`,
      action: async () => { const run = await post(`/runs/${enc(r.run_id)}/replay`); toast(runLink(run, 'Replay queued.')); return run; },
    }).then((x) => x && reload());
  }

  function backfillDialog() {
    const local = (d) => new Date(d.getTime() - d.getTimezoneOffset() * 60000).toISOString().slice(0, 16);
    const now = new Date();
    const from = h('input', { type: 'datetime-local', step: 1, required: true, value: local(new Date(now.getTime() - 86400e3)) });
    const to = h('input', { type: 'datetime-local', step: 1, required: true, value: local(now) });
    const overlap = h('select', null, h('option', { value: 'buffer-all' }, 'buffer-all: one after another'),
      h('option', { value: 'allow-all' }, 'allow-all: up to max_instances at once'), h('option', { value: 'skip' }, 'skip: record overlapping fires as skipped'));
    formDialog({
      title: `Backfill ${id}`, submitLabel: 'Start backfill',
      body: [h('p.muted', null, 'Runs every fire the schedule had in a past range (both ends included), behind live fires, with cause “backfill”. At most 10,000 fires.'),
        h('div.form-row', null, field(`From (your time, ${viewerZone})`, from), field('To', to)), field('Overlap', overlap)],
      onSubmit: async () => {
        const f = new Date(from.value), t = new Date(to.value);
        if (Number.isNaN(f.getTime()) || Number.isNaN(t.getTime())) throw new Error('Give both ends of the range.');
        const r = await post(`/jobs/${enc(id)}/backfill`, { from: f.toISOString(), to: t.toISOString(), overlap: overlap.value });
        toast(r.fires ? `Backfill queued: ${fmtInt(r.fires)} fires, ${fmtTime(r.first)} to ${fmtTime(r.last)}.` : 'Backfill: the schedule had no fire in that range.');
        return r;
      },
    }).then((r) => r && reload());
  }

  async function setPaused(pause) {
    // A pause asks for an optional note (shown as the job's paused reason).
    const { pauseNote } = await apiShape();
    if (pause && pauseNote) {
      const note = h('input', { type: 'text', maxlength: 500, placeholder: 'Why, for the next person (optional)' });
      const ok = await formDialog({ title: `Pause ${id}?`, submitLabel: 'Pause', body: field('Note', note),
        onSubmit: () => post(`/jobs/${enc(id)}/pause`, note.value.trim() ? { [pauseNote]: note.value.trim() } : {}) });
      if (ok) { toast(`${id} paused.`); reload(); }
      return;
    }
    try { await post(`/jobs/${enc(id)}/${pause ? 'pause' : 'resume'}`); toast(`${id} ${pause ? 'paused' : 'resumed'}.`); } catch (e) { toastError(e); }
    reload();
  }

  async function remove() {
    const ok = await confirmDialog({
      title: `Delete job ${id}?`, confirmLabel: 'Delete job',
      message: 'Its run history goes too, and runs in flight finish without being recorded. This cannot be undone.',
      action: () => del(`/jobs/${enc(id)}`),
    });
    if (ok) { toast(`Deleted ${id}.`); location.hash = '#/jobs'; }
  }

  async function reload() {
    try {
      detail = await get(`/jobs/${enc(id)}`, { fires: 10 }, ctx.signal);
      drawHead(); drawSpec();
      await Promise.all([drawFires(), loadHistory(true)]);
    } catch (e) {
      if (e.name === 'AbortError') return;
      if (e.status === 404) { clear(head, h('div.callout.error', { role: 'alert' }, `Job ${id} was deleted.`)); return; }
      toastError(e);
    }
  }

  // Runs of this job move the history and the next fire: refresh, at most once a second.
  let timer = null;
  ctx.subscribe((name, ev) => {
    if (name !== 'stream-reconnected' && (!ev || ev.job_id !== id)) return;
    if (!timer) timer = setTimeout(() => { timer = null; reload(); }, 1000);
  });
  ctx.onCleanup(() => clearTimeout(timer));

  drawHead();
  drawSpec();
  await Promise.all([
    drawFires(),
    loadHistory(true).catch((e) => { if (e.name === 'AbortError') throw e; clear(histBody, h('tr', null, h('td', { colspan: 10 }, errorBox(e, 'Could not load the history')))); }),
  ]);
}

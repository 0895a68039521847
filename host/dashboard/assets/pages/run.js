// #/runs/<run_id>: how a run ended and why, its output or error, its logs
// (followed live while it runs), its retry chain and its timing.

import { get, post, enc } from '../api.js';
import { fmtDuration, fmtFuel, shortHash, shortId, between, fmtInt } from '../format.js';
import { h, clear, badge, icon, timeEl, whenEl, runKind, toast, confirmDialog, copyBtn, FAILED_KINDS, errorBox } from '../ui.js';

const TITLE = {
  failed: 'Failed: the guest returned an error',
  trapped: 'Trapped: the guest panicked, overflowed its stack or hit a bad instruction',
  'timed-out': 'Timed out',
  'out-of-fuel': 'Out of fuel',
  'memory-limit': 'Memory limit reached',
};

const EXPLAIN = {
  'timed-out': 'The run took longer than its wall-clock limit (limits.timeout, 30 s by default).',
  'out-of-fuel': 'The guest used up its instruction budget (limits.fuel, 100 G by default).',
  'memory-limit': 'The guest tried to grow its memory past its limit (limits.memory_mib, 128 MiB by default).',
};

const LIVE = new Set(['pending', 'running']);

export async function render(root, ctx) {
  const id = ctx.params.id;
  ctx.setTitle(`Run ${shortId(id)}`);
  let run;
  try {
    run = await get(`/runs/${enc(id)}`, null, ctx.signal);
  } catch (e) {
    if (e.status === 404) {
      clear(root, h('div.page', null, h('div.crumbs', null, h('a', { href: '#/jobs' }, 'Jobs')), h('h1', null, 'Run not found'),
        h('div.callout.error', { role: 'alert' }, e.message, '. Runs are pruned by their job’s keep_runs and keep_for, and go with a deleted job.')));
      return;
    }
    throw e;
  }

  const head = h('div');
  const result = h('div');
  const facts = h('section.card', { 'aria-labelledby': 'timing-h' });
  const chainCard = h('section.card', { 'aria-labelledby': 'chain-h' });
  const logs = h('pre.logs', { 'data-testid': 'run-logs', tabindex: '0', 'aria-label': 'Captured logs' });
  const logInfo = h('span.muted.num');
  const moreLogs = h('button.btn.sm', { type: 'button', hidden: true }, 'Load more logs');
  const logsCard = h('section.card', { 'aria-labelledby': 'logs-h' },
    h('h2', { id: 'logs-h' }, 'Logs', logInfo), logs, h('div.row-between.logs-foot', null, h('span'), moreLogs));
  clear(root, h('div.page', null, head, result, h('div.grid.two', null, facts, chainCard), logsCard));

  function drawHead() {
    const k = runKind(run);
    clear(head, h('div.page-head', null,
      h('div.title', null,
        h('div.crumbs', null, h('a', { href: '#/jobs' }, 'Jobs'), ' / ', h('a', { href: `#/jobs/${enc(run.job_id)}` }, run.job_id), ' / '),
        h('div.title-row', null, h('h1', { title: run.run_id }, 'Run ', h('span.h1-id', null, shortId(run.run_id))),
          h('span', { 'data-testid': 'run-outcome', class: `badge k-${k}` }, h('span.dot', { 'aria-hidden': 'true' }), k),
          copyBtn(run.run_id, 'Copy id')),
        h('div.sub', null, `attempt ${run.attempt}`, h('span.sep-dot'), `cause ${run.cause || '—'}`,
          h('span.sep-dot'), 'scheduled ', timeEl(run.scheduled_at))),
      h('div.actions', { 'data-write': '' },
        run.status === 'running' ? h('button.btn.danger', { type: 'button', 'data-action': 'stop', onclick: stop }, 'Stop') : null,
        run.started_at ? h('button.btn', { type: 'button', 'data-action': 'replay', onclick: replay }, icon('replay'), 'Replay') : null)));
  }

  function drawResult() {
    const o = run.outcome;
    const k = runKind(run);
    let box = null;
    if (o && o.kind === 'succeeded') {
      box = h('section.card', { 'aria-labelledby': 'out-h' }, h('h2', { id: 'out-h' }, 'Output'),
        o.output ? h('pre.code.wrap', { 'data-testid': 'run-output' }, o.output) : h('p.muted', null, 'The guest returned no output.'));
    } else if (o && FAILED_KINDS.includes(o.kind)) {
      const msg = o.message || EXPLAIN[o.kind] || o.kind;
      box = h('div.callout.error', { role: 'status' },
        h('strong', null, `${TITLE[o.kind] || o.kind}${o.kind === 'failed' ? (o.retryable ? ' (it said a retry may help)' : ' (permanent: not retried)') : ''}`),
        h('pre', { 'data-testid': 'run-error' }, msg));
    } else if (run.status === 'interrupted') {
      box = h('div.callout', { role: 'status' }, h('strong', null, 'Interrupted: '), run.note || 'the host stopped while it was pending or running.');
    } else if (run.status === 'missed' || run.status === 'skipped') {
      box = h('div.callout', { role: 'status' }, h('strong', null, `${run.status[0].toUpperCase()}${run.status.slice(1)}: `), run.note || (run.status === 'skipped' ? 'the job had max_instances runs going.' : 'the fire did not run.'));
    } else if (LIVE.has(k)) {
      box = h('div.callout.info', { role: 'status' }, k === 'running'
        ? ['Running for ', h('span.elapsed.num', { 'data-since': run.started_at }), '. Logs follow below.']
        : ['Pending: waiting for a worker', run.note ? ` (${run.note})` : '', '.']);
    }
    clear(result, box);
  }

  function drawFacts() {
    const lat = run.started_at ? between(run.due_at || run.scheduled_at, run.started_at) : null;
    const dur = run.started_at && run.ended_at ? between(run.started_at, run.ended_at) : null;
    let args = run.args;
    try { if (args) args = JSON.stringify(JSON.parse(args), null, 2); } catch { /* shown as stored */ }
    const rows = [
      ['Job', h('a', { href: `#/jobs/${enc(run.job_id)}` }, run.job_id)],
      ['Status', run.status],
      ['Scheduled', whenEl(run.scheduled_at)],
      run.due_at && run.due_at !== run.scheduled_at ? ['Due', whenEl(run.due_at)] : null,
      ['Started', run.started_at ? whenEl(run.started_at) : '—'],
      ['Ended', run.ended_at ? whenEl(run.ended_at) : '—'],
      ['Lateness', lat === null ? '—' : fmtDuration(lat)],
      ['Duration', dur === null ? (run.status === 'running' ? h('span.elapsed', { 'data-since': run.started_at }) : '—') : fmtDuration(dur)],
      ['Fuel', run.fuel ? `${fmtFuel(run.fuel)} (${fmtInt(run.fuel)})` : '—'],
      ['Plugin hash', run.plugin_hash ? h('span.mono', { title: run.plugin_hash }, shortHash(run.plugin_hash)) : '—'],
      run.host ? ['Host', run.host] : null,
      ['Cause', run.cause || '—'],
      run.parent_run_id ? ['Parent run', h('a.mono', { href: `#/runs/${enc(run.parent_run_id)}` }, shortId(run.parent_run_id))] : null,
      run.note ? ['Note', run.note] : null,
      args ? ['Args', h('pre.code.wrap', null, args)] : null,
    ].filter(Boolean);
    clear(facts, h('h2', { id: 'timing-h' }, 'Details'), h('dl.facts', null, rows.map(([k, v]) => [h('dt', null, k), h('dd', null, v)])));
  }

  // The retry chain: every attempt at the same fire (same job and scheduled_at).
  async function drawChain() {
    let attempts = [];
    try {
      const page = await get(`/jobs/${enc(run.job_id)}/runs`, { limit: 200 }, ctx.signal);
      attempts = page.runs.filter((r) => r.scheduled_at === run.scheduled_at).sort((a, b) => a.attempt - b.attempt || a.run_id.localeCompare(b.run_id));
    } catch (e) {
      if (e.name === 'AbortError') throw e;
      clear(chainCard, h('h2', { id: 'chain-h' }, 'Attempts at this fire'), h('p.muted', null, e.status === 404 ? 'The job no longer exists.' : e.message));
      return;
    }
    if (!attempts.some((r) => r.run_id === run.run_id)) attempts.push(run);
    clear(chainCard, h('h2', { id: 'chain-h' }, 'Attempts at this fire'),
      h('ol.list-plain.attempts', null, attempts.map((r) => h('li.row-between', null,
        h('span', null, r.run_id === run.run_id ? h('strong.mono', { 'aria-current': 'true' }, shortId(r.run_id)) : h('a.mono', { href: `#/runs/${enc(r.run_id)}` }, shortId(r.run_id)),
          h('span.muted', null, ` attempt ${r.attempt} · ${r.cause || ''}`)),
        badge(runKind(r))))),
      attempts.length === 1 ? h('p.hint', null, 'No other attempt at this fire.') : null);
  }

  // ---- logs: the first page comes with the run, the rest a page at a time ----
  let have = 0;
  let total = null;
  function addLogs(records) {
    const frag = document.createDocumentFragment();
    for (const r of records) {
      const fields = (r.fields || []).map(([k, v]) => h('span.fld', null, ` ${k}=${v}`));
      frag.append(h(`span.ln.lv-${r.level}`, null, h('span.lv', null, r.level.toUpperCase()), ' ', r.source !== 'log' ? h('span.src', null, `[${r.source}] `) : null, r.message, fields, '\n'));
    }
    const atBottom = logs.scrollHeight - logs.scrollTop - logs.clientHeight < 24;
    logs.append(frag);
    if (atBottom) logs.scrollTop = logs.scrollHeight;
    have += records.length;
  }
  function drawLogInfo(next) {
    logInfo.textContent = total !== null ? `${fmtInt(have)} of ${fmtInt(total)} records` : `${fmtInt(have)} records`;
    moreLogs.hidden = next === null || next === undefined;
    if (!have) logs.textContent = LIVE.has(run.status) ? 'No logs yet: they appear here as the host records them.' : 'No logs captured.';
  }
  async function fetchLogs() {
    const page = await get(`/runs/${enc(id)}/logs`, { offset: have, limit: 1000 }, ctx.signal);
    if (have === 0 && logs.textContent) logs.textContent = '';
    addLogs(page.logs);
    total = page.total;
    drawLogInfo(page.next_offset);
    return page;
  }
  moreLogs.addEventListener('click', () => fetchLogs().catch((e) => toast(e.message, { kind: 'error' })));

  function stop() {
    confirmDialog({
      title: 'Stop this run?', confirmLabel: 'Stop run',
      message: 'The guest is stopped and the run recorded as interrupted (not retried). Its logs so far are kept.',
      action: async () => post(`/runs/${enc(id)}/stop`),
    }).then((r) => { if (r) toast('Stopping the run…'); });
  }

  function replay() {
    confirmDialog({
      title: 'Replay this run?', danger: false, confirmLabel: 'Replay',
      message: 'Runs the job again with this run’s args, scheduled time, attempt and plugin version.',
      action: async () => post(`/runs/${enc(id)}/replay`),
    }).then((r) => { if (r) toast(h('span', null, 'Replay queued. ', h('a', { href: `#/runs/${enc(r.run_id)}` }, 'Open the new run'))); });
  }

  function drawAll() { drawHead(); drawResult(); drawFacts(); }

  drawAll();
  addLogs(run.logs || []);
  total = run.log_count ?? null;
  drawLogInfo(run.logs_next_offset);
  await drawChain().catch((e) => { if (e.name === 'AbortError') throw e; clear(chainCard, errorBox(e)); });

  // While the run is pending or running, poll every second for its state and new logs.
  if (LIVE.has(run.status)) {
    let busy = false;
    const timer = setInterval(async () => {
      if (busy || document.hidden) return;
      busy = true;
      try {
        const fresh = await get(`/runs/${enc(id)}`, null, ctx.signal);
        const changed = fresh.status !== run.status;
        run = fresh;
        // Logs are read past what we have; a page ends before the rest, so loop.
        for (let i = 0; i < 5; i++) { const p = await fetchLogs(); if (p.next_offset === null || p.next_offset === undefined) break; }
        if (changed) { drawAll(); drawChain().catch(() => {}); }
        if (!LIVE.has(run.status)) { clearInterval(timer); drawLogInfo(null); }
      } catch (e) {
        if (e.name !== 'AbortError' && e.status !== 0) { clearInterval(timer); toast(e.message, { kind: 'error' }); }
      } finally { busy = false; }
    }, 1000);
    ctx.onCleanup(() => clearInterval(timer));
  }
}

// #/live: runs and failures as they happen, from the event stream. One row
// per run, updated in place as it moves on; pause holds new events back.

import { get, enc, isMissingRoute } from '../api.js';
import { shortId, fmtTime } from '../format.js';
import { h, clear, timeEl, FAILED_KINDS, emptyState } from '../ui.js';

const MAX_ROWS = 300;
const RANK = { submitted: 0, pending: 0, retrying: 0, running: 2, missed: 3, skipped: 3, finished: 3, interrupted: 3 };
const STATUS_OF = {
  'run-submitted': 'pending', 'run-started': 'running', 'run-succeeded': 'finished', 'run-failed': 'finished',
  'run-missed': 'missed', 'run-skipped': 'skipped', 'run-retried': 'retrying',
};

export async function render(root, ctx) {
  const rows = new Map(); // run_id -> {li, rec}
  const held = [];
  let paused = false;

  const feed = h('ul.feed', { role: 'log', 'aria-live': 'polite', 'aria-relevant': 'additions', 'aria-label': 'Live runs and events' });
  const empty = h('li.feed-empty', null, emptyState('Waiting for events', 'New runs, failures, job and plugin changes appear here as they happen.'));
  const toggle = h('button.btn', { type: 'button', 'aria-pressed': 'false', id: 'live-toggle' }, 'Pause feed');
  const heldNote = h('span.muted.num', { 'aria-live': 'polite' });
  const failOnly = h('input', { type: 'checkbox', id: 'live-failures' });
  const banner = h('div.callout.warn', { role: 'status', hidden: true }, 'Reconnecting to the host… (it may be restarting). Runs that happen meanwhile are fetched when it is back.');
  const clearBtn = h('button.btn.ghost', { type: 'button' }, 'Clear');

  clear(root, h('div.page', null,
    h('div.page-head', null,
      h('div.title', null, h('h1', null, 'Live'), h('div.sub', null, 'Runs, failures and changes as they happen, newest first.')),
      h('div.actions', null, heldNote,
        h('label.check-label', { for: 'live-failures' }, failOnly, ' Failures only'), clearBtn, toggle)),
    banner,
    h('div.card.flush', null, feed)));
  feed.append(empty);
  banner.hidden = ctx.streamState() !== 'reconnecting';

  toggle.addEventListener('click', () => {
    paused = !paused;
    toggle.setAttribute('aria-pressed', String(paused));
    toggle.textContent = paused ? 'Resume feed' : 'Pause feed';
    if (!paused) { const list = held.splice(0); list.forEach(([n, e]) => apply(n, e, true)); }
    drawHeld();
  });
  failOnly.addEventListener('change', () => feed.classList.toggle('failures-only', failOnly.checked));
  clearBtn.addEventListener('click', () => { rows.clear(); clear(feed, empty); });

  function drawHeld() {
    heldNote.textContent = paused ? (held.length ? `${held.length} new ${held.length === 1 ? 'event' : 'events'} held` : 'Paused') : '';
  }

  function isFailure(rec) {
    return FAILED_KINDS.includes(rec.outcome) || rec.outcome === 'interrupted' || rec.status === 'missed' || rec.status === 'interrupted';
  }

  function drawRun(li, rec) {
    const kind = rec.outcome || rec.status;
    li.dataset.runId = rec.run_id;
    li.dataset.jobId = rec.job_id;
    li.dataset.status = rec.status;
    if (rec.outcome) li.dataset.outcome = rec.outcome;
    li.classList.toggle('is-failure', isFailure(rec));
    clear(li,
      h('span.status', null, h(`span.badge.k-${kind}`, null, h('span.dot', { 'aria-hidden': 'true' }), kind)),
      h('span.what', null, h('a', { href: `#/jobs/${enc(rec.job_id)}` }, rec.job_id), h('span.muted', null, ' · run '),
        h('a.mono', { href: `#/runs/${enc(rec.run_id)}`, title: rec.run_id }, shortId(rec.run_id)),
        rec.attempt > 1 ? h('span.muted', null, ` · attempt ${rec.attempt}`) : null,
        h('span.muted.hide-xs', null, ` · due ${fmtTime(rec.scheduled_at)}`)),
      h('span.at', null, timeEl(rec.at)),
      rec.message ? h('span.msg', null, rec.message) : null);
  }

  function add(li) {
    if (empty.isConnected) empty.remove();
    li.classList.add('fresh');
    feed.prepend(li);
    while (feed.children.length > MAX_ROWS) {
      const last = feed.lastElementChild;
      if (last.dataset.runId) rows.delete(last.dataset.runId);
      last.remove();
    }
  }

  function upsertRun(rec, fresh) {
    const have = rows.get(rec.run_id);
    if (have) {
      const old = have.rec;
      // Events may come out of order (several hosts): never move a run backwards.
      if ((RANK[rec.status] ?? 0) < (RANK[old.status] ?? 0)) return;
      have.rec = { ...old, ...Object.fromEntries(Object.entries(rec).filter(([, v]) => v !== undefined && v !== null)) };
      drawRun(have.li, have.rec);
      if (fresh) { have.li.classList.remove('fresh'); void have.li.offsetWidth; have.li.classList.add('fresh'); }
      return;
    }
    const li = h('li');
    rows.set(rec.run_id, { li, rec });
    drawRun(li, rec);
    add(li);
  }

  function note(text, kind, at, label) {
    add(h('li.event', null, h('span.status', null, h(`span.badge.k-${kind}`, null, h('span.dot', { 'aria-hidden': 'true' }), label || kind)),
      h('span.what', null, text), h('span.at', null, timeEl(at || new Date()))));
  }

  function apply(name, ev, fresh) {
    if (STATUS_OF[name]) {
      upsertRun({
        run_id: ev.run_id, job_id: ev.job_id, attempt: ev.attempt, scheduled_at: ev.scheduled_at, at: ev.at,
        status: STATUS_OF[name],
        // run-retried names the new attempt; its `outcome` is how the previous one ended.
        outcome: name === 'run-succeeded' ? 'succeeded' : name === 'run-retried' ? undefined : ev.outcome,
        message: name === 'run-retried' ? `retry after ${ev.outcome || 'a failure'}: ${ev.message || ''}` : ev.message,
      }, fresh);
    } else if (name.startsWith('job-')) {
      const what = name.slice(4);
      const auto = what === 'paused' && ev.reason && ev.reason.startsWith('auto-paused after ');
      // A colour per change: paused grey (the host's own pauses warm),
      // added/resumed/modified as scheduled, removed grey.
      const kind = auto ? 'auto-paused' : what === 'paused' ? 'paused'
        : ['added', 'resumed', 'modified'].includes(what) ? 'scheduled' : 'missed';
      note([h('a', { href: `#/jobs/${enc(ev.job_id)}` }, ev.job_id), ` ${what}`, ev.reason ? `: ${ev.reason}` : ''], kind, ev.at, auto ? 'auto-paused' : what);
    } else if (name.startsWith('plugin-')) {
      const what = name.slice(7);
      note([h('a', { href: '#/plugins' }, `plugin ${ev.plugin}`), ` ${what}`, ev.error ? `: ${ev.error}` : ''], what === 'refused' ? 'refused' : what === 'loaded' ? 'loaded' : 'unknown', ev.at);
    } else if (name === 'lagged') {
      note(`The feed fell behind and missed ${ev.missed} events; the run history has them all.`, 'missed');
    }
  }

  // Fills in recent runs (at start, and after a reconnect) from the history.
  async function recent() {
    try {
      const page = await get('/runs', { limit: 40 }, ctx.signal);
      for (const r of [...page.runs].reverse()) {
        upsertRun({
          run_id: r.run_id, job_id: r.job_id, attempt: r.attempt, scheduled_at: r.scheduled_at,
          at: r.ended_at || r.started_at || r.scheduled_at, status: r.status,
          outcome: r.outcome ? r.outcome.kind : r.status === 'interrupted' ? 'interrupted' : undefined,
          message: r.outcome ? r.outcome.message : r.note,
        }, false);
      }
      for (const li of feed.querySelectorAll('li.fresh')) li.classList.remove('fresh');
    } catch (e) {
      if (e.name === 'AbortError') throw e;
      if (!isMissingRoute(e)) note(`Could not load recent runs: ${e.message}`, 'failed');
    }
  }

  ctx.subscribe((name, ev) => {
    if (name === 'stream-state') { banner.hidden = ev.state !== 'reconnecting'; return; }
    if (name === 'stream-reconnected') { note('Reconnected to the host.', 'succeeded'); recent(); return; }
    if (paused) { held.push([name, ev]); if (held.length > 5000) held.shift(); drawHeld(); return; }
    apply(name, ev, true);
  });

  await recent();
}

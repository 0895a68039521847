// #/: the state of the host at a glance: the last 24 h of runs, what runs
// now, what fires next, lateness, plugins and the cluster.

import { get, post, enc, isMissingRoute, apiShape } from '../api.js';
import { fmtInt, fmtDuration, fmtTime, shortId } from '../format.js';
import { h, clear, badge, timeEl, elapsedEl, runKind, FAILED_KINDS, confirmDialog, toast } from '../ui.js';

const OUTCOMES = ['succeeded', 'failed', 'trapped', 'timed-out', 'out-of-fuel', 'memory-limit'];
const JOB_STATES = ['scheduled', 'paused', 'waiting-for-plugin', 'finished'];
const NEXT_CAP = 1000;
let soonest = null; // the first listed fire: when it passes, the list is stale

export async function render(root, ctx) {
  const cards = {
    runs: h('section.card', { 'aria-labelledby': 'ov-runs' }),
    late: h('section.card', { 'aria-labelledby': 'ov-late' }),
    jobs: h('section.card', { 'aria-labelledby': 'ov-jobs' }),
    plugins: h('section.card', { 'aria-labelledby': 'ov-plugins' }),
    flight: h('section.card.flush', { 'aria-labelledby': 'ov-flight' }),
    next: h('section.card.flush', { 'aria-labelledby': 'ov-next' }),
    fails: h('section.card.flush', { 'aria-labelledby': 'ov-fails' }),
    cluster: h('section.card', { 'aria-labelledby': 'ov-cluster' }),
  };
  const updated = h('span.muted');
  clear(root, h('div.page', null,
    h('div.page-head', null, h('div.title', null, h('h1', null, 'Overview'), h('div.sub', null, 'This host and its jobs, live. ', updated))),
    h('div.grid.ov-top', null, cards.runs, cards.late, cards.jobs, cards.plugins),
    h('div.grid.two', null, cards.flight, cards.next),
    h('div.grid.two', null, cards.fails, cards.cluster)));

  const missing = (card, id, title, route) => clear(card, h('h2', { id }, title),
    h('p.muted', null, `This host does not serve ${route} yet (an older build).`));
  const failed = (card, id, title, e) => clear(card, h('h2', { id }, title), h('p.form-error', null, e.message));
  const guard = (card, id, title, route) => (e) => {
    if (e.name === 'AbortError') throw e;
    if (isMissingRoute(e)) missing(card, id, title, route); else failed(card, id, title, e);
  };

  // ---- runs in 24 h and lateness: GET /stats ----
  async function stats() {
    const s = await get('/stats', { window: '24h' }, ctx.signal);
    const o = s.outcomes || {};
    const r = s.runs || {};
    const finished = OUTCOMES.reduce((a, k) => a + (o[k] || 0), 0);
    const bar = h('div.stackbar', { role: 'img', 'aria-label': OUTCOMES.map((k) => `${o[k] || 0} ${k}`).join(', ') },
      OUTCOMES.filter((k) => o[k]).map((k) => { const seg = h(`span.k-${k}`, { title: `${k}: ${o[k]}` }); seg.style.width = `${(o[k] / finished) * 100}%`; return seg; }));
    const rate = s.success_rate === null || s.success_rate === undefined ? '—' : `${(s.success_rate * 100).toFixed(s.success_rate > 0.999 || s.success_rate < 0.001 ? 0 : 1)}%`;
    clear(cards.runs, h('h2', { id: 'ov-runs' }, 'Runs, last 24 h', h('a', { href: '#/live' }, 'Live')),
      h('div.stats-row', null,
        h('div.stat', null, h('span.big', { 'data-testid': 'runs-total' }, fmtInt(r.total)), h('span.label', null, 'runs scheduled')),
        h('div.stat', null, h('span.big', { 'data-testid': 'success-rate' }, rate), h('span.label', null, 'succeeded of finished'))),
      finished ? bar : h('div.stackbar'),
      h('div.legend', null, OUTCOMES.filter((k) => o[k] || k === 'succeeded' || k === 'failed').map((k) =>
        h('span', null, h(`span.odot.k-${k}`, { 'aria-hidden': 'true' }), k, ' ', h('b', null, fmtInt(o[k] || 0))))),
      h('div.kv-inline.ov-status', null, ['running', 'pending', 'missed', 'skipped', 'interrupted'].map((k) =>
        h('span', null, `${k} `, h('b', null, fmtInt(r[k] || 0))))));
    const l = s.lateness_ms || {};
    clear(cards.late, h('h2', { id: 'ov-late' }, 'Fire lateness'),
      h('div.stats-row', null,
        h('div.stat', null, h('span.big', null, l.p50 === null || l.p50 === undefined ? '—' : fmtDuration(l.p50)), h('span.label', null, 'p50')),
        h('div.stat', null, h('span.big', null, l.p99 === null || l.p99 === undefined ? '—' : fmtDuration(l.p99)), h('span.label', null, 'p99'))),
      l.max !== undefined && l.max !== null ? h('div.kv-inline', null, h('span', null, 'max ', h('b', null, fmtDuration(l.max)))) : null,
      h('p.hint', null, `Start minus scheduled time of ${fmtInt(l.count || 0)} scheduled fires (first attempts) in the last 24 h`, l.since ? [', since ', timeEl(l.since)] : '', '.'));
  }

  // ---- job states: one small query per state gives its total ----
  async function jobs() {
    const totals = await Promise.all(JOB_STATES.map((s) => get('/jobs', { state: s, limit: 1 }, ctx.signal).then((p) => p.total)));
    const all = totals.reduce((a, b) => a + b, 0);
    clear(cards.jobs, h('h2', { id: 'ov-jobs' }, 'Jobs', h('a', { href: '#/jobs' }, 'All jobs')),
      h('div.stat', null, h('span.big', null, fmtInt(all)), h('span.label', null, 'jobs')),
      h('ul.list-plain.state-list', null, JOB_STATES.map((s, i) => h('li.row-between', null,
        h('a', { href: `#/jobs?state=${s}` }, badge(s)), h('span.num', null, fmtInt(totals[i]))))));
  }

  async function plugins() {
    const ps = await get('/plugins', null, ctx.signal);
    const loaded = ps.filter((p) => p.status === 'loaded');
    const refused = ps.filter((p) => p.status === 'refused' || p.refused_reason);
    clear(cards.plugins, h('h2', { id: 'ov-plugins' }, 'Plugins', h('a', { href: '#/plugins' }, 'All plugins')),
      h('div.stats-row', null,
        h('div.stat', null, h('span.big', null, fmtInt(loaded.length)), h('span.label', null, 'loaded')),
        h('div.stat', null, h('span.big', { class: refused.length ? 'bad' : null }, fmtInt(ps.filter((p) => p.status === 'refused').length)), h('span.label', null, 'refused')),
        // Plugins compile in the background after a start: count them, so
        // "2 loaded" is not read as all there is.
        ps.some((p) => p.status === 'compiling')
          ? h('div.stat', null, h('span.big', null, fmtInt(ps.filter((p) => p.status === 'compiling').length)), h('span.label', null, 'compiling'))
          : null),
      refused.length ? h('ul.list-plain.refused-list', null, refused.slice(0, 4).map((p) => h('li', null, badge('refused', p.name), ' ',
        h('span.muted', { title: p.refused_reason }, (p.refused_reason || '').slice(0, 70) + ((p.refused_reason || '').length > 70 ? '…' : ''))))) : null);
  }

  // ---- in flight, each with a Stop button (POST /runs/{run_id}/stop) ----
  async function flight() {
    const { stopRoute } = await apiShape();
    const stopBtn = (r) => h('button.btn.xs.danger', { type: 'button', 'data-write': '', 'data-action': 'stop', 'aria-label': `Stop run ${r.run_id}`,
      onclick: () => confirmDialog({ title: `Stop this run of ${r.job_id}?`, message: 'The guest is stopped and the run recorded as interrupted.', confirmLabel: 'Stop run',
        action: () => post(stopRoute.replace(/\{[^}]+\}/, enc(r.run_id))) }).then((x) => { if (x) { toast('Run stopped.'); flight().catch(() => {}); } }) }, 'Stop');
    const [running, pending] = await Promise.all([
      get('/runs', { status: 'running', limit: 20 }, ctx.signal),
      get('/runs', { status: 'pending', limit: 1 }, ctx.signal).catch(() => null),
    ]);
    const head = h('h2', { id: 'ov-flight' }, 'Running now', h('span.muted.num', null, `${running.runs.length}${running.next_offset ? '+' : ''} running`));
    if (!running.runs.length) {
      clear(cards.flight, head, h('p.muted.pad', null, pending && pending.runs.length ? 'Nothing running; some runs are pending.' : 'Nothing running right now.'));
      return;
    }
    clear(cards.flight, head, h('div.table-wrap', null, h('table.table', null,
      h('thead', null, h('tr', null, h('th', { scope: 'col' }, 'Job'), h('th', { scope: 'col' }, 'Run'), h('th.num', { scope: 'col' }, 'Elapsed'), h('th.hide-sm', { scope: 'col' }, 'Due'), stopRoute ? h('th', { scope: 'col' }, h('span.sr-only', null, 'Actions')) : null)),
      h('tbody', null, running.runs.map((r) => h('tr', { 'data-run-id': r.run_id },
        h('td', null, h('a', { href: `#/jobs/${enc(r.job_id)}` }, r.job_id)),
        h('td', null, h('a.mono', { href: `#/runs/${enc(r.run_id)}` }, shortId(r.run_id)), r.attempt > 1 ? h('span.sub', null, `attempt ${r.attempt}`) : null),
        h('td.num', null, elapsedEl(r.started_at)),
        h('td.hide-sm.nowrap', null, fmtTime(r.due_at || r.scheduled_at)),
        stopRoute ? h('td', null, stopBtn(r)) : null))))));
  }

  // ---- next fires: the API lists jobs by id, so sort the first NEXT_CAP here ----
  async function next() {
    const page = await get('/jobs', { state: 'scheduled', limit: NEXT_CAP }, ctx.signal);
    const soon = page.jobs.filter((j) => j.next_run_time).sort((a, b) => Date.parse(a.next_run_time) - Date.parse(b.next_run_time)).slice(0, 8);
    const head = h('h2', { id: 'ov-next' }, 'Next fires', h('a', { href: '#/jobs' }, 'Jobs'));
    soonest = soon.length ? Date.parse(soon[0].next_run_time) : null;
    if (!soon.length) { clear(cards.next, head, h('p.muted.pad', null, 'No scheduled fire.')); return; }
    clear(cards.next, head, h('div.table-wrap', null, h('table.table', null,
      h('thead', null, h('tr', null, h('th', { scope: 'col' }, 'Job'), h('th', { scope: 'col' }, 'In'), h('th.hide-sm', { scope: 'col' }, 'At'))),
      h('tbody', null, soon.map((j) => h('tr', { 'data-job-id': j.spec.id },
        h('td', null, h('a', { href: `#/jobs/${enc(j.spec.id)}` }, j.spec.id), h('span.sub', null, j.schedule || j.spec.plugin)),
        h('td.nowrap', null, timeEl(j.next_run_time)),
        h('td.hide-sm.nowrap', null, fmtTime(j.next_run_time))))))),
      page.total > NEXT_CAP ? h('p.hint.pad', null, `Soonest among the first ${fmtInt(NEXT_CAP)} jobs.`) : null);
  }

  async function fails() {
    const page = await get('/runs', { limit: 200 }, ctx.signal);
    const bad = page.runs.filter((r) => FAILED_KINDS.includes(runKind(r)) || r.status === 'interrupted' || r.status === 'missed').slice(0, 8);
    const head = h('h2', { id: 'ov-fails' }, 'Recent failures', h('a', { href: '#/live' }, 'Live'));
    if (!bad.length) { clear(cards.fails, head, h('p.muted.pad', null, `No failure among the last ${page.runs.length} runs.`)); return; }
    clear(cards.fails, head, h('ul.list-plain.fail-list', null, bad.map((r) => h('li', { 'data-run-id': r.run_id },
      h('div.row-between', null, h('span', null, badge(runKind(r)), ' ', h('a', { href: `#/jobs/${enc(r.job_id)}` }, r.job_id), ' · ',
        h('a.mono', { href: `#/runs/${enc(r.run_id)}` }, shortId(r.run_id))), timeEl(r.ended_at || r.scheduled_at, { cls: 'muted' })),
      (r.outcome && r.outcome.message) || r.note ? h('div.msg.mono', null, ((r.outcome && r.outcome.message) || r.note).slice(0, 200)) : null))));
  }

  async function cluster() {
    const c = await get('/cluster', null, ctx.signal);
    const hosts = c.hosts || [];
    clear(cards.cluster, h('h2', { id: 'ov-cluster' }, 'Cluster', h('span.tag', null, c.backend)),
      h('dl.facts', null,
        h('dt', null, 'This host'), h('dd', null, c.host.name, c.is_leader ? [' ', badge('succeeded', 'leader')] : null),
        h('dt', null, 'Leader'), h('dd', null, c.leader ? [c.leader.name, h('span.muted', null, ` · term ${c.leader.term}`)] : (hosts.length ? 'none (election pending)' : 'this host (alone on its store)'))),
      hosts.length ? h('div.table-wrap', null, h('table.table.hosts', null,
        h('thead', null, h('tr', null, ['Host', 'Heartbeat', 'In flight', 'Version'].map((t, i) => h(`th${i === 2 ? '.num' : ''}${i === 3 ? '.hide-sm' : ''}`, { scope: 'col' }, t)))),
        h('tbody', null, hosts.map((x) => h('tr', null,
          h('td', null, badge(x.alive ? 'succeeded' : 'failed', x.alive ? 'alive' : 'silent'), ' ', x.name,
            c.leader && c.leader.host_id === x.id ? h('span.muted', null, ' (leader)') : null, h('span.sub', null, x.address)),
          h('td.nowrap', null, timeEl(x.last_heartbeat)),
          h('td.num', null, fmtInt(x.runs_in_flight)),
          h('td.hide-sm', null, x.version))))))
        : h('p.hint', null, 'One host on its own store: it always leads. Hosts sharing a PostgreSQL store show here.'));
  }

  // Two tiers: runs move every second on a busy host, jobs and plugins rarely.
  const fast = () => Promise.all([
    stats().catch(guard(cards.runs, 'ov-runs', 'Runs, last 24 h', 'GET /stats')).catch(() => {}),
    flight().catch(guard(cards.flight, 'ov-flight', 'Running now', 'GET /runs')),
    fails().catch(guard(cards.fails, 'ov-fails', 'Recent failures', 'GET /runs')),
  ]);
  const slow = () => Promise.all([
    jobs().catch(guard(cards.jobs, 'ov-jobs', 'Jobs', 'GET /jobs')),
    plugins().catch(guard(cards.plugins, 'ov-plugins', 'Plugins', 'GET /plugins')),
    next().catch(guard(cards.next, 'ov-next', 'Next fires', 'GET /jobs')),
    cluster().catch(guard(cards.cluster, 'ov-cluster', 'Cluster', 'GET /cluster')),
  ]);
  const stamp = () => { updated.textContent = `Updated ${fmtTime(new Date())}.`; };

  // Lateness card is filled by stats(); keep it from staying empty when /stats is missing.
  clear(cards.late, h('h2', { id: 'ov-late' }, 'Fire lateness'), h('p.muted', null, '—'));

  // Run events refresh the run cards (at most every 3 s); job and plugin
  // events, the soonest fire passing, and a 20 s beat refresh the rest.
  const timers = { fast: null, slow: null };
  const later = (tier, fn, ms = 3000) => { if (!timers[tier]) timers[tier] = setTimeout(() => { timers[tier] = null; fn().then(stamp).catch(() => {}); }, ms); };
  ctx.subscribe((name) => {
    if (name.startsWith('run-')) later('fast', fast);
    else if (name.startsWith('job-') || name.startsWith('plugin-')) later('slow', slow);
    else if (name === 'stream-reconnected') { later('fast', fast); later('slow', slow); }
  });
  const iv = setInterval(() => { if (!document.hidden) { later('fast', fast, 0); later('slow', slow, 0); } }, 20000);
  const passed = setInterval(() => { if (soonest && Date.now() > soonest + 1500) { soonest = null; later('slow', slow, 0); } }, 1000);
  ctx.onCleanup(() => { clearTimeout(timers.fast); clearTimeout(timers.slow); clearInterval(iv); clearInterval(passed); });

  await Promise.all([fast(), slow()]);
  stamp();
}

// #/cron: try a cron expression before writing a job: it in words, cron's
// OR-day warning, the next 10 fires with DST shifts, errors as you type.

import { get, ApiError } from '../api.js';
import { viewerZone, timeZones, offsetOfLocal, markShifts, fmtOffset, fmtLocalWall, fmtTime, zoneOffset } from '../format.js';
import { h, clear, timeEl, field } from '../ui.js';

const EXAMPLES = [
  ['0 9 * * mon-fri', 'weekdays at 9'],
  ['*/15 * * * *', 'every 15 min'],
  ['30 2 * * *', 'DST-sensitive'],
  ['0 0 13 * fri', 'OR-day rule'],
  ['0 * * * *', 'hourly'],
  ['@daily', 'daily'],
];

// Kept across visits.
const st = { expr: '0 9 * * mon-fri', zone: viewerZone, after: '' };

export async function render(root, ctx) {
  if (ctx.query.expr) st.expr = ctx.query.expr;
  if (ctx.query.tz) st.zone = ctx.query.tz;

  const expr = h('input.mono', { id: 'cron-expr', type: 'text', value: st.expr, spellcheck: 'false', autocomplete: 'off', autocapitalize: 'off', 'aria-describedby': 'cron-expr-hint' });
  const zone = h('input', { id: 'cron-zone', type: 'text', value: st.zone, list: 'cron-zones', spellcheck: 'false', autocomplete: 'off' });
  const zones = h('datalist', { id: 'cron-zones' }, timeZones().map((z) => h('option', { value: z })));
  const after = h('input', { id: 'cron-after', type: 'datetime-local', step: 1, value: st.after });
  const out = h('div.cron-out', { 'aria-live': 'polite' });
  const zoneErr = h('p.form-error', { id: 'cron-zone-error', role: 'alert', hidden: true });

  clear(root, h('div.page', null,
    h('div.page-head', null, h('div.title', null, h('h1', null, 'Cron tester'),
      h('div.sub', null, 'Check an expression exactly as the scheduler reads it (classic cron, cronie’s daylight-saving rules). Nothing is stored.'))),
    h('section.card', { 'aria-label': 'Expression' },
      h('div.form-row', null,
        h('div.field.grow-2', null, h('label', { for: 'cron-expr' }, 'Expression'), expr,
          h('p.hint', { id: 'cron-expr-hint' }, 'minute hour day-of-month month day-of-week, optionally a leading seconds field; or @daily, @hourly…')),
        h('div.field', null, h('label', { for: 'cron-zone' }, 'Time zone'), zone, zones, zoneErr),
        field(`After (optional, your time)`, after, 'Empty: from now.')),
      h('div.chips', { 'aria-label': 'Examples' }, EXAMPLES.map(([x, label]) =>
        h('button.chip', { type: 'button', title: label, onclick: () => { expr.value = x; schedule(0); expr.focus(); } }, x)))),
    out));

  let timer = null;
  let seq = 0;
  function schedule(ms = 200) {
    clearTimeout(timer);
    timer = setTimeout(update, ms);
  }
  ctx.onCleanup(() => clearTimeout(timer));
  for (const el of [expr, zone, after]) el.addEventListener('input', () => schedule());

  async function update() {
    const my = ++seq;
    st.expr = expr.value; st.zone = zone.value.trim() || 'UTC'; st.after = after.value;
    // Keep the page's URL shareable without adding history entries.
    history.replaceState(null, '', `#/cron?expr=${encodeURIComponent(st.expr)}&tz=${encodeURIComponent(st.zone)}`);
    const q = { expr: st.expr, tz: st.zone, count: 10 };
    if (st.after) { const d = new Date(st.after); if (!Number.isNaN(d.getTime())) q.after = d.toISOString(); }
    if (!st.expr.trim()) { showError(new ApiError(422, 'validation', 'Type a cron expression, e.g. 0 9 * * mon-fri.', 'expr')); return; }
    try {
      const r = await get('/cron/next', q, ctx.signal);
      if (my !== seq) return;
      showResult(r);
    } catch (e) {
      if (my !== seq || e.name === 'AbortError') return;
      if (e.field === 'tz') {
        // The zone is wrong but the expression may be fine: still say it in words.
        let words = null;
        try { words = await get('/cron/explain', { expr: st.expr }, ctx.signal); } catch { /* the expr error shows below */ }
        if (my !== seq) return;
        showZoneError(e, words);
      } else showError(e);
    }
  }

  function clearMarks() {
    expr.removeAttribute('aria-invalid'); zone.removeAttribute('aria-invalid');
    expr.setAttribute('aria-describedby', 'cron-expr-hint');
    zoneErr.hidden = true;
  }

  function warningsEl(ws) {
    return ws && ws.length ? h('div.callout.warn', { 'data-testid': 'cron-warning' },
      h('strong', null, 'Note: '), ws.length === 1 ? ws[0] : h('ul.list-plain', null, ws.map((w) => h('li', null, w)))) : null;
  }

  function showResult(r) {
    clearMarks();
    const z = r.tz || st.zone;
    const fires = r.fires.map((f) => ({ ...f, at: f.utc, offset: offsetOfLocal(f.local) }));
    const base = st.after && !Number.isNaN(new Date(st.after).getTime()) ? new Date(st.after) : new Date();
    const marked = markShifts([{ offset: zoneOffset(base, z) }, ...fires]).slice(1);
    const list = h('ol.fires', { 'data-testid': 'cron-fires' }, marked.map((f) => h('li', { class: f.excluded_by ? 'excluded' : null },
      h('span', null, h('span.wall', null, fmtLocalWall(f.local)), ' ', h('span.muted', null, fmtOffset(f.offset)),
        f.shift ? h('span.shift', { title: 'The UTC offset changes before this fire: a daylight-saving change' }, `DST ${fmtOffset(f.shift.from)} → ${fmtOffset(f.shift.to)}`) : null,
        f.excluded_by ? h('span.tag', null, `skipped: ${f.excluded_by}`) : null),
      timeEl(f.at, { cls: 'muted' }),
      z !== viewerZone ? h('span.alt', null, `${fmtTime(f.at)} your time · ${f.utc.replace('T', ' ').replace(/\.000Z$|Z$/, ' UTC')}`) : h('span.alt', null, `${f.utc.replace('T', ' ').replace(/\.000Z$|Z$/, ' UTC')}`))));
    clear(out,
      h('section.card', { 'aria-labelledby': 'cron-words-h' },
        h('h2', { id: 'cron-words-h' }, 'In words'),
        h('p.words', { 'data-testid': 'cron-words' }, r.explain),
        h('p.hint', null, `In ${z}.`)),
      warningsEl(r.warnings),
      h('section.card', { 'aria-labelledby': 'cron-fires-h' },
        h('h2', { id: 'cron-fires-h' }, `Next ${fires.length} fires`, h('span.muted', null, z)),
        fires.length ? list : [h('ol.fires', { 'data-testid': 'cron-fires' }), h('p.muted', null, 'No fire in the searched range.')]));
  }

  function showError(e) {
    clearMarks();
    const onZone = e.field === 'tz';
    const target = onZone ? zone : expr;
    target.setAttribute('aria-invalid', 'true');
    if (!onZone) expr.setAttribute('aria-describedby', 'cron-expr-hint cron-error');
    clear(out, h('div.callout.error', { id: 'cron-error', 'data-testid': 'cron-error', role: 'alert' },
      h('strong', null, 'Refused: '), h('span', null, e.message)));
  }

  function showZoneError(e, words) {
    clearMarks();
    zone.setAttribute('aria-invalid', 'true');
    zoneErr.textContent = e.message;
    zoneErr.hidden = false;
    clear(out, words ? [h('section.card', null, h('h2', null, 'In words'), h('p.words', { 'data-testid': 'cron-words' }, words.explain)), warningsEl(words.warnings)] : null,
      h('div.callout.warn', null, 'Pick a zone from the list (IANA names such as Europe/Berlin, Asia/Shanghai, UTC) to see the fires.'));
  }

  await update();
}


// Small DOM building blocks shared by the pages: an element builder that
// never writes `style=` (the CSP forbids it), badges, outcome dots, ticking
// times, toasts and dialogs.

import { fmtTime, fmtRel, fmtFull, toDate } from './format.js';

/**
 * h('a.link', {href, 'data-x': 1, onclick: fn}, 'text', child...)
 * A tag may carry classes after dots. `on*` keys become listeners; null,
 * false and undefined attributes and children are left out.
 */
export function h(tag, attrs, ...children) {
  const [name, ...classes] = tag.split('.');
  const el = document.createElement(name || 'div');
  if (classes.length) el.className = classes.join(' ');
  setAttrs(el, attrs);
  append(el, children);
  return el;
}

const SVG_NS = 'http://www.w3.org/2000/svg';
export function s(tag, attrs, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  setAttrs(el, attrs);
  append(el, children);
  return el;
}

function setAttrs(el, attrs) {
  if (!attrs) return;
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.setAttribute('class', [el.getAttribute('class'), v].filter(Boolean).join(' '));
    else if (k === 'text') el.textContent = v;
    else if (k === 'value' && 'value' in el) el.value = v;
    else if (k === 'checked' || k === 'disabled' || k === 'hidden' || k === 'open') el[k] = Boolean(v);
    else if (k === 'style') throw new Error('style attributes are blocked by the CSP; use a class');
    else el.setAttribute(k, v === true ? '' : String(v));
  }
}

export function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

export function clear(el, ...children) {
  el.replaceChildren();
  return append(el, children);
}

// A few strokes for buttons and empty states (inline SVG: the CSP allows it).
const ICONS = {
  play: 'M5 3.5v9l7.5-4.5z',
  pause: 'M5 3.5h2v9H5zM9 3.5h2v9H9z',
  resume: 'M5 3.5v9l7.5-4.5z',
  trash: 'M3 4.5h10M6.5 4.5V3h3v1.5M4.5 4.5l.7 8.5h5.6l.7-8.5',
  replay: 'M3.5 8a4.5 4.5 0 1 0 1.4-3.3M3.5 3v2.5H6',
  upload: 'M8 11V3M4.5 6.5 8 3l3.5 3.5M3 13h10',
  close: 'M4 4l8 8M12 4l-8 8',
  key: 'M10 2.5a3.5 3.5 0 1 1-2.6 5.8L3 12.7V14h1.5v-1.3H6v-1.5h1.4l1-1',
  backfill: 'M2.5 8h8M7.5 5l3 3-3 3M13.5 3v10',
};
export function icon(name) {
  const fill = name === 'play' || name === 'pause' || name === 'resume';
  return s('svg', { viewBox: '0 0 16 16', width: 14, height: 14, 'aria-hidden': 'true', class: 'icon', focusable: 'false' },
    s('path', { d: ICONS[name] || '', fill: fill ? 'currentColor' : 'none', stroke: fill ? 'none' : 'currentColor', 'stroke-width': 1.5, 'stroke-linecap': 'round', 'stroke-linejoin': 'round' }));
}

/** A <time> the shell re-renders every second: relative text, absolute on hover. */
export function timeEl(v, { mode = 'rel', zone, cls } = {}) {
  const d = toDate(v);
  if (!d) return h('span.muted', null, '—');
  const el = h('time', { datetime: d.toISOString(), title: fmtFull(d, zone), class: cls });
  if (mode === 'rel') { el.dataset.rel = ''; el.textContent = fmtRel(d); }
  else el.textContent = fmtTime(d, { zone });
  return el;
}

/** Absolute and relative together: "Mar 29, 14:02:05 · in 42 s". */
export function whenEl(v, opts = {}) {
  const d = toDate(v);
  if (!d) return h('span.muted', null, '—');
  return h('span.when', null, timeEl(d, { mode: 'abs', zone: opts.zone }), h('span.sep', { 'aria-hidden': 'true' }, ' · '), timeEl(d, { cls: 'muted' }));
}

/** A ticking elapsed clock since `v` (runs in flight). */
export function elapsedEl(v) {
  const d = toDate(v);
  if (!d) return h('span.muted', null, '—');
  return h('span.elapsed.num', { 'data-since': d.toISOString(), title: `since ${fmtFull(d)}` }, '');
}

export const FAILED_KINDS = ['failed', 'trapped', 'timed-out', 'out-of-fuel', 'memory-limit'];

/** What a run is, in one word: its outcome kind when finished, else its status. */
export function runKind(run) {
  if (!run) return 'unknown';
  if (run.outcome && run.outcome.kind) return run.outcome.kind;
  return run.status || 'unknown';
}

export function badge(kind, text) {
  return h(`span.badge.k-${kind}`, null, h('span.dot', { 'aria-hidden': 'true' }), text || kind);
}

export function dot(kind, label) {
  return h(`span.odot.k-${kind}`, { title: label || kind, role: 'img', 'aria-label': label || kind });
}

/** A job's state as the dashboard names it: auto-paused is a job the host paused itself (`auto_paused`). */
export function jobState(job) {
  if (job.state === 'paused' && job.auto_paused) return 'auto-paused';
  return job.state || (job.paused ? 'paused' : 'scheduled');
}

/** The trigger in words when the host does not say it (older hosts). */
export function scheduleWords(job) {
  if (job.schedule) return job.schedule;
  const t = (job.spec || {}).trigger || {};
  const z = t.tz ? ` (${t.tz})` : '';
  switch (t.type) {
    case 'cron': return `cron ${t.expr}${z}`;
    case 'interval': return `every ${t.every}`;
    case 'date': return `once at ${t.at}${z}`;
    case 'any': return `any of ${(t.triggers || []).length} triggers`;
    case 'all': return `all of ${(t.triggers || []).length} triggers`;
    default: return '—';
  }
}

// ---- toasts ---------------------------------------------------------------

/** Shows a message in the toast region; errors stay longer and are announced assertively. */
export function toast(message, { kind = 'info', action, timeout } = {}) {
  const region = document.getElementById(kind === 'error' ? 'toasts-alert' : 'toasts');
  if (!region) return;
  // The same message again (a host away answers every action alike) is
  // not stacked: the one showing stays.
  if (typeof message === 'string'
      && [...region.children].some((t) => t.querySelector('.toast-msg')?.textContent === message)) return;
  const close = h('button.icon-btn', { type: 'button', 'aria-label': 'Dismiss' }, icon('close'));
  const el = h(`div.toast.t-${kind}`, null, h('div.toast-msg', null, message), action || null, close);
  close.addEventListener('click', () => el.remove());
  region.append(el);
  const t = timeout ?? (kind === 'error' ? 12000 : 5000);
  let timer = setTimeout(() => el.remove(), t);
  // Keep it while the pointer or focus is on it, so it can be read and clicked.
  el.addEventListener('mouseenter', () => clearTimeout(timer));
  el.addEventListener('mouseleave', () => { timer = setTimeout(() => el.remove(), 3000); });
  while (region.children.length > 4) region.firstElementChild.remove();
}

/** Toasts an API error (the API's own message); ignores aborted fetches. */
export function toastError(e, prefix) {
  if (e && e.name === 'AbortError') return;
  const msg = (e && e.message) || String(e);
  toast(prefix ? `${prefix}: ${msg}` : msg, { kind: 'error' });
}

// ---- dialogs --------------------------------------------------------------

/**
 * A modal <dialog> built on demand. `body` is a node or nodes; `onSubmit`
 * may throw (or reject) an Error whose message shows inline and keeps the
 * dialog open. Resolves with onSubmit's value, or null when cancelled.
 */
export function formDialog({ title, body, submitLabel = 'OK', danger = false, onSubmit }) {
  return new Promise((resolve) => {
    const err = h('p.form-error', { role: 'alert', hidden: true });
    const submit = h(`button.btn.${danger ? 'danger' : 'primary'}`, { type: 'submit', 'data-action': 'confirm' }, submitLabel);
    const cancel = h('button.btn', { type: 'button', 'data-action': 'cancel' }, 'Cancel');
    const heading = h('h2', { id: `dlg-${Math.random().toString(36).slice(2)}` }, title);
    const form = h('form.dialog-form', { method: 'dialog' }, heading, h('div.dialog-body', null, body), err,
      h('div.dialog-actions', null, cancel, submit));
    const dlg = h('dialog.modal', { 'aria-labelledby': heading.id }, form);
    let result = null;
    // Focus goes back to what opened the dialog when it closes.
    const opener = document.activeElement instanceof HTMLElement ? document.activeElement : null;
    cancel.addEventListener('click', () => dlg.close());
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      err.hidden = true;
      submit.disabled = true;
      try {
        result = onSubmit ? await onSubmit() : true;
        if (result === undefined) result = true;
        dlg.close();
      } catch (e) {
        err.textContent = (e && e.message) || String(e);
        err.hidden = false;
      } finally { submit.disabled = false; }
    });
    dlg.addEventListener('close', () => {
      dlg.remove();
      if (opener && opener.isConnected) opener.focus();
      resolve(result);
    });
    document.body.append(dlg);
    dlg.showModal();
    // A destructive confirmation starts on Cancel, so Enter does not delete.
    const first = dlg.querySelector('input, textarea, select');
    (first || (danger ? cancel : submit)).focus();
  });
}

export function confirmDialog({ title, message, confirmLabel = 'Confirm', danger = true, action }) {
  return formDialog({ title, body: h('p', null, message), submitLabel: confirmLabel, danger, onSubmit: action });
}

/** A labelled field: label, control, optional hint, all tied by ids. */
let fieldSeq = 0;
export function field(label, control, hint) {
  const id = control.id || `f${++fieldSeq}`;
  control.id = id;
  const hintEl = hint ? h('p.hint', { id: `${id}-hint` }, hint) : null;
  if (hintEl) control.setAttribute('aria-describedby', hintEl.id);
  return h('div.field', null, h('label', { for: id }, label), control, hintEl);
}

export function emptyState(title, text) {
  return h('div.empty', null, h('p.empty-title', null, title), text ? h('p.muted', null, text) : null);
}

export function errorBox(e, what) {
  return h('div.callout.error', { role: 'alert' }, h('strong', null, what || 'Could not load'), ' ', (e && e.message) || String(e));
}

/** Runs async `fn` over `items`, `limit` at a time. */
export async function pool(items, limit, fn) {
  const queue = [...items];
  const workers = Array.from({ length: Math.min(limit, queue.length) }, async () => {
    while (queue.length) await fn(queue.shift());
  });
  await Promise.all(workers);
}

/** Copy-to-clipboard button for hashes and ids. */
export function copyBtn(text, label = 'Copy') {
  const b = h('button.btn.ghost.xs', { type: 'button', title: `Copy ${text}` }, label);
  b.addEventListener('click', async () => {
    try { await navigator.clipboard.writeText(text); toast('Copied'); } catch { toast('Copying is not allowed here', { kind: 'error' }); }
  });
  return b;
}

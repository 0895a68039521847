// The shell: hash router, token and permissions, the one shared event
// stream, the ticking clocks and the toasts' host.

import { api, apiEvents, getToken, setToken, streamEvents, isMissingRoute } from './api.js';
import { fmtRel, fmtClock } from './format.js';
import { h, clear, errorBox, toast } from './ui.js';

const main = document.getElementById('main');

// A module whose import failed (the host was down) stays failed in the
// module map for this URL: a later try asks under a fresh query instead.
const failedImports = new Map();
function load(name) {
  const tries = failedImports.get(name) || 0;
  const url = `./pages/${name}.js${tries ? `?retry=${tries}` : ''}`;
  return import(url).catch((e) => { failedImports.set(name, tries + 1); throw e; });
}

const PAGES = {
  overview: { title: 'Overview', load: () => load('overview') },
  jobs: { title: 'Jobs', load: () => load('jobs') },
  job: { title: 'Job', load: () => load('job') },
  run: { title: 'Run', load: () => load('run') },
  plugins: { title: 'Plugins', load: () => load('plugins') },
  cron: { title: 'Cron tester', load: () => load('cron') },
  live: { title: 'Live', load: () => load('live') },
};

// ---- auth -------------------------------------------------------------------

/** What `/auth` last said; pages read it through ctx.auth. */
export const auth = { reads_need_token: false, writes_need_token: false, token: 'none', can_read: true, can_write: false, can_admin: false, known: false };

async function probeAuth() {
  try {
    Object.assign(auth, await api('GET', '/auth'), { known: true });
  } catch (e) {
    if (!isMissingRoute(e)) throw e;
    // A host without /auth: learn from a read, and assume writes are allowed
    // until one answers 401 (which then asks for a token).
    try {
      await api('GET', '/jobs', { query: { limit: 1 } });
      Object.assign(auth, { can_read: true, can_write: true, can_admin: true, known: true });
    } catch (e2) {
      if (e2.status !== 401) throw e2;
      Object.assign(auth, { reads_need_token: true, writes_need_token: true, can_read: false, can_write: false, can_admin: false, known: true, token: getToken() ? 'invalid' : 'none' });
    }
  }
  applyAuth();
}

function applyAuth() {
  document.body.dataset.canWrite = String(Boolean(auth.can_write));
  // A host from before roles has no can_admin: its writes were all or none.
  document.body.dataset.canAdmin = String(Boolean(auth.can_admin ?? auth.can_write));
  document.body.dataset.canRead = String(Boolean(auth.can_read));
  const needs = (auth.writes_need_token && !auth.can_write) || (auth.reads_need_token && !auth.can_read);
  const signIn = document.getElementById('sign-in');
  signIn.hidden = !needs;
  // Read-only is said, not only shown by missing buttons.
  signIn.textContent = auth.can_read ? 'Read-only · Sign in to make changes' : 'Sign in';
  document.getElementById('sign-out').hidden = !(getToken() && auth.token === 'valid');
}

const dlg = document.getElementById('token-dialog');
const tokenInput = document.getElementById('token-input');
const tokenError = document.getElementById('token-error');

function openTokenDialog(reason) {
  if (dlg.open) return;
  document.getElementById('token-why').textContent = reason ||
    (auth.reads_need_token ? 'This host requires an API token to show anything.' : 'This host requires an API token to change jobs and plugins. You can browse without one.');
  tokenError.hidden = true;
  tokenInput.value = '';
  dlg.showModal();
  tokenInput.focus();
}

document.getElementById('token-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const value = tokenInput.value.trim();
  if (!value) return;
  const before = getToken();
  setToken(value);
  try {
    await probeAuth();
  } catch (e) {
    setToken(before);
    tokenError.textContent = e.message; tokenError.hidden = false; return;
  }
  if (auth.token === 'invalid' || (!auth.can_read && auth.reads_need_token)) {
    setToken(before);
    await probeAuth().catch(() => {});
    tokenError.textContent = 'The host did not accept this token. Check it and try again.';
    tokenError.hidden = false;
    tokenInput.select();
    return;
  }
  dlg.close();
  toast((auth.can_admin ?? auth.can_write) ? 'Signed in: reads and writes allowed.'
    : auth.can_write ? `Signed in as ${auth.name || 'a token'} (${auth.role}): run, pause and resume allowed; changing jobs and plugins is not.`
      : 'Signed in: read-only.');
  restartStream();
  route();
});
document.getElementById('token-cancel').addEventListener('click', () => dlg.close());
document.getElementById('sign-in').addEventListener('click', () => openTokenDialog());
document.getElementById('sign-out').addEventListener('click', async () => {
  // Stop the page first, so none of its requests go out without the token.
  if (current) current.cleanup();
  if (stopStream) stopStream();
  setToken('');
  await probeAuth().catch(() => {});
  toast('Signed out. The token was removed from this tab.');
  restartStream();
  route();
});

// A 401 from anywhere means our token is missing or stale: ask once.
let lastAsk = 0;
apiEvents.addEventListener('unauthorized', () => {
  if (Date.now() - lastAsk < 3000) return;
  lastAsk = Date.now();
  if (getToken()) setToken('');
  probeAuth().catch(() => {}).finally(() => openTokenDialog('The host refused this request without a valid token.'));
});

// ---- event stream -----------------------------------------------------------

const listeners = new Set();
let stopStream = null;
let streamState = 'connecting';
const conn = document.getElementById('conn');
const CONN_TEXT = { connecting: 'Connecting…', open: 'Live', reconnecting: 'Reconnecting…', unauthorized: 'Not signed in', off: 'Offline' };

function setStreamState(state) {
  const was = streamState;
  streamState = state;
  conn.dataset.state = state;
  conn.querySelector('.conn-text').textContent = CONN_TEXT[state] || state;
  conn.title = state === 'reconnecting' ? 'The event stream dropped (host restarting?). Retrying with backoff.' : '';
  // After a gap the pages refetch: events sent while we were away are lost.
  if (state === 'open' && was === 'reconnecting') {
    emit('stream-reconnected', {});
    // The host is back: a page that failed to load while it was away loads now.
    if (main.querySelector('[data-load-failed]') && main.dataset.ready === 'true') route();
  }
  emit('stream-state', { state, was });
}

function emit(name, data) {
  for (const fn of [...listeners]) {
    try { fn(name, data); } catch (e) { reportError(e); }
  }
}

function restartStream() {
  if (stopStream) stopStream();
  if (!auth.can_read) { setStreamState('unauthorized'); return; }
  stopStream = streamEvents({ onEvent: emit, onState: setStreamState });
}

// A page kept in the back/forward cache would keep its event stream open,
// and Chrome allows 6 connections per plain-HTTP host: a few visits away
// and back, or a few tabs, and the next page would hang. So the stream
// ends when the page is hidden that way and starts again when it returns.
window.addEventListener('pagehide', () => { if (stopStream) { stopStream(); stopStream = null; } });
window.addEventListener('pageshow', (e) => { if (e.persisted) restartStream(); });

export function subscribe(fn) { listeners.add(fn); return () => listeners.delete(fn); }
export const streamStatus = () => streamState;

// ---- clocks -----------------------------------------------------------------

// One timer for every relative time and elapsed clock on the page.
function tick() {
  if (document.hidden) return;
  const now = Date.now();
  for (const el of main.querySelectorAll('time[data-rel]')) {
    const t = fmtRel(el.getAttribute('datetime'), now);
    if (el.textContent !== t) el.textContent = t;
  }
  for (const el of main.querySelectorAll('[data-since]')) {
    el.textContent = fmtClock(now - Date.parse(el.dataset.since));
  }
}
setInterval(tick, 1000);
document.addEventListener('visibilitychange', tick);

// ---- router -----------------------------------------------------------------

function parse(hash) {
  const raw = (hash || '').replace(/^#/, '') || '/';
  const [path, q = ''] = raw.split('?');
  const query = Object.fromEntries(new URLSearchParams(q));
  const parts = path.split('/').filter(Boolean).map((p) => { try { return decodeURIComponent(p); } catch { return p; } });
  if (parts.length === 0) return { page: 'overview', params: {}, query };
  if (parts[0] === 'jobs' && parts.length === 1) return { page: 'jobs', params: {}, query };
  if (parts[0] === 'jobs' && parts.length === 2) return { page: 'job', params: { id: parts[1] }, query };
  if (parts[0] === 'runs' && parts.length === 2) return { page: 'run', params: { id: parts[1] }, query };
  if (PAGES[parts[0]] && parts.length === 1) return { page: parts[0], params: {}, query };
  return { page: 'notfound', params: { path }, query };
}

let current = null;
let seq = 0;
let firstRoute = true;

async function route() {
  const mySeq = ++seq;
  if (current) current.cleanup();
  const { page, params, query } = parse(location.hash);
  const ctl = new AbortController();
  const cleanups = [];
  current = { cleanup: () => { ctl.abort(); cleanups.splice(0).forEach((f) => { try { f(); } catch (e) { reportError(e); } }); } };
  main.dataset.page = page;
  main.dataset.ready = 'false';
  main.setAttribute('aria-busy', 'true');
  for (const a of document.querySelectorAll('[data-nav]')) {
    const on = a.dataset.nav === page || (page === 'job' && a.dataset.nav === 'jobs') || (page === 'run' && a.dataset.nav === 'jobs');
    if (on) a.setAttribute('aria-current', 'page'); else a.removeAttribute('aria-current');
  }
  const meta = PAGES[page];
  document.title = `${meta ? meta.title : 'Not found'} · wasmcron`;
  const stale = () => mySeq !== seq;
  const ctx = {
    params, query, signal: ctl.signal, auth,
    onCleanup: (f) => cleanups.push(f),
    subscribe: (fn) => cleanups.push(subscribe(fn)),
    setTitle: (t) => { if (!stale()) document.title = `${t} · wasmcron`; },
    stale,
    streamState: () => streamState,
  };
  try {
    if (!auth.known) await probeAuth();
    if (stale()) return;
    if (!auth.can_read) {
      clear(main, h('div.page', null, h('div.empty', null, h('p.empty-title', null, 'Sign in to see this host'),
        h('p.muted', null, 'This host requires an API token for reads.'),
        h('button.btn.primary', { type: 'button', onclick: () => openTokenDialog() }, 'Sign in'))));
      openTokenDialog();
    } else if (!meta) {
      clear(main, h('div.page', null, h('div.empty', null, h('p.empty-title', null, 'Nothing here'),
        h('p.muted', null, `No page at “${params.path}”.`), h('a.btn', { href: '#/' }, 'Go to the overview'))));
    } else {
      const mod = await meta.load();
      if (stale()) return;
      await mod.render(main, ctx);
    }
  } catch (e) {
    if (stale() || (e && e.name === 'AbortError')) return;
    clear(main, h('div.page', { 'data-load-failed': '' }, errorBox(e),
      h('p', null, h('button.btn', { type: 'button', onclick: () => route() }, 'Try again'))));
  }
  if (stale()) return;
  tick();
  main.removeAttribute('aria-busy');
  main.dataset.ready = 'true';
  // Move focus for keyboard and screen-reader users, but not on first load.
  if (!firstRoute) {
    const h1 = main.querySelector('h1');
    if (h1) { h1.tabIndex = -1; h1.focus({ preventScroll: true }); }
    window.scrollTo(0, 0);
  }
  firstRoute = false;
}

window.addEventListener('hashchange', route);

// The skip link's #main is not a route: it moves focus to the content.
document.querySelector('.skip-link')?.addEventListener('click', (ev) => {
  ev.preventDefault();
  main.tabIndex = -1;
  main.focus();
});

// '/' focuses the page's search box, as in most dashboards.
document.addEventListener('keydown', (ev) => {
  if (ev.key !== '/' || ev.ctrlKey || ev.metaKey || ev.altKey) return;
  const t = ev.target;
  if (t instanceof HTMLElement && (t.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(t.tagName))) return;
  const search = main.querySelector('input[type="search"]');
  if (search) { ev.preventDefault(); search.focus(); }
});

(async () => {
  try { await probeAuth(); } catch (e) { toast(e.message, { kind: 'error' }); }
  restartStream();
  await route();
})();

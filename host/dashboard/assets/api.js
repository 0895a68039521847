// The dashboard's only door to the host: same-origin JSON calls with the
// bearer token, the API's one error shape, and the event stream.

const TOKEN_KEY = 'wasmcron.token';

// sessionStorage only: the token dies with the tab, never lands in a URL,
// history entry or localStorage that another tab or a later user could read.
export function getToken() {
  try { return sessionStorage.getItem(TOKEN_KEY) || ''; } catch { return ''; }
}
export function setToken(token) {
  try {
    if (token) sessionStorage.setItem(TOKEN_KEY, token);
    else sessionStorage.removeItem(TOKEN_KEY);
  } catch { /* storage disabled: the token lives for this call only */ }
}

/** An API answer that was not 2xx, with the fields of `ErrorBody`. */
export class ApiError extends Error {
  constructor(status, code, message, field) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    this.field = field || null;
  }
}

// Anyone may listen for `unauthorized` (a 401 came back) to ask for a token.
export const apiEvents = new EventTarget();

function headers(extra) {
  const h = new Headers(extra || {});
  const token = getToken();
  if (token) h.set('Authorization', `Bearer ${token}`);
  return h;
}

export function qs(params) {
  const u = new URLSearchParams();
  for (const [k, v] of Object.entries(params || {})) {
    if (v === undefined || v === null || v === '') continue;
    u.set(k, String(v));
  }
  const s = u.toString();
  return s ? `?${s}` : '';
}

async function errorFrom(res) {
  let text = '';
  try { text = await res.text(); } catch { /* body lost: status only */ }
  try {
    const body = JSON.parse(text);
    if (body && body.error && typeof body.error.message === 'string') {
      return new ApiError(res.status, body.error.code || 'error', body.error.message, body.error.field);
    }
  } catch { /* not the API's JSON: a proxy or an old host */ }
  const snippet = text.trim().slice(0, 200);
  return new ApiError(res.status, 'http', `HTTP ${res.status}${snippet ? `: ${snippet}` : ''}`);
}

/**
 * Calls the API. `body` is sent as JSON unless it is a Blob/ArrayBuffer
 * (plugin uploads). Resolves to the parsed JSON (null for 204); rejects
 * with ApiError, status 0 when the host cannot be reached.
 */
export async function api(method, path, { body, query, signal } = {}) {
  const init = { method, headers: headers({ Accept: 'application/json' }), signal };
  if (body !== undefined) {
    if (body instanceof Blob || body instanceof ArrayBuffer) {
      init.headers.set('Content-Type', 'application/octet-stream');
      init.body = body;
    } else {
      init.headers.set('Content-Type', 'application/json');
      init.body = JSON.stringify(body);
    }
  }
  let res;
  try {
    res = await fetch(path + qs(query), init);
  } catch (e) {
    if (e && e.name === 'AbortError') throw e;
    throw new ApiError(0, 'network', 'Cannot reach the wasmcron host. Is it running?');
  }
  if (!res.ok) {
    const err = await errorFrom(res);
    if (res.status === 401) apiEvents.dispatchEvent(new CustomEvent('unauthorized', { detail: err }));
    throw err;
  }
  if (res.status === 204) return null;
  const text = await res.text();
  return text ? JSON.parse(text) : null;
}

export const get = (path, query, signal) => api('GET', path, { query, signal });
export const post = (path, body) => api('POST', path, { body });
export const del = (path) => api('DELETE', path);
export const enc = encodeURIComponent;

/** True when a route is missing from this host (an older binary). */
export const isMissingRoute = (e) => e instanceof ApiError && (e.status === 404 || e.status === 405) &&
  /no route|does not take that method/i.test(e.message);

/**
 * Splits a text/event-stream into events. Fed chunks of text, calls
 * `emit({event, data, id})` per complete event; keeps partial lines. The
 * spec's rules: lines end in CRLF, LF or CR; `:` starts a comment; a field
 * without a colon has an empty value; one leading space of a value is
 * dropped; `data` lines join with LF; a blank line dispatches.
 */
export function sseParser(emit) {
  let buf = '';
  let event = '';
  let data = [];
  let id = null;
  let sawCR = false;
  function line(l) {
    if (l === '') {
      if (data.length) emit({ event: event || 'message', data: data.join('\n'), id });
      event = ''; data = [];
      return;
    }
    if (l[0] === ':') return;
    const i = l.indexOf(':');
    const field = i < 0 ? l : l.slice(0, i);
    let value = i < 0 ? '' : l.slice(i + 1);
    if (value[0] === ' ') value = value.slice(1);
    if (field === 'event') event = value;
    else if (field === 'data') data.push(value);
    else if (field === 'id' && !value.includes('\0')) id = value;
    // `retry` is ignored: our own backoff decides.
  }
  return function feed(chunk) {
    // A CR at the end of one chunk and an LF at the start of the next are one line end.
    if (sawCR && chunk[0] === '\n') chunk = chunk.slice(1);
    sawCR = false;
    buf += chunk;
    let m;
    const re = /\r\n|\r|\n/g;
    let start = 0;
    while ((m = re.exec(buf))) {
      if (m[0] === '\r' && m.index === buf.length - 1) { sawCR = true; }
      line(buf.slice(start, m.index));
      start = m.index + m[0].length;
    }
    buf = buf.slice(start);
    return id;
  };
}

/**
 * Reads `GET /events` with fetch (EventSource cannot send the token) and
 * keeps it open: on any end or error it reconnects with a growing backoff
 * (1 s doubling to 15 s, jittered), sending `Last-Event-ID` when the host
 * gave ids. `onState` hears 'connecting' | 'open' | 'reconnecting' |
 * 'unauthorized'; `onEvent` each event with its JSON parsed. Returns stop().
 */
export function streamEvents({ onEvent, onState, query }) {
  const ctl = new AbortController();
  let lastId = null;
  let delay = 1000;
  let stopped = false;

  async function once() {
    const h = headers({ Accept: 'text/event-stream' });
    if (lastId !== null) h.set('Last-Event-ID', lastId);
    const res = await fetch('/events' + qs(query), { headers: h, signal: ctl.signal, cache: 'no-store' });
    if (res.status === 401) {
      apiEvents.dispatchEvent(new CustomEvent('unauthorized', { detail: await errorFrom(res) }));
      return 'unauthorized';
    }
    if (!res.ok || !res.body) throw new Error(`events: HTTP ${res.status}`);
    onState('open');
    delay = 1000;
    const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
    const feed = sseParser((ev) => {
      let json = null;
      try { json = JSON.parse(ev.data); } catch { json = { raw: ev.data }; }
      try { onEvent(ev.event, json, ev.id); } catch (e) { reportError(e); }
    });
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      const id = feed(value);
      if (id !== null) lastId = id;
    }
    return 'ended';
  }

  (async () => {
    onState('connecting');
    while (!stopped) {
      let why;
      try { why = await once(); } catch (e) {
        if (stopped || (e && e.name === 'AbortError')) return;
        why = 'error';
      }
      if (stopped) return;
      if (why === 'unauthorized') { onState('unauthorized'); return; }
      onState('reconnecting');
      const wait = delay * (0.8 + Math.random() * 0.4);
      delay = Math.min(delay * 2, 15000);
      await new Promise((r) => setTimeout(r, wait));
    }
  })();

  return () => { stopped = true; ctl.abort(); };
}

/**
 * What this host's API offers beyond the basics, read once from its
 * OpenAPI document: the route to stop a running run (older hosts lack
 * it, and then no Stop button shows), and the pause note's field.
 */
let shape = null;
export function apiShape() {
  if (!shape) {
    shape = fetch('/openapi.json', { headers: { Accept: 'application/json' } })
      .then((r) => (r.ok ? r.json() : { paths: {} }))
      .catch(() => ({ paths: {} }))
      .then((doc) => {
        const paths = doc.paths || {};
        // Older hosts lack these routes; the page offers only what this one serves.
        const stop = paths['/runs/{run_id}/stop'] && paths['/runs/{run_id}/stop'].post;
        const listJobs = paths['/jobs'] && paths['/jobs'].get;
        return {
          paths,
          // Whether GET /jobs searches (`q`) and filters `auto_paused` itself.
          jobsSearch: Boolean(listJobs && (listJobs.parameters || []).some((p) => p.name === 'q')),
          stopRoute: stop ? '/runs/{run_id}/stop' : null,
          pauseNote: 'note',
          has: (path, method = 'get') => Boolean(paths[path] && paths[path][method]),
        };
      });
  }
  return shape;
}

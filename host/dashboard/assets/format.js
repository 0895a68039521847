// Times, durations and sizes for people: always in the viewer's zone unless
// a job's zone is asked for, with relative forms that the shell ticks.

export const viewerZone = Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC';

const fmtCache = new Map();
function dtf(opts) {
  const key = JSON.stringify(opts);
  let f = fmtCache.get(key);
  if (!f) { f = new Intl.DateTimeFormat(undefined, opts); fmtCache.set(key, f); }
  return f;
}

export function toDate(v) {
  if (v === null || v === undefined || v === '') return null;
  const d = v instanceof Date ? v : new Date(v);
  return Number.isNaN(d.getTime()) ? null : d;
}

/** "Mar 29, 14:02:05" (year added when not this year), viewer's zone by default. */
export function fmtTime(v, { zone, seconds = true, weekday = false } = {}) {
  const d = toDate(v);
  if (!d) return '—';
  const opts = { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', hourCycle: 'h23' };
  if (seconds) opts.second = '2-digit';
  if (weekday) opts.weekday = 'short';
  if (zone) opts.timeZone = zone;
  if (d.getFullYear() !== new Date().getFullYear()) opts.year = 'numeric';
  return dtf(opts).format(d);
}

/** The full instant for a tooltip: date, time, zone name. */
export function fmtFull(v, zone) {
  const d = toDate(v);
  if (!d) return '';
  return dtf({ dateStyle: 'full', timeStyle: 'long', timeZone: zone || viewerZone }).format(d);
}

/** "in 42 s", "3 min ago", "just now". */
export function fmtRel(v, now = Date.now()) {
  const d = toDate(v);
  if (!d) return '';
  const ms = d.getTime() - now;
  const a = Math.abs(ms);
  if (a < 1000) return ms >= 0 ? 'now' : 'just now';
  let n, u;
  if (a < 60e3) { n = Math.floor(a / 1e3); u = 's'; }
  else if (a < 3600e3) { n = Math.floor(a / 60e3); u = 'min'; }
  else if (a < 86400e3) { n = Math.floor(a / 3600e3); u = 'h'; }
  else if (a < 86400e3 * 60) { n = Math.floor(a / 86400e3); u = 'd'; }
  else if (a < 86400e3 * 730) { n = Math.floor(a / (86400e3 * 30.44)); u = 'mo'; }
  else { n = Math.floor(a / (86400e3 * 365.25)); u = 'y'; }
  return ms > 0 ? `in ${n} ${u}` : `${n} ${u} ago`;
}

/** 812 ms, 4.2 s, 3 min 12 s, 2 h 5 min, 3 d 4 h. */
export function fmtDuration(ms) {
  if (ms === null || ms === undefined || Number.isNaN(ms)) return '—';
  const neg = ms < 0;
  let a = Math.abs(ms);
  let s;
  if (a < 1000) s = `${Math.round(a)} ms`;
  else if (a < 10e3) s = `${(a / 1e3).toFixed(2)} s`;
  else if (a < 60e3) s = `${(a / 1e3).toFixed(1)} s`;
  else if (a < 3600e3) { const m = Math.floor(a / 60e3); s = `${m} min ${Math.floor((a - m * 60e3) / 1e3)} s`; }
  else if (a < 86400e3) { const h = Math.floor(a / 3600e3); s = `${h} h ${Math.floor((a - h * 3600e3) / 60e3)} min`; }
  else { const d = Math.floor(a / 86400e3); s = `${d} d ${Math.floor((a - d * 86400e3) / 3600e3)} h`; }
  return neg ? `−${s}` : s;
}

/** A ticking "elapsed" clock: 0:42, 12:03, 1:02:03. */
export function fmtClock(ms) {
  const t = Math.max(0, Math.floor(ms / 1000));
  const h = Math.floor(t / 3600), m = Math.floor((t % 3600) / 60), s = t % 60;
  const pad = (x) => String(x).padStart(2, '0');
  return h ? `${h}:${pad(m)}:${pad(s)}` : `${m}:${pad(s)}`;
}

export function between(a, b) {
  const x = toDate(a), y = toDate(b);
  return x && y ? y.getTime() - x.getTime() : null;
}

const nf = new Intl.NumberFormat();
export const fmtInt = (n) => (n === null || n === undefined ? '—' : nf.format(n));

/** Fuel in instructions: 1.2 G, 340 M, 12 k. */
export function fmtFuel(n) {
  if (n === null || n === undefined) return '—';
  if (n >= 1e9) return `${(n / 1e9).toFixed(n >= 1e10 ? 0 : 1)} G`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(n >= 1e7 ? 0 : 1)} M`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(0)} k`;
  return String(n);
}

export function fmtBytes(n) {
  if (n === null || n === undefined) return '—';
  if (n >= 1 << 20) return `${(n / (1 << 20)).toFixed(1)} MiB`;
  if (n >= 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${n} B`;
}

export const shortHash = (h) => (h ? String(h).replace(/^sha256:/, '').slice(0, 12) : '—');
export const shortId = (id) => (id && id.length > 14 ? `${id.slice(0, 8)}…${id.slice(-4)}` : id || '');

/** Minutes east of UTC of `date` in `zone`, from Intl's "GMT+05:30". */
export function zoneOffset(date, zone) {
  const d = toDate(date);
  if (!d) return null;
  let part;
  try {
    part = dtf({ timeZone: zone, timeZoneName: 'longOffset', hour: 'numeric' })
      .formatToParts(d).find((p) => p.type === 'timeZoneName');
  } catch { return null; }
  const m = part && /GMT(?:([+-−])(\d{1,2})(?::?(\d{2}))?)?/.exec(part.value);
  if (!m) return null;
  if (!m[1]) return 0;
  const sign = m[1] === '+' ? 1 : -1;
  return sign * (Number(m[2]) * 60 + Number(m[3] || 0));
}

/** Minutes east of UTC written in an RFC 3339 local time ("…+02:00", "…Z"). */
export function offsetOfLocal(local) {
  const m = /([+-])(\d{2}):?(\d{2})$|Z$/i.exec(String(local || ''));
  if (!m) return null;
  if (!m[1]) return 0;
  return (m[1] === '+' ? 1 : -1) * (Number(m[2]) * 60 + Number(m[3]));
}

export function fmtOffset(min) {
  if (min === null || min === undefined) return '';
  const s = min < 0 ? '−' : '+';
  const a = Math.abs(min);
  return `UTC${s}${String(Math.floor(a / 60)).padStart(2, '0')}:${String(a % 60).padStart(2, '0')}`;
}

/**
 * Marks daylight-saving shifts in a list of fires: each gets `shift`
 * ({from, to} offsets) when its UTC offset differs from the one before.
 * `fires` are {at: Date|string, offset: minutes}.
 */
export function markShifts(fires) {
  let prev = null;
  return fires.map((f) => {
    const out = { ...f, shift: null };
    if (prev !== null && f.offset !== null && f.offset !== prev) out.shift = { from: prev, to: f.offset };
    if (f.offset !== null) prev = f.offset;
    return out;
  });
}

/** The wall-clock part of an RFC 3339 local time, for showing it as the zone sees it. */
export function fmtLocalWall(local) {
  const m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2}))?/.exec(String(local || ''));
  if (!m) return String(local || '');
  const d = new Date(Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5], +(m[6] || 0)));
  const opts = { weekday: 'short', month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', hourCycle: 'h23', timeZone: 'UTC' };
  if (m[6] && m[6] !== '00') opts.second = '2-digit';
  if (+m[1] !== new Date().getFullYear()) opts.year = 'numeric';
  return dtf(opts).format(d);
}

let zones = null;
export function timeZones() {
  if (!zones) {
    try { zones = Intl.supportedValuesOf('timeZone'); } catch { zones = [viewerZone, 'UTC']; }
    if (!zones.includes('UTC')) zones = ['UTC', ...zones];
  }
  return zones;
}

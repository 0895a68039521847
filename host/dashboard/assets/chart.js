// A small inline SVG chart of runs over time: duration as bars (failed runs
// in red), lateness as a line on its own scale. No library: ~100 points.

import { s, h } from './ui.js';
import { fmtDuration, between, fmtTime } from './format.js';
import { FAILED_KINDS, runKind } from './ui.js';

const H = 150, PAD_L = 52, PAD_R = 52, PAD_T = 10, PAD_B = 20;

/** `width`: the box's width in px, so text stays its real size (no stretched viewBox). */
export function runChart(runs, width = 640) {
  const W = Math.max(280, Math.round(width));
  // Oldest first; only runs that started say anything about time.
  const pts = runs.filter((r) => r.started_at).slice().reverse().map((r) => ({
    r,
    dur: r.ended_at ? between(r.started_at, r.ended_at) : null,
    late: between(r.due_at || r.scheduled_at, r.started_at),
  }));
  if (pts.length < 2) return null;
  const maxDur = Math.max(1, ...pts.map((p) => p.dur || 0));
  const maxLate = Math.max(1, ...pts.map((p) => Math.max(0, p.late || 0)));
  const iw = W - PAD_L - PAD_R, ih = H - PAD_T - PAD_B;
  const step = iw / pts.length;
  const bw = Math.max(1.5, Math.min(14, step * 0.7));
  const y = (v, max) => PAD_T + ih - (Math.max(0, v) / max) * ih;

  const bars = pts.map((p, i) => {
    if (p.dur === null) return null;
    const x = PAD_L + i * step + (step - bw) / 2;
    const top = y(p.dur, maxDur);
    const bad = FAILED_KINDS.includes(runKind(p.r));
    return s('rect', { class: bad ? 'bar bad' : 'bar', x: x.toFixed(1), y: top.toFixed(1), width: bw.toFixed(1), height: Math.max(1, PAD_T + ih - top).toFixed(1) },
      s('title', null, `${fmtTime(p.r.scheduled_at)}: ${fmtDuration(p.dur)} (${runKind(p.r)}), ${fmtDuration(p.late)} late`));
  });
  const line = pts.map((p, i) => `${i ? 'L' : 'M'}${(PAD_L + i * step + step / 2).toFixed(1)},${y(p.late || 0, maxLate).toFixed(1)}`).join(' ');
  const grid = [0, 0.5, 1].map((f) => s('line', { class: 'grid-line', x1: PAD_L, x2: W - PAD_R, y1: PAD_T + ih * (1 - f), y2: PAD_T + ih * (1 - f) }));
  const svg = s('svg', { class: 'chart', viewBox: `0 0 ${W} ${H}`, width: W, height: H, role: 'img', 'aria-label': `Duration and lateness of the last ${pts.length} runs. Longest ${fmtDuration(maxDur)}, latest start ${fmtDuration(maxLate)} late.` },
    grid,
    s('text', { x: PAD_L - 6, y: PAD_T + 8, 'text-anchor': 'end' }, fmtDuration(maxDur)),
    s('text', { x: PAD_L - 6, y: PAD_T + ih, 'text-anchor': 'end' }, '0'),
    s('text', { x: W - PAD_R + 6, y: PAD_T + 8 }, fmtDuration(maxLate)),
    s('text', { x: W - PAD_R + 6, y: PAD_T + ih }, '0'),
    s('text', { x: PAD_L, y: H - 4 }, fmtTime(pts[0].r.scheduled_at, { seconds: false })),
    s('text', { x: W - PAD_R, y: H - 4, 'text-anchor': 'end' }, fmtTime(pts[pts.length - 1].r.scheduled_at, { seconds: false })),
    bars,
    s('path', { class: 'late', d: line }));
  return h('figure.chart-fig', null, svg,
    h('figcaption.chart-legend', null,
      h('span', null, h('span.swatch', { 'aria-hidden': 'true' }), 'duration (left scale)'),
      h('span', null, h('span.swatch.line', { 'aria-hidden': 'true' }), 'start lateness (right scale)')));
}

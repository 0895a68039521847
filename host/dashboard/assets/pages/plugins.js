// #/plugins: what the plugins folder holds, loaded or refused (and what to do
// about it), with the jobs using each; push a .wasm and remove one.

import { get, api, del, enc } from '../api.js';
import { fmtBytes, shortHash, fmtInt } from '../format.js';
import { h, clear, badge, icon, whenEl, toast, confirmDialog, field, emptyState, copyBtn } from '../ui.js';

const NAME_RE = /^[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}$/;

export async function render(root, ctx) {
  const summary = h('div.sub');
  const listBox = h('div');
  const uploadCard = h('section.card', { 'aria-labelledby': 'up-h', 'data-write': '', 'data-admin': '' });
  clear(root, h('div.page', null,
    h('div.page-head', null, h('div.title', null, h('h1', null, 'Plugins'), summary)),
    uploadCard, listBox));

  // ---- upload ----
  const file = h('input', { type: 'file', accept: '.wasm,application/wasm', required: true });
  const name = h('input.mono', { type: 'text', required: true, pattern: '[A-Za-z0-9_\\-][A-Za-z0-9._\\-]*', maxlength: 128, spellcheck: 'false', autocomplete: 'off', placeholder: 'hello' });
  const upErr = h('p.form-error', { role: 'alert', hidden: true, 'data-testid': 'upload-error' });
  const upBtn = h('button.btn.primary', { type: 'submit' }, icon('upload'), 'Upload');
  file.addEventListener('change', () => {
    const f = file.files[0];
    if (f && !name.value) name.value = f.name.replace(/\.wasm$/i, '');
  });
  const form = h('form.upload', null,
    h('div.form-row', null, field('Component (.wasm, at most 64 MiB)', file), field('Plugin name', name),
      h('div.field.shrink', null, upBtn)),
    upErr,
    h('p.hint', null, 'The host checks the file (a bounded compile included) before it writes it into the plugins folder; a file it would refuse never reaches a host. A plugin of the same name is replaced for the next runs.'));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    upErr.hidden = true;
    const f = file.files[0];
    if (!f) return;
    if (!NAME_RE.test(name.value)) { upErr.textContent = 'A plugin name is 1-128 of A-Z a-z 0-9 . _ -, not starting with a dot.'; upErr.hidden = false; name.focus(); return; }
    upBtn.disabled = true;
    upBtn.lastChild.textContent = 'Checking…';
    try {
      const r = await api('PUT', `/plugins/${enc(name.value)}`, { body: f });
      toast(`Plugin ${r.name} pushed (${shortHash(r.hash)}, ${fmtBytes(r.size)}, ${r.world}).`);
      form.reset();
      await load();
    } catch (e) {
      upErr.textContent = e.message;
      upErr.hidden = false;
    } finally { upBtn.disabled = false; upBtn.lastChild.textContent = 'Upload'; }
  });
  clear(uploadCard, h('h2', { id: 'up-h' }, 'Push a plugin'), form);

  // ---- list ----
  async function load() {
    const plugins = await get('/plugins', null, ctx.signal);
    const loaded = plugins.filter((p) => p.status === 'loaded');
    const refused = plugins.filter((p) => p.status === 'refused' || (p.status === 'loaded' && p.refused_reason));
    const compiling = plugins.filter((p) => p.status === 'compiling' || p.compiling);
    summary.textContent = `${fmtInt(loaded.length)} loaded · ${fmtInt(plugins.filter((p) => p.status === 'refused').length)} refused${compiling.length ? ` · ${compiling.length} compiling` : ''}`;
    if (!plugins.length) {
      clear(listBox, h('div.card', null, emptyState('No plugins', 'Drop NAME.wasm into the host’s plugins folder, or push one above.')));
      return;
    }
    clear(listBox, h('div.plugin-list', null, plugins.map(card)));
  }

  function card(p) {
    const status = p.divergent ? 'divergent' : p.status;
    const jobsBox = h('div');
    const det = h('details.jobs-using', null, h('summary', null, `${fmtInt(p.jobs)} ${p.jobs === 1 ? 'job uses' : 'jobs use'} it`), jobsBox);
    det.addEventListener('toggle', async () => {
      if (!det.open || jobsBox.dataset.loaded) return;
      jobsBox.dataset.loaded = '1';
      try {
        const page = await get('/jobs', { plugin: p.name, limit: 50 }, ctx.signal);
        clear(jobsBox, h('ul.list-plain', null, page.jobs.map((j) => h('li', null, h('a', { href: `#/jobs/${enc(j.spec.id)}` }, j.spec.id), ' ', badge(j.auto_paused ? 'auto-paused' : j.state)))),
          page.total > page.jobs.length ? h('a', { href: `#/jobs?plugin=${enc(p.name)}` }, `All ${fmtInt(page.total)} jobs`) : null);
      } catch (e) { clear(jobsBox, h('p.form-error', null, e.message)); }
    });
    return h('section.card.plugin', { 'data-plugin': p.name, 'aria-label': `Plugin ${p.name}` },
      h('div.row-between', null,
        h('div.title-row', null, h('h3.plugin-name', null, p.name), badge(status, p.divergent ? 'divergent across hosts' : p.status),
          p.world ? h('span.tag', null, p.world.replace('wasmcron:plugin/', '')) : null),
        h('div.actions', { 'data-write': '', 'data-admin': '' },
          h('button.btn.sm.danger', { type: 'button', 'data-action': 'delete', 'aria-label': `Delete plugin ${p.name}`, onclick: () => remove(p) }, icon('trash'), 'Delete'))),
      p.status === 'loaded' || p.hash ? h('div.kv-inline', null,
        h('span', null, 'hash ', h('b.mono', { title: p.hash }, shortHash(p.hash)), ' ', p.hash ? copyBtn(p.hash) : null),
        h('span', null, 'size ', h('b', null, fmtBytes(p.size))),
        p.compiled ? h('span', null, 'compiled ', h('b', null, p.compiled)) : null,
        p.world ? h('span', null, 'world ', h('b.mono', null, p.world)) : null) : null,
      p.compiling ? h('div.callout.info', null, `A new version (${shortHash(p.compiling.hash)}) is compiling since `, whenEl(p.compiling.since), p.status === 'loaded' ? '; the current version keeps serving.' : '.') : null,
      p.refused_reason ? h('div.callout.error', null,
        h('strong', null, p.status === 'loaded' ? 'The latest file was refused; the previous version keeps serving.' : 'Refused.'),
        h('pre', { 'data-testid': 'refused-reason' }, p.refused_reason),
        h('p', null, whatToDo(p.refused_reason))) : null,
      p.divergent ? h('div.callout.warn', null, 'Hosts run different versions: ',
        (p.hosts || []).map((v) => h('span.tag', null, `${v.host}: ${v.hash ? shortHash(v.hash) : 'none'}`)), ' Push it again to bring every host to one version.') : null,
      (p.imports || []).length ? h('details', null, h('summary', null, `${p.imports.length} imports`), h('div.chips', null, p.imports.map((i) => h('span.tag', null, i)))) : null,
      det);
  }

  async function remove(p) {
    const ok = await confirmDialog({
      title: `Delete plugin ${p.name}?`, confirmLabel: 'Delete plugin',
      message: `Removes ${p.name}.wasm from the plugins folder${p.jobs ? `; its ${p.jobs} ${p.jobs === 1 ? 'job waits' : 'jobs wait'} (waiting-for-plugin) until it comes back` : ''}.`,
      action: () => del(`/plugins/${enc(p.name)}`),
    });
    if (ok) { toast(`Plugin ${p.name} removed.`); load().catch(() => {}); }
  }

  // Plugins load and go in the background: follow the stream.
  let timer = null;
  ctx.subscribe((n) => {
    if (!n.startsWith('plugin-') && n !== 'stream-reconnected') return;
    clearTimeout(timer);
    timer = setTimeout(() => load().catch(() => {}), 300);
  });
  ctx.onCleanup(() => clearTimeout(timer));

  await load();
}

/** A line of advice for the common refusals (the host's reason says the rest). */
function whatToDo(reason) {
  const r = reason.toLowerCase();
  if (r.includes('core module')) return 'Build a component: target wasm32-wasip2 (cargo build --target wasm32-wasip2), not wasm32-unknown-unknown or wasip1.';
  if (r.includes('import')) return 'The component imports something the host does not provide: build against the wasmcron WIT (wit/v0.2) and grant only what the host offers.';
  if (r.includes('world')) return 'Export wasmcron:plugin/runner (world job) or wasmcron:plugin/handler (world listener).';
  if (r.includes('compile') && (r.includes('memory') || r.includes('time'))) return 'The compile went over its bound: raise --compile-memory or --compile-timeout if you trust the file.';
  if (r.includes('64 mib') || r.includes('too large')) return 'Plugins are at most 64 MiB: strip debug info (strip = true in the release profile).';
  return 'Fix the file and drop it into the folder again, or push it above; a good file replaces the refused one.';
}

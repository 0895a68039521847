// A form for a job's args, drawn from the JSON Schema its plugin declares
// (GET /plugins/{name} → args_schema, issue 16 item 6): one control per
// top-level field of a simple type (text, whole number, number, yes/no, a
// choice), labelled with its name and description; a field of any other
// shape is edited as JSON. The host checks what is sent against the same
// schema (422 naming the field), so the form is a convenience, not the
// gate.

import { h, field } from './ui.js';

/** The field's own schema, with the `description` wrapper (`allOf` of one)
 *  and `Option`'s `anyOf [T, null]` unwrapped. */
function unwrap(p) {
  let description = p.description;
  let nullable = false;
  for (let i = 0; i < 8 && p && typeof p === 'object'; i++) {
    if (Array.isArray(p.allOf) && p.allOf.length === 1 && !p.type && !p.enum) {
      description = description || p.description; p = p.allOf[0]; continue;
    }
    if (Array.isArray(p.anyOf) && p.anyOf.length === 2) {
      const rest = p.anyOf.filter((x) => !(x && x.type === 'null'));
      if (rest.length === 1) { nullable = true; description = description || p.description; p = rest[0]; continue; }
    }
    break;
  }
  return { schema: p || {}, description: description || (p && p.description), nullable };
}

/** The kind of control a field gets, or 'json'. */
function kindOf(s) {
  if (Array.isArray(s.enum) && s.enum.every((v) => typeof v === 'string')) return 'enum';
  if (['string', 'integer', 'number', 'boolean'].includes(s.type)) return s.type;
  return 'json';
}

/**
 * A form for `schema` filled with `initial`, or null when the schema is not
 * an object with properties (then the caller keeps its JSON box).
 * Returns { el, value() }: value() answers the args object or throws an
 * Error naming the field.
 */
export function argsForm(schema, initial) {
  if (!schema || schema.type !== 'object' || !schema.properties || typeof schema.properties !== 'object') return null;
  const required = new Set(schema.required || []);
  const start = initial && typeof initial === 'object' && !Array.isArray(initial) ? initial : {};
  const rows = Object.entries(schema.properties).map(([name, prop]) => {
    const { schema: s, description } = unwrap(prop || {});
    const kind = kindOf(s);
    const has = Object.prototype.hasOwnProperty.call(start, name);
    const now = start[name];
    const attrs = { name: `arg-${name}`, 'data-arg': name, 'data-kind': kind };
    let control;
    if (kind === 'boolean') {
      control = h('select', attrs, h('option', { value: '' }, required.has(name) ? 'choose…' : '(not set)'),
        h('option', { value: 'true' }, 'yes'), h('option', { value: 'false' }, 'no'));
      control.value = has && typeof now === 'boolean' ? String(now) : '';
    } else if (kind === 'enum') {
      control = h('select', attrs, h('option', { value: '' }, required.has(name) ? 'choose…' : '(not set)'),
        ...s.enum.map((v) => h('option', { value: v }, v)));
      control.value = has && typeof now === 'string' ? now : '';
    } else if (kind === 'json') {
      control = h('textarea.mono', { ...attrs, rows: 3, spellcheck: 'false' }, has ? JSON.stringify(now, null, 2) : '');
    } else {
      control = h('input', { ...attrs, type: kind === 'string' ? 'text' : 'number', spellcheck: 'false', autocomplete: 'off',
        step: kind === 'integer' ? '1' : 'any' });
      control.value = has && now !== null && now !== undefined ? String(now) : '';
    }
    const label = `${name}${required.has(name) ? '' : ' (optional)'}`;
    const hint = [description, kind === 'json' ? 'JSON' : null].filter(Boolean).join(' · ');
    return { name, kind, control, el: field(label, control, hint || undefined) };
  });
  // Args the schema does not list are kept when it allows them.
  const extra = schema.additionalProperties === false ? {} :
    Object.fromEntries(Object.entries(start).filter(([k]) => !(k in schema.properties)));
  return {
    el: h('div.args-form', { 'data-testid': 'args-form' }, rows.map((r) => r.el)),
    value() {
      const out = { ...extra };
      for (const { name, kind, control } of rows) {
        const raw = control.value.trim();
        if (raw === '') {
          if (required.has(name)) throw new Error(`${name}: required`);
          continue;
        }
        if (kind === 'string' || kind === 'enum') out[name] = control.value;
        else if (kind === 'boolean') out[name] = raw === 'true';
        else if (kind === 'integer') {
          if (!/^-?\d+$/.test(raw)) throw new Error(`${name}: a whole number, e.g. 3`);
          out[name] = Number(raw);
        } else if (kind === 'number') {
          const n = Number(raw);
          if (!Number.isFinite(n)) throw new Error(`${name}: a number, e.g. 2.5`);
          out[name] = n;
        } else {
          try { out[name] = JSON.parse(raw); } catch (e) { throw new Error(`${name}: not valid JSON (${e.message})`); }
        }
      }
      return out;
    },
  };
}

// wasmcron.js: write a wasmcron job in JavaScript, one function and `job()`.
//
// This single file is the JavaScript counterpart of the Rust guest SDK
// (guest-sdk/src). Copy it beside your app.js and build with
// @bytecodealliance/componentize-js 0.23.0 against the WIT this host serves:
//
//   npx componentize-js app.js --wit wit/v0.2 --world-name job -o my-job.wasm
//
// A job is a function taking a Context and returning the run's output: a
// string, or anything else, which is turned into JSON. Throw a JobError
// (`JobError.retryable(...)` or `JobError.permanent(...)`) to fail the run;
// the scheduler retries only retryable errors. Any other exception fails the
// run as retryable, as `?` on an I/O error does in Rust.
//
// Example app.js:
//
//   import { job, JobError, kv, log } from "./wasmcron.js";
//
//   // componentize-js exports what the module exports under the WIT
//   // interface's name: `runner`.
//   export const runner = job((ctx) => {
//     // Unknown or mistyped arguments are a permanent error.
//     const name = ctx.arg("name", "string", "world");
//     const seen = (kv.getJson("seen") ?? 0) + 1;
//     kv.setJson("seen", seen);
//     log.info(`greeting ${name} (attempt ${ctx.attempt})`, { seen });
//     return `Hello, ${name}! I have greeted ${seen} times.`;
//   });

import { log as hostLog } from "wasmcron:plugin/log@0.2.0";
import * as hostKv from "wasmcron:plugin/kv@0.2.0";

/**
 * Why a run failed, and whether the scheduler may retry it. A permanent
 * error (bad arguments, missing data) is never retried, whatever the job's
 * retry policy; a retryable one is retried under it.
 */
export class JobError extends Error {
  /**
   * @param {string} message recorded in the run history
   * @param {boolean} retryable whether trying again may help
   */
  constructor(message, retryable = true) {
    super(message);
    this.name = "JobError";
    this.retryable = retryable;
  }

  /** A failure that may go away if the run is tried again. */
  static retryable(message) {
    return new JobError(message, true);
  }

  /** A failure a retry cannot fix. */
  static permanent(message) {
    return new JobError(message, false);
  }

  toString() {
    return `${this.message} (${this.retryable ? "retryable" : "permanent"})`;
  }
}

const KINDS = {
  string: "a string",
  number: "a number",
  integer: "an integer",
  boolean: "a boolean",
  array: "an array",
  object: "an object",
  any: "any value",
};

function jsonKind(v) {
  if (v === null) return "null";
  if (Array.isArray(v)) return "an array";
  if (typeof v === "boolean") return "a boolean";
  if (typeof v === "number") return "a number";
  if (typeof v === "string") return "a string";
  return "an object";
}

function hasKind(v, kind) {
  switch (kind) {
    case "any":
      return true;
    case "integer":
      return Number.isInteger(v);
    case "array":
      return Array.isArray(v);
    case "object":
      return v !== null && typeof v === "object" && !Array.isArray(v);
    default:
      return typeof v === kind;
  }
}

/** A WIT timestamp (seconds are a BigInt) as a JavaScript Date. */
function toDate(t) {
  return new Date(Number(t.seconds) * 1000 + Math.floor(t.nanoseconds / 1e6));
}

/** What the host tells a job about the run it is asked to do. */
export class Context {
  constructor(raw) {
    this._raw = raw;
    this._args = undefined;
  }

  /** The job's id, as given when it was added. */
  get jobId() {
    return this._raw.jobId;
  }

  /** A unique id for this run (one attempt at one fire). */
  get runId() {
    return this._raw.runId;
  }

  /** 1 for the first attempt at a fire, 2 for its first retry, ... */
  get attempt() {
    return this._raw.attempt;
  }

  /** When the schedule said this fire was due (a Date). */
  get scheduledAt() {
    return toDate(this._raw.scheduledAt);
  }

  /** When the host started the run (a Date). */
  get firedAt() {
    return toDate(this._raw.firedAt);
  }

  /**
   * Why this run happened: "schedule", "retry", "manual", "backfill",
   * "chain", "replay" or "start".
   */
  get cause() {
    return this._raw.cause;
  }

  /**
   * For a chained run, the run that started it: `{jobId, runId, outcome,
   * output, message, succeeded}`; else undefined.
   */
  get parent() {
    const p = this._raw.parent;
    if (p === undefined || p === null) return undefined;
    return {
      jobId: p.jobId,
      runId: p.runId,
      outcome: p.outcome,
      output: p.output,
      message: p.message,
      succeeded: p.outcome === "succeeded",
    };
  }

  /** The job's arguments as raw JSON text ("{}" when none). */
  get argsJson() {
    return this._raw.args;
  }

  /**
   * The job's arguments, parsed from JSON (an object usually). Throws a
   * permanent JobError when they are not JSON.
   */
  get args() {
    if (this._args === undefined) {
      try {
        this._args = JSON.parse(this._raw.args);
      } catch (e) {
        throw JobError.permanent(`invalid job arguments: ${e.message}`);
      }
    }
    return this._args;
  }

  /**
   * One argument, checked: `ctx.arg("name", "string", "world")`. `kind` is
   * "string", "number", "integer", "boolean", "array", "object" or "any".
   * Without a default (`undefined`) the argument is required. Throws a
   * permanent JobError naming the argument when it is missing or of the
   * wrong kind.
   */
  arg(name, kind = "any", fallback = undefined) {
    const args = this.args;
    if (!hasKind(args, "object")) {
      throw JobError.permanent(
        `invalid job arguments: expected a JSON object, got ${jsonKind(args)}`,
      );
    }
    const value = args[name];
    if (value === undefined || value === null) {
      if (fallback === undefined) {
        throw JobError.permanent(`invalid job arguments: missing field \`${name}\``);
      }
      return fallback;
    }
    if (!hasKind(value, kind)) {
      throw JobError.permanent(
        `invalid job arguments: \`${name}\` must be ${KINDS[kind] ?? kind}, got ${jsonKind(value)}`,
      );
    }
    return value;
  }

  /**
   * Refuses arguments other than `names` (a permanent error naming the
   * first unknown one), as `#[serde(deny_unknown_fields)]` does in Rust: a
   * typo then fails the first run instead of being ignored.
   */
  onlyArgs(...names) {
    const args = this.args;
    if (!hasKind(args, "object")) return;
    for (const key of Object.keys(args)) {
      if (!names.includes(key)) {
        const expected = names.map((n) => `\`${n}\``).join(", ") || "none";
        throw JobError.permanent(
          `invalid job arguments: unknown field \`${key}\`, expected ${expected}`,
        );
      }
    }
  }
}

function emit(level, message, fields) {
  const pairs = Object.entries(fields ?? {}).map(([k, v]) => [
    String(k),
    typeof v === "string" ? v : JSON.stringify(v),
  ]);
  hostLog(level, String(message), pairs);
}

/**
 * Logging into the run's history: `log.info("done", { files: 3 })`. The
 * optional object's entries are kept as the message's fields (values turned
 * into text). Messages past the run's log budget are dropped by the host,
 * which marks the truncation; logging never fails.
 */
export const log = {
  /** Step-by-step detail. */
  trace: (message, fields) => emit("trace", message, fields),
  /** Detail for whoever debugs the job. */
  debug: (message, fields) => emit("debug", message, fields),
  /** What the run did. */
  info: (message, fields) => emit("info", message, fields),
  /** Something looks wrong, but the run goes on. */
  warn: (message, fields) => emit("warn", message, fields),
  /** Something failed. */
  error: (message, fields) => emit("error", message, fields),
};

/** Turns a refused kv call (a WIT kv-error) into a JobError. */
function kvCall(f) {
  try {
    return f();
  } catch (e) {
    // componentize-js throws the WIT error as `e.payload`: `{tag, val}`.
    const err = e && e.payload !== undefined ? e.payload : e;
    switch (err && err.tag) {
      case "unavailable":
        throw JobError.retryable(`kv store unavailable: ${err.val}`);
      case "too-large":
        throw JobError.permanent(`kv value too large: ${err.val}`);
      case "invalid-key":
        throw JobError.permanent(`invalid kv key: ${err.val}`);
      default:
        throw e;
    }
  }
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * The job's persistent key-value store: the only state runs share. Keys are
 * non-empty strings of at most 256 bytes; values are bytes of at most
 * 1 MiB. A refused call throws a JobError: retryable when the store was
 * unavailable, permanent otherwise (the same call would fail again), so a
 * job can let it propagate.
 */
export const kv = {
  /** The bytes (a Uint8Array) stored under `key`, or undefined. */
  get(key) {
    const v = kvCall(() => hostKv.get(key));
    return v === null ? undefined : v;
  },
  /** Store `value` (a Uint8Array, or a string stored as UTF-8). */
  set(key, value) {
    const bytes = typeof value === "string" ? encoder.encode(value) : value;
    kvCall(() => hostKv.set(key, bytes));
  },
  /** Remove `key` (removing a missing key is fine). */
  delete(key) {
    kvCall(() => hostKv.delete(key));
  },
  /**
   * The JSON value stored under `key`, or undefined. A stored value that is
   * not JSON is a permanent error naming the key.
   */
  getJson(key) {
    const bytes = kv.get(key);
    if (bytes === undefined) return undefined;
    try {
      return JSON.parse(decoder.decode(bytes));
    } catch (e) {
      throw JobError.permanent(`kv key '${key}' holds invalid JSON: ${e.message}`);
    }
  },
  /** Store `value` as JSON under `key`. */
  setJson(key, value) {
    kv.set(key, JSON.stringify(value));
  },
};

function output(value) {
  if (value === undefined || value === null) return "";
  if (typeof value === "string") return value;
  return JSON.stringify(value);
}

/**
 * The error value componentize-js returns as the WIT `err`. Thrown as an
 * object carrying it in `payload`, which is where componentize-js looks
 * for a result's error value.
 */
function wireError(message, retryable) {
  const e = new Error(message);
  e.payload = { message, retryable };
  return e;
}

/**
 * Makes `f` the job: returns the `runner` export to `export const runner =`
 * from the app module.
 */
export function job(f) {
  return {
    run(raw) {
      let value;
      try {
        value = f(new Context(raw));
      } catch (e) {
        if (e instanceof JobError) throw wireError(e.message, e.retryable);
        // Unexpected exceptions are retryable, as in the Rust SDK. The stack
        // goes to stderr, which the host keeps in the run's log.
        console.error(e && e.stack ? e.stack : String(e));
        throw wireError(`${e && e.name ? e.name : "Error"}: ${e && e.message ? e.message : e}`, true);
      }
      if (value instanceof Promise) {
        // A synchronous export cannot wait; say so instead of returning
        // "[object Promise]".
        throw wireError("the job function returned a Promise: wasmcron jobs are synchronous", false);
      }
      return output(value);
    },
  };
}

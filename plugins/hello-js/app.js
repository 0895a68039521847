// `hello-js`: `plugins/hello` in JavaScript. Logs and returns a greeting.
//
// Args: `{"name": "world"}` (optional; defaults to "world"). Unknown
// arguments are a permanent error, as in `hello`.
//
// Four more arguments, off by default, let the tests
// (tests/tests/polyglot.rs) drive retries, kv and the limits through this
// one component instead of a second 12 MB one per behaviour:
//
// - `"fail": "retryable" | "permanent"`: fail with that kind of error, on
//   every attempt, or only on the first `fail_attempts` attempts;
// - `"count": true`: count greetings in kv (key `greetings`) and say which
//   one this is; `"forget": true` deletes the count first;
// - `"spin": true`: loop forever (for the fuel and timeout limits).

import { job, JobError, kv, log } from "./wasmcron.js";

// componentize-js exports the module's export named after the WIT
// interface, `runner`.
export const runner = job((ctx) => {
  ctx.onlyArgs("name", "fail", "fail_attempts", "count", "forget", "spin");
  const name = ctx.arg("name", "string", "world");
  log.info(`saying hello to ${name} (job ${ctx.jobId}, attempt ${ctx.attempt})`);
  console.log("hello from stdout");

  const fail = ctx.arg("fail", "string", null);
  if (fail !== null) {
    if (fail !== "retryable" && fail !== "permanent") {
      throw JobError.permanent(
        `invalid job arguments: \`fail\` must be "retryable" or "permanent", got ${JSON.stringify(fail)}`,
      );
    }
    if (ctx.attempt <= ctx.arg("fail_attempts", "integer", ctx.attempt)) {
      throw new JobError(`attempt ${ctx.attempt} failed on purpose`, fail === "retryable");
    }
  }

  if (ctx.arg("spin", "boolean", false)) {
    let x = 0;
    for (;;) x += 1;
  }

  let greeting = `Hello, ${name}!`;
  if (ctx.arg("forget", "boolean", false)) kv.delete("greetings");
  if (ctx.arg("count", "boolean", false)) {
    const n = (kv.getJson("greetings") ?? 0) + 1;
    kv.setJson("greetings", n);
    log.debug("greeting counted", { greetings: n });
    greeting += ` (greeting ${n})`;
  }
  return greeting;
});

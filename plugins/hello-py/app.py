"""`hello-py`: `plugins/hello` in Python. Logs and returns a greeting.

Args: `{"name": "world"}` (optional; defaults to "world"). Unknown
arguments are a permanent error, as in `hello`.

Four more arguments, off by default, let the tests (tests/tests/polyglot.rs)
drive retries, kv and the limits through this one component instead of a
second 18 MB one per behaviour:

- `"fail": "retryable" | "permanent"`: fail with that kind of error, on
  every attempt, or only on the first `fail_attempts` attempts;
- `"count": true`: count greetings in kv (key `greetings`) and say which
  one this is; `"forget": true` deletes the count first;
- `"spin": true`: loop forever (for the fuel and timeout limits).
"""

import wasmcron
from wasmcron import Context, JobError, job, kv, log


@job
def hello(ctx: Context) -> str:
    ctx.only_args("name", "fail", "fail_attempts", "count", "forget", "spin")
    name = ctx.arg("name", str, default="world")
    log.info(f"saying hello to {name} (job {ctx.job_id}, attempt {ctx.attempt})")
    print("hello from stdout")

    fail = ctx.arg("fail", str, default=None)
    if fail is not None:
        if fail not in ("retryable", "permanent"):
            raise JobError.permanent(
                f"invalid job arguments: `fail` must be \"retryable\" or \"permanent\", got {fail!r}"
            )
        if ctx.attempt <= ctx.arg("fail_attempts", int, default=ctx.attempt):
            raise JobError(f"attempt {ctx.attempt} failed on purpose", fail == "retryable")

    if ctx.arg("spin", bool, default=False):
        x = 0
        while True:
            x += 1

    greeting = f"Hello, {name}!"
    if ctx.arg("forget", bool, default=False):
        kv.delete("greetings")
    if ctx.arg("count", bool, default=False):
        n = kv.get_json("greetings", default=0) + 1
        kv.set_json("greetings", n)
        log.debug("greeting counted", greetings=n)
        greeting += f" (greeting {n})"
    return greeting


# componentize-py exports the class named after the WIT interface (`runner`)
# from the app module; `@job` registered the function it dispatches to.
Runner = wasmcron.Runner

"""Write a wasmcron job in Python: one function and ``@job``.

This single file is the Python counterpart of the Rust guest SDK
(``guest-sdk/src``). Copy it beside your ``app.py`` and build with
componentize-py 0.25.1 against the WIT this host serves::

    componentize-py -d wit/v0.2 -w job componentize app -p . -o my-job.wasm

A job is a function taking a :class:`Context` and returning the run's
output: a ``str``, or anything else that is turned into JSON. Raise
:class:`JobError` (``JobError.retryable(...)`` or ``JobError.permanent(...)``)
to fail the run; the scheduler retries only retryable errors. Any other
exception fails the run as *retryable*, like ``?`` on an I/O error in Rust.

Example ``app.py``::

    import wasmcron
    from wasmcron import Context, JobError, job, kv, log

    @job
    def greet(ctx: Context) -> str:
        # Unknown or mistyped arguments are a permanent error.
        name = ctx.arg("name", str, default="world")
        seen = kv.get_json("seen", default=0) + 1
        kv.set_json("seen", seen)
        log.info(f"greeting {name} (attempt {ctx.attempt})", seen=seen)
        return f"Hello, {name}! I have greeted {seen} times."

    # componentize-py looks for the class exporting `runner` under this
    # name in the app module: `@job` made it.
    Runner = wasmcron.Runner

The module needs the bindings componentize-py generates for world ``job``
(package ``wit_world``); it imports them lazily, so it can also be imported
by plain CPython for unit tests, as long as nothing calls the host.
"""

from __future__ import annotations

import json
import sys
import traceback
from dataclasses import dataclass
from typing import Any, Callable, Optional

__all__ = [
    "Context",
    "JobError",
    "ParentRun",
    "Runner",
    "job",
    "kv",
    "log",
]

_MISSING = object()


class JobError(Exception):
    """Why a run failed, and whether the scheduler may retry it.

    A *permanent* error (bad arguments, missing data) is never retried,
    whatever the job's retry policy; a *retryable* one is retried under it.
    """

    def __init__(self, message: str, retryable: bool = True) -> None:
        super().__init__(message)
        self.message = message
        self.retryable = retryable

    @classmethod
    def retryable(cls, message: str) -> "JobError":  # type: ignore[override]
        """A failure that may go away if the run is tried again."""
        return cls(message, True)

    @classmethod
    def permanent(cls, message: str) -> "JobError":
        """A failure a retry cannot fix."""
        return cls(message, False)

    def __str__(self) -> str:
        kind = "retryable" if self.retryable else "permanent"
        return f"{self.message} ({kind})"


# `retryable` is both a constructor (JobError.retryable("...")) and an
# attribute of an instance (err.retryable): the classmethod above is shadowed
# on instances by the attribute set in __init__, which is what we want.


@dataclass(frozen=True)
class ParentRun:
    """The run whose end started a chained run (``Context.parent``)."""

    job_id: str
    run_id: str
    #: ``succeeded``, or ``failed``, ``trapped``, ``out-of-fuel``, ...
    outcome: str
    #: The parent's output when it succeeded.
    output: Optional[str]
    #: The parent's error or trap message when it failed.
    message: Optional[str]

    @property
    def succeeded(self) -> bool:
        """Whether the parent run succeeded."""
        return self.outcome == "succeeded"


class Context:
    """What the host tells a job about the run it is asked to do."""

    def __init__(self, raw: Any) -> None:
        self._raw = raw
        self._args: Any = _MISSING

    @property
    def job_id(self) -> str:
        """The job's id, as given when it was added."""
        return self._raw.job_id

    @property
    def run_id(self) -> str:
        """A unique id for this run (one attempt at one fire)."""
        return self._raw.run_id

    @property
    def attempt(self) -> int:
        """1 for the first attempt at a fire, 2 for its first retry, ..."""
        return self._raw.attempt

    @property
    def scheduled_at(self) -> float:
        """When the schedule said this fire was due, in Unix seconds."""
        t = self._raw.scheduled_at
        return t.seconds + t.nanoseconds / 1e9

    @property
    def fired_at(self) -> float:
        """When the host started the run, in Unix seconds."""
        t = self._raw.fired_at
        return t.seconds + t.nanoseconds / 1e9

    @property
    def cause(self) -> str:
        """Why this run happened: ``schedule``, ``retry``, ``manual``,
        ``backfill``, ``chain``, ``replay`` or ``start``."""
        return self._raw.cause.name.lower()

    @property
    def parent(self) -> Optional[ParentRun]:
        """For a chained run, the run that started it; else ``None``."""
        p = self._raw.parent
        if p is None:
            return None
        return ParentRun(p.job_id, p.run_id, p.outcome, p.output, p.message)

    @property
    def args_json(self) -> str:
        """The job's arguments as raw JSON text (``{}`` when none)."""
        return self._raw.args

    @property
    def args(self) -> Any:
        """The job's arguments, parsed from JSON (a ``dict`` usually).

        Raises a permanent :class:`JobError` when they are not JSON.
        """
        if self._args is _MISSING:
            try:
                self._args = json.loads(self._raw.args)
            except ValueError as e:
                raise JobError.permanent(f"invalid job arguments: {e}") from None
        return self._args

    def arg(self, name: str, kind: type = object, default: Any = _MISSING) -> Any:
        """One argument, checked: ``ctx.arg("name", str, default="world")``.

        ``kind`` is the Python type the JSON value must have (``str``,
        ``int``, ``float``, ``bool``, ``list``, ``dict``; ``object`` for
        any). Without a ``default`` the argument is required. Raises a
        permanent :class:`JobError` naming the argument when it is missing
        or of the wrong type.
        """
        args = self.args
        if not isinstance(args, dict):
            raise JobError.permanent(
                f"invalid job arguments: expected a JSON object, got {_json_kind(args)}"
            )
        if name not in args or args[name] is None:
            if default is _MISSING:
                raise JobError.permanent(f"invalid job arguments: missing field `{name}`")
            return default
        value = args[name]
        # bool is an int in Python, and JSON 1 is not a float: check by hand.
        ok = (
            kind is object
            or (kind is int and isinstance(value, int) and not isinstance(value, bool))
            or (kind is float and isinstance(value, (int, float)) and not isinstance(value, bool))
            or (kind not in (int, float) and isinstance(value, kind))
        )
        if not ok:
            raise JobError.permanent(
                f"invalid job arguments: `{name}` must be {_KIND_NAMES.get(kind, kind.__name__)}, "
                f"got {_json_kind(value)}"
            )
        return value

    def only_args(self, *names: str) -> None:
        """Refuse arguments other than ``names`` (a permanent error naming
        the first unknown one), as ``#[serde(deny_unknown_fields)]`` does:
        a typo then fails the first run instead of being ignored."""
        args = self.args
        if isinstance(args, dict):
            for key in args:
                if key not in names:
                    expected = ", ".join(f"`{n}`" for n in names) or "none"
                    raise JobError.permanent(
                        f"invalid job arguments: unknown field `{key}`, expected {expected}"
                    )


_KIND_NAMES = {
    str: "a string",
    int: "an integer",
    float: "a number",
    bool: "a boolean",
    list: "an array",
    dict: "an object",
}


def _json_kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


class _Log:
    """Logging into the run's history: ``log.info("done", files=3)``.

    Keyword arguments are kept as the message's fields (their values turned
    into text). Messages past the run's log budget are dropped by the host,
    which marks the truncation; logging never fails.
    """

    def _emit(self, level_name: str, message: str, fields: dict) -> None:
        from wit_world.imports import log as raw

        pairs = [(str(k), v if isinstance(v, str) else json.dumps(v)) for k, v in fields.items()]
        raw.log(getattr(raw.Level, level_name), str(message), pairs)

    def trace(self, message: str, **fields: Any) -> None:
        """Step-by-step detail."""
        self._emit("TRACE", message, fields)

    def debug(self, message: str, **fields: Any) -> None:
        """Detail for whoever debugs the job."""
        self._emit("DEBUG", message, fields)

    def info(self, message: str, **fields: Any) -> None:
        """What the run did."""
        self._emit("INFO", message, fields)

    def warn(self, message: str, **fields: Any) -> None:
        """Something looks wrong, but the run goes on."""
        self._emit("WARN", message, fields)

    def error(self, message: str, **fields: Any) -> None:
        """Something failed."""
        self._emit("ERROR", message, fields)


class _Kv:
    """The job's persistent key-value store: the only state runs share.

    Keys are non-empty strings of at most 256 bytes; values are bytes of at
    most 1 MiB. A refused call raises :class:`JobError`: retryable when the
    store was unavailable, permanent otherwise (the same call would fail
    again), so a job can let it propagate.
    """

    @staticmethod
    def _call(f: Callable[[], Any]) -> Any:
        from componentize_py_types import Err
        from wit_world.imports import kv as raw

        try:
            return f()
        except Err as e:
            err = e.value
            if isinstance(err, raw.KvError_Unavailable):
                raise JobError.retryable(f"kv store unavailable: {err.value}") from None
            if isinstance(err, raw.KvError_TooLarge):
                raise JobError.permanent(f"kv value too large: {err.value}") from None
            raise JobError.permanent(f"invalid kv key: {err.value}") from None

    def get(self, key: str) -> Optional[bytes]:
        """The bytes stored under ``key``, or ``None``."""
        from wit_world.imports import kv as raw

        return self._call(lambda: raw.get(key))

    def set(self, key: str, value: bytes | str) -> None:
        """Store ``value`` (bytes, or text stored as UTF-8) under ``key``."""
        from wit_world.imports import kv as raw

        data = value.encode() if isinstance(value, str) else bytes(value)
        self._call(lambda: raw.set(key, data))

    def delete(self, key: str) -> None:
        """Remove ``key`` (removing a missing key is fine)."""
        from wit_world.imports import kv as raw

        self._call(lambda: raw.delete(key))

    def get_json(self, key: str, default: Any = None) -> Any:
        """The JSON value stored under ``key``, or ``default`` when none.

        A stored value that is not JSON is a permanent error naming the key.
        """
        data = self.get(key)
        if data is None:
            return default
        try:
            return json.loads(data)
        except ValueError as e:
            raise JobError.permanent(f"kv key '{key}' holds invalid JSON: {e}") from None

    def set_json(self, key: str, value: Any) -> None:
        """Store ``value`` as JSON under ``key``."""
        self.set(key, json.dumps(value, separators=(",", ":")))


log = _Log()
kv = _Kv()

_job: Optional[Callable[[Context], Any]] = None


def job(f: Callable[[Context], Any]) -> Callable[[Context], Any]:
    """Make ``f`` the job this component runs. Use it once per component,
    and put ``Runner = wasmcron.Runner`` in the app module."""
    global _job
    _job = f
    return f


def _output(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"))


class Runner:
    """The ``runner`` export componentize-py calls; dispatches to the
    function marked with :func:`job`."""

    def run(self, ctx: Any) -> str:
        from componentize_py_types import Err
        from wit_world.imports import types

        if _job is None:
            raise Err(types.JobError("no function is marked with @wasmcron.job", False))
        try:
            try:
                return _output(_job(Context(ctx)))
            finally:
                # Python buffers stdout when it is not a terminal, and a
                # component never exits to flush it: what the job printed
                # would be lost from the run's log.
                sys.stdout.flush()
                sys.stderr.flush()
        except JobError as e:
            raise Err(types.JobError(e.message, e.retryable)) from None
        except Exception as e:  # noqa: BLE001 - any other failure fails the run
            # Unexpected exceptions are retryable, as in the Rust SDK (where
            # `?` on any std error is). The traceback goes to stderr, which
            # the host keeps in the run's log.
            traceback.print_exc()
            sys.stderr.flush()
            raise Err(types.JobError(f"{type(e).__name__}: {e}", True)) from None

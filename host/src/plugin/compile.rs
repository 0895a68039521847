//! Compiling a plugin in a child process, bounded in memory and time.
//!
//! ```text
//! plugin bytes ──stdin──▶ wasmcron __compile (RLIMIT_AS, RLIMIT_CPU, killed with its parent)
//!              ◀─stdout── serialized component (exit 0) | why it is invalid (exit 3) | out of memory (exit 4)
//! ```
//!
//! Compiling untrusted WebAssembly is the one step of loading whose cost
//! the file's author controls: a few MB shaped to be expensive took
//! cranelift minutes and the host past 6 GiB. So the compile runs in a
//! process of its own (this same executable, re-run with a hidden
//! subcommand) that sets its own limits before reading a byte, and the
//! parent kills it at a wall-clock bound too (twice the CPU bound, so a
//! compile that merely waits for a core on a busy machine is not blamed).
//! A plugin over a bound is refused with the bound's name and flag; the
//! host itself never holds the compiler's memory.
//!
//! The child's engine is built by [`crate::runtime::engine::compiler`]
//! with the runtime engine's code-generation settings (same compatibility
//! hash), so the parent loads its output directly; wasmtime checks that
//! again when the parent deserializes.

use super::{CompileSource, ContentHash, MAX_PLUGIN_BYTES, Plugin, PluginError};
use crate::runtime::Runtime;
use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::{ExitCode, Stdio};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// The hidden subcommand that runs the compiler process.
pub const SUBCOMMAND: &str = "__compile";
/// The smallest `--compile-memory` accepted. Lower values cannot even map
/// the executable, so every compile would fail.
pub const MIN_COMPILE_MEMORY: u64 = 16 << 20;

/// Child exit code: the bytes are not a valid component (message on stdout).
const EXIT_INVALID: u8 = 3;
/// Child exit code: compiling ran out of (limited) memory.
const EXIT_NO_MEMORY: u8 = 4;
/// Child exit code: the child could not set up (limits, engine, stdin).
const EXIT_SETUP: u8 = 5;
/// How much of the child's stderr is kept for a failure report.
const STDERR_TAIL: usize = 2048;

/// Bounds on compiling one plugin, and how many compile at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompileLimits {
    /// Address space the compiler process may map, in bytes (`RLIMIT_AS`).
    /// Default 2 GiB: the largest real plugins we know of (a few MB of
    /// code) compile in a few hundred MiB.
    pub memory: u64,
    /// CPU time one compile may use (`RLIMIT_CPU`, whole seconds, at least
    /// 1); the wall-clock bound is twice this. Default 60 s: real plugins
    /// compile in well under a second per MB.
    pub time: Duration,
    /// Compiles at once. Default: one per core, at least 2, so one slow
    /// compile never queues the rest behind it.
    pub parallel: usize,
}

impl Default for CompileLimits {
    fn default() -> Self {
        Self {
            memory: 2 << 30,
            time: Duration::from_secs(60),
            parallel: default_parallel(),
        }
    }
}

/// One compile per core, at least 2.
pub fn default_parallel() -> usize {
    std::thread::available_parallelism()
        .map(std::num::NonZeroUsize::get)
        .unwrap_or(2)
        .max(2)
}

impl CompileLimits {
    /// The bounds a compile ran under, as a short key (`m<bytes>-t<secs>`):
    /// a refusal remembered under one key is not applied under another, so
    /// raising a bound compiles the file again.
    pub fn key(&self) -> String {
        format!("m{}-t{}", self.memory, self.cpu_seconds())
    }

    /// The CPU limit in whole seconds (rounded up, at least 1).
    fn cpu_seconds(&self) -> u64 {
        let secs = self.time.as_secs() + u64::from(self.time.subsec_nanos() > 0);
        secs.max(1)
    }

    /// The wall-clock bound: twice the CPU bound.
    fn wall(&self) -> Duration {
        Duration::from_secs(self.cpu_seconds().saturating_mul(2))
    }

    /// Checks the limits make sense.
    ///
    /// # Errors
    /// A message naming the flag and the accepted range.
    pub fn validate(&self) -> Result<(), String> {
        if self.memory < MIN_COMPILE_MEMORY {
            return Err(format!(
                "--compile-memory {} is below the minimum of {}",
                format_bytes(self.memory),
                format_bytes(MIN_COMPILE_MEMORY)
            ));
        }
        if self.time.is_zero() {
            return Err("--compile-timeout must be at least 1s".into());
        }
        if self.parallel == 0 {
            return Err("--compile-jobs must be at least 1".into());
        }
        Ok(())
    }
}

/// What one out-of-process compile came to.
pub(super) enum Outcome {
    /// The serialized component.
    Compiled(Vec<u8>),
    /// Refused: invalid, or over a bound.
    Refused(PluginError),
    /// Cancelled (the file changed or went, or the host is stopping).
    Cancelled,
}

/// Runs compiles in child processes, a bounded number at once.
#[derive(Debug)]
pub struct Compiler {
    program: PathBuf,
    limits: CompileLimits,
    slots: Arc<tokio::sync::Semaphore>,
}

impl Compiler {
    /// A compiler that re-runs this executable. On Linux that is
    /// `/proc/self/exe`, the very file this process runs, even if an
    /// upgrade has since replaced the path (the child's output must come
    /// from the same wasmtime as the parent).
    pub fn new(limits: CompileLimits) -> Self {
        let program = if cfg!(target_os = "linux") {
            PathBuf::from("/proc/self/exe")
        } else {
            std::env::current_exe().unwrap_or_else(|_| PathBuf::from("wasmcron"))
        };
        Self {
            program,
            limits,
            slots: Arc::new(tokio::sync::Semaphore::new(limits.parallel.max(1))),
        }
    }

    /// The limits it applies.
    pub fn limits(&self) -> CompileLimits {
        self.limits
    }

    /// Loads the plugin file at `path` (named by its file stem) with its
    /// compile in a child process under these bounds, as the plugins
    /// folder loads files: for `wasmcron plugin check` and `plugin run`,
    /// which an operator points at files nobody has vetted yet.
    ///
    /// # Errors
    /// See [`PluginError`]: unreadable, too large, not a component, over a
    /// compile bound, or not one of our worlds.
    pub async fn load_file(&self, runtime: &Runtime, path: &Path) -> Result<Plugin, PluginError> {
        let (name, bytes) = super::read_file(path)?;
        self.load_bytes(runtime, name, bytes).await
    }

    /// As [`Self::load_file`], through `cache`: a file compiled before (by
    /// this or a host with the same engine) is read from it, one compiled
    /// now is stored in it. Only files that compile are stored, so a file
    /// over a bound is refused again every time.
    ///
    /// # Errors
    /// As [`Self::load_file`].
    pub async fn load_file_cached(
        &self,
        runtime: &Runtime,
        path: &Path,
        cache: &super::CompileCache,
    ) -> Result<Plugin, PluginError> {
        let (name, bytes) = super::read_file(path)?;
        let facts = Plugin::inspect(&bytes)?;
        let hash = ContentHash::of(&bytes);
        if let super::cache::Lookup::Hit(component) = cache.lookup(runtime.engine(), &hash) {
            return Plugin::from_component(
                runtime,
                name,
                hash,
                facts,
                &component,
                CompileSource::Cache,
            );
        }
        match self.compile(bytes.into(), &CancellationToken::new()).await {
            Outcome::Compiled(payload) => {
                let plugin = Plugin::from_compiler_output(
                    runtime,
                    name,
                    hash.clone(),
                    facts,
                    &payload,
                    CompileSource::Compiled,
                )?;
                // A cache that cannot be written costs the next run a
                // compile, nothing more (`store` logs why).
                let _ = cache.store(&hash, &payload);
                Ok(plugin)
            }
            Outcome::Refused(err) => Err(err),
            Outcome::Cancelled => Err(PluginError::CompilerFailed {
                detail: "the compile was cancelled".into(),
            }),
        }
    }

    /// As [`Self::load_file`], for a plugin's bytes (an upload through
    /// `PUT /plugins/{name}`, checked before it reaches any host).
    ///
    /// # Errors
    /// As [`Self::load_file`].
    pub async fn load_bytes(
        &self,
        runtime: &Runtime,
        name: String,
        bytes: Vec<u8>,
    ) -> Result<Plugin, PluginError> {
        let facts = Plugin::inspect(&bytes)?;
        let hash = ContentHash::of(&bytes);
        match self.compile(bytes.into(), &CancellationToken::new()).await {
            Outcome::Compiled(payload) => Plugin::from_compiler_output(
                runtime,
                name,
                hash,
                facts,
                &payload,
                CompileSource::Compiled,
            ),
            Outcome::Refused(err) => Err(err),
            Outcome::Cancelled => Err(PluginError::CompilerFailed {
                detail: "the compile was cancelled".into(),
            }),
        }
    }

    /// Compiles `bytes` (already size- and header-checked) in a child
    /// process, waiting for a free slot first. `cancel` stops the wait or
    /// kills the child.
    pub(super) async fn compile(&self, bytes: Arc<[u8]>, cancel: &CancellationToken) -> Outcome {
        let _slot = tokio::select! {
            () = cancel.cancelled() => return Outcome::Cancelled,
            slot = self.slots.acquire() => match slot {
                Ok(slot) => slot,
                Err(_) => return Outcome::Cancelled,
            },
        };
        match self.run_child(bytes, cancel).await {
            Ok(outcome) => outcome,
            Err(e) => Outcome::Refused(PluginError::CompilerFailed {
                detail: format!("cannot run the compiler process: {e}"),
            }),
        }
    }

    async fn run_child(
        &self,
        bytes: Arc<[u8]>,
        cancel: &CancellationToken,
    ) -> std::io::Result<Outcome> {
        let child = std::process::Command::new(&self.program)
            .arg(SUBCOMMAND)
            .arg("--memory")
            .arg(self.limits.memory.to_string())
            .arg("--cpu-seconds")
            .arg(self.limits.cpu_seconds().to_string())
            // Only errors from the child's own logging, never noise.
            .env("RUST_LOG", "error")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        let mut child = KillOnDrop(child);
        let (Some(mut stdin), Some(stdout), Some(stderr)) = (
            child.0.stdin.take(),
            child.0.stdout.take(),
            child.0.stderr.take(),
        ) else {
            return Err(std::io::Error::other("the child's pipes are missing"));
        };
        // Blocking pipe I/O on the blocking pool. A child that dies early
        // closes its stdin; that is reported by its exit status, not as a
        // write error.
        tokio::task::spawn_blocking(move || {
            let _ = stdin.write_all(&bytes);
        });
        // Its output cannot be larger than the memory it may hold.
        let cap = self.limits.memory;
        let out = tokio::task::spawn_blocking(move || {
            let mut buf = Vec::new();
            let _ = stdout.take(cap).read_to_end(&mut buf);
            buf
        });
        let err = tokio::task::spawn_blocking(move || {
            let mut buf = Vec::new();
            let _ = stderr.take(1 << 20).read_to_end(&mut buf);
            buf
        });
        let deadline = tokio::time::Instant::now() + self.limits.wall();
        // std's Child has no async wait: poll it. A compile takes tens of
        // milliseconds at least, so 10 ms polls cost nothing.
        let status = loop {
            if let Some(status) = child.0.try_wait()? {
                break status;
            }
            tokio::select! {
                () = cancel.cancelled() => return Ok(Outcome::Cancelled),
                () = tokio::time::sleep_until(deadline) => {
                    return Ok(Outcome::Refused(PluginError::CompileTimeout {
                        limit: self.limits.time,
                    }));
                }
                () = tokio::time::sleep(Duration::from_millis(10)) => {}
            }
        };
        let stdout = out.await.unwrap_or_default();
        let stderr = err.await.unwrap_or_default();
        Ok(self.judge(status, stdout, &stderr))
    }

    /// Reads the child's exit status and output.
    fn judge(&self, status: std::process::ExitStatus, stdout: Vec<u8>, stderr: &[u8]) -> Outcome {
        let stderr = tail(stderr);
        let memory = PluginError::CompileMemory {
            limit: self.limits.memory,
        };
        match status.code() {
            Some(0) => return Outcome::Compiled(stdout),
            Some(c) if c == i32::from(EXIT_INVALID) => {
                let detail = String::from_utf8_lossy(&stdout).into_owned();
                return Outcome::Refused(super::classify_compile_error(detail));
            }
            Some(c) if c == i32::from(EXIT_NO_MEMORY) => return Outcome::Refused(memory),
            _ => {}
        }
        #[cfg(unix)]
        {
            use std::os::unix::process::ExitStatusExt as _;
            const SIGABRT: i32 = 6;
            const SIGKILL: i32 = 9;
            const SIGXCPU: i32 = 24;
            match status.signal() {
                Some(SIGXCPU) => {
                    return Outcome::Refused(PluginError::CompileTimeout {
                        limit: self.limits.time,
                    });
                }
                // Rust's allocation failure handler prints this and aborts.
                Some(SIGABRT) if stderr.contains("memory allocation of") => {
                    return Outcome::Refused(memory);
                }
                Some(SIGKILL) => {
                    return Outcome::Refused(PluginError::CompilerFailed {
                        detail: format!(
                            "the compiler process was killed (SIGKILL): it passed its CPU \
                             limit ({}, --compile-timeout) or the system ran out of memory",
                            crate::duration::format(self.limits.time)
                        ),
                    });
                }
                _ => {}
            }
        }
        Outcome::Refused(PluginError::CompilerFailed {
            detail: format!("the compiler process ended with {status}: {stderr}"),
        })
    }
}

/// Kills (and reaps) the child when dropped: on cancel, on the wall-clock
/// bound, and if the task running the compile is dropped.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

fn tail(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let text = text.trim();
    let start = text.len().saturating_sub(STDERR_TAIL);
    let start = (start..=text.len())
        .find(|&i| text.is_char_boundary(i))
        .unwrap_or(text.len());
    text[start..].to_owned()
}

/// The compiler process: `wasmcron __compile --memory BYTES --cpu-seconds N`.
/// Limits itself first, then reads the plugin from stdin and writes the
/// serialized component to stdout. Exit codes: 0 compiled, 3 invalid (the
/// reason on stdout), 4 out of memory, 5 could not set up.
pub fn child_main(memory: u64, cpu_seconds: u64) -> ExitCode {
    if let Err(e) = limit_self(memory, cpu_seconds) {
        eprintln!("wasmcron compiler: cannot limit itself: {e}");
        return ExitCode::from(EXIT_SETUP);
    }
    let mut bytes = Vec::new();
    if let Err(e) = std::io::stdin()
        .lock()
        .take(MAX_PLUGIN_BYTES + 1)
        .read_to_end(&mut bytes)
    {
        eprintln!("wasmcron compiler: cannot read the plugin: {e}");
        // Under a small address-space limit even buffering the input can
        // fail: that is the memory bound at work, not a setup fault.
        return ExitCode::from(if e.kind() == std::io::ErrorKind::OutOfMemory {
            EXIT_NO_MEMORY
        } else {
            EXIT_SETUP
        });
    }
    let engine = match crate::runtime::engine::compiler() {
        Ok(engine) => engine,
        Err(e) => {
            let detail = format!("{e:#}");
            eprintln!("wasmcron compiler: cannot build the engine: {detail}");
            return ExitCode::from(if out_of_memory(&detail) {
                EXIT_NO_MEMORY
            } else {
                EXIT_SETUP
            });
        }
    };
    let result = wasmtime::component::Component::new(&engine, &bytes)
        .and_then(|component| component.serialize());
    let mut stdout = std::io::stdout().lock();
    match result {
        Ok(payload) => match stdout.write_all(&payload).and_then(|()| stdout.flush()) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("wasmcron compiler: cannot write the result: {e}");
                ExitCode::from(EXIT_SETUP)
            }
        },
        Err(e) => {
            let detail = format!("{e:#}");
            if out_of_memory(&detail) {
                eprintln!("wasmcron compiler: {detail}");
                return ExitCode::from(EXIT_NO_MEMORY);
            }
            let _ = stdout.write_all(detail.as_bytes());
            let _ = stdout.flush();
            ExitCode::from(EXIT_INVALID)
        }
    }
}

/// Whether a compile error is the address-space limit at work (an mmap
/// wasmtime asked for was refused) rather than something about the wasm.
fn out_of_memory(detail: &str) -> bool {
    let d = detail.to_ascii_lowercase();
    d.contains("cannot allocate memory") || d.contains("out of memory")
}

/// Sets the child's limits: `RLIMIT_AS` and `RLIMIT_CPU` (soft at the
/// bound, which sends SIGXCPU; hard a second later, SIGKILL), and on Linux
/// dies with its parent, so a host killed mid-compile leaves no compiler
/// behind.
#[expect(
    unsafe_code,
    reason = "setrlimit and prctl through libc; each call's contract is met as noted"
)]
fn limit_self(memory: u64, cpu_seconds: u64) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        #[cfg(target_os = "linux")]
        {
            // SAFETY: PR_SET_PDEATHSIG takes a signal number (read by the
            // kernel as an unsigned long, so passed as one) and touches no
            // memory of ours.
            let signal = libc::c_ulong::try_from(libc::SIGKILL).unwrap_or(9);
            let rc = unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, signal) };
            if rc != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // The parent may have gone before the signal was armed.
            // SAFETY: getppid has no preconditions.
            if unsafe { libc::getppid() } == 1 {
                return Err(std::io::Error::other("the host is gone"));
            }
        }
        let set = |resource, soft: u64, hard: u64| -> std::io::Result<()> {
            let mut old = libc::rlimit {
                rlim_cur: 0,
                rlim_max: 0,
            };
            // SAFETY: `old` is a valid, writable rlimit.
            if unsafe { libc::getrlimit(resource, &raw mut old) } != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // Never above a hard limit already in place (we could not
            // raise it anyway).
            let cap = old.rlim_max;
            let new = libc::rlimit {
                rlim_cur: soft.min(cap),
                rlim_max: hard.min(cap),
            };
            // SAFETY: `new` is a valid rlimit, read only.
            if unsafe { libc::setrlimit(resource, &raw const new) } != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        };
        set(libc::RLIMIT_AS, memory, memory)?;
        set(libc::RLIMIT_CPU, cpu_seconds, cpu_seconds.saturating_add(1))?;
    }
    #[cfg(not(unix))]
    {
        let _ = (memory, cpu_seconds);
    }
    Ok(())
}

/// Parses a size: a whole number of bytes, or with a unit `KiB`, `MiB`,
/// `GiB` (also `K`, `M`, `G`; all binary), e.g. `2GiB`, `512MiB`.
///
/// # Errors
/// A message saying what is wrong and what to write.
pub fn parse_bytes(input: &str) -> Result<u64, String> {
    let s = input.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (number, unit) = s.split_at(split);
    let hint = "write e.g. `2GiB` or `512MiB`";
    let n: u64 = number
        .parse()
        .map_err(|_| format!("`{input}` is not a size; {hint}"))?;
    let shift = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        other => return Err(format!("unknown unit `{other}` in `{input}`; {hint}")),
    };
    n.checked_mul(1 << shift)
        .ok_or_else(|| format!("size `{input}` is too large"))
}

/// Formats a size for people: `2 GiB`, `512 MiB`, `1536 KiB`, `100 bytes`.
pub fn format_bytes(n: u64) -> String {
    for (shift, unit) in [(30, "GiB"), (20, "MiB"), (10, "KiB")] {
        if n >= 1 << shift && n.is_multiple_of(1 << shift) {
            return format!("{} {unit}", n >> shift);
        }
    }
    if n >= 1 << 20 {
        return format!("{:.1} MiB", n as f64 / f64::from(1 << 20));
    }
    format!("{n} bytes")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_and_format() {
        assert_eq!(parse_bytes("2GiB"), Ok(2 << 30));
        assert_eq!(parse_bytes("512MiB"), Ok(512 << 20));
        assert_eq!(parse_bytes("64m"), Ok(64 << 20));
        assert_eq!(parse_bytes("4096"), Ok(4096));
        assert!(parse_bytes("lots").unwrap_err().contains("2GiB"));
        assert!(parse_bytes("3TiB").unwrap_err().contains("unknown unit"));
        assert!(parse_bytes("99999999999999GiB").is_err());
        assert_eq!(format_bytes(2 << 30), "2 GiB");
        assert_eq!(format_bytes(1536 << 10), "1536 KiB");
        assert_eq!(format_bytes(100), "100 bytes");
    }

    #[test]
    fn limits_are_checked_and_cpu_rounds_up() {
        let ok = CompileLimits::default();
        assert!(ok.validate().is_ok());
        assert!(ok.parallel >= 2);
        let small = CompileLimits {
            memory: 1 << 20,
            ..ok
        };
        assert!(small.validate().unwrap_err().contains("--compile-memory"));
        let frac = CompileLimits {
            time: Duration::from_millis(1500),
            ..ok
        };
        assert_eq!(frac.cpu_seconds(), 2);
        assert_eq!(frac.wall(), Duration::from_secs(4));
    }

    #[test]
    fn the_compiler_engine_matches_the_runtime_engine() {
        use std::hash::{Hash, Hasher};
        #[derive(Default)]
        struct Bytes(Vec<u8>);
        impl Hasher for Bytes {
            fn finish(&self) -> u64 {
                0
            }
            fn write(&mut self, b: &[u8]) {
                self.0.extend_from_slice(b);
            }
        }
        let key = |engine: &wasmtime::Engine| {
            let mut h = Bytes::default();
            engine.precompile_compatibility_hash().hash(&mut h);
            h.0
        };
        let compiler = crate::runtime::engine::compiler().expect("compiler engine");
        for pooling in [true, false] {
            let (runtime, _) = crate::runtime::engine::build(&crate::runtime::EngineOptions {
                pooling,
                max_concurrent_runs: 4,
                ..Default::default()
            })
            .expect("runtime engine");
            assert_eq!(key(&compiler), key(&runtime), "pooling: {pooling}");
        }
    }
}

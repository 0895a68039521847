//! The `wasmcron` binary: parse, set up logging, hand over to the library.

use clap::Parser;
use std::io::IsTerminal as _;
use std::process::ExitCode;

/// The binary allocates with jemalloc. Under glibc's malloc, a burst of
/// runs spent about a quarter of its CPU in malloc, free and the arena
/// locks the tokio workers contend on (a run's records are made on one
/// worker and freed on another); with jemalloc's per-thread caches the
/// p99 lateness of 10,000 aligned jobs on SQLite fell by about a third
/// (docs/BENCHMARKS.md, "Fourth round"). Set here, not in the library:
/// a program embedding wasmcron keeps its own allocator.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = wasmcron::cli::Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colours only for a person at a terminal, never into log files.
        .with_ansi(std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none());
    if cli.log_format == "json" {
        logs.json().init();
    } else {
        logs.init();
    }
    match wasmcron::cli::run(cli).await {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

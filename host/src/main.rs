//! The `wasmcron` binary: parse, set up logging, hand over to the library.

use clap::Parser;
use std::io::IsTerminal as _;
use std::process::ExitCode;

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

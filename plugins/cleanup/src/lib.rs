//! `cleanup`: deletes files older than N days in a granted directory.
//!
//! Args:
//! - `dir`: the guest path to clean (default `/data`); the job must grant
//!   it with `capabilities.dirs = [{ host = "...", guest = "/data", mode = "rw" }]`;
//! - `older_than_days`: files modified longer ago than this are deleted
//!   (default 7);
//! - `recursive`: descend into subdirectories (default false);
//! - `dry_run`: report what would be deleted, delete nothing.
//!
//! Output: `{"deleted": [...], "kept": N, "bytes_freed": N, "errors": [...]}`.
//! A directory the job was not granted is a permanent error (retrying
//! cannot help); a file that cannot be deleted is reported, not fatal.

use serde::Deserialize;
use serde_json::json;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};
use wasmcron_guest::{Context, JobError, job, log};

#[derive(Deserialize)]
#[serde(default, deny_unknown_fields)]
struct Args {
    dir: String,
    older_than_days: u64,
    recursive: bool,
    dry_run: bool,
}

impl Default for Args {
    fn default() -> Self {
        Self {
            dir: "/data".into(),
            older_than_days: 7,
            recursive: false,
            dry_run: false,
        }
    }
}

#[derive(Default)]
struct Report {
    deleted: Vec<String>,
    kept: u64,
    bytes_freed: u64,
    errors: Vec<String>,
}

#[job]
fn cleanup(ctx: Context) -> Result<String, JobError> {
    let args: Args = ctx.args()?;
    let age = Duration::from_secs(args.older_than_days.saturating_mul(86_400));
    let cutoff = SystemTime::now()
        .checked_sub(age)
        .unwrap_or(SystemTime::UNIX_EPOCH);
    let root = PathBuf::from(&args.dir);
    if let Err(e) = std::fs::read_dir(&root) {
        return Err(JobError::permanent(format!(
            "cannot open {}: {e}; grant it with capabilities.dirs (guest = \"{}\", mode = \"rw\")",
            args.dir, args.dir
        )));
    }
    let mut report = Report::default();
    walk(&root, cutoff, &args, &mut report);
    log::info!(
        "{} {} file(s) older than {} day(s) in {}, kept {}",
        if args.dry_run {
            "would delete"
        } else {
            "deleted"
        },
        report.deleted.len(),
        args.older_than_days,
        args.dir,
        report.kept
    );
    Ok(json!({
        "deleted": report.deleted,
        "kept": report.kept,
        "bytes_freed": report.bytes_freed,
        "errors": report.errors,
        "dry_run": args.dry_run,
    })
    .to_string())
}

fn walk(dir: &Path, cutoff: SystemTime, args: &Args, report: &mut Report) {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) => {
            report.errors.push(format!("{}: {e}", dir.display()));
            return;
        }
    };
    for entry in entries {
        let entry = match entry {
            Ok(entry) => entry,
            Err(e) => {
                report.errors.push(format!("{}: {e}", dir.display()));
                continue;
            }
        };
        let path = entry.path();
        // symlink_metadata: a link is judged (and removed) as a link, never
        // followed; the host refuses links leading out of the grant anyway.
        let meta = match std::fs::symlink_metadata(&path) {
            Ok(meta) => meta,
            Err(e) => {
                report.errors.push(format!("{}: {e}", path.display()));
                continue;
            }
        };
        if meta.is_dir() {
            if args.recursive {
                walk(&path, cutoff, args, report);
            } else {
                report.kept += 1;
            }
            continue;
        }
        let old = meta.modified().map(|m| m < cutoff).unwrap_or(false);
        if !old {
            report.kept += 1;
            continue;
        }
        if !args.dry_run
            && let Err(e) = std::fs::remove_file(&path)
        {
            report.errors.push(format!("{}: {e}", path.display()));
            continue;
        }
        report.bytes_freed += meta.len();
        report.deleted.push(path.display().to_string());
    }
}

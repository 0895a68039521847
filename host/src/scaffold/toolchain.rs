//! Finding the toolchain that turns a Python or JavaScript project into a
//! component (componentize-py, componentize-js), and saying exactly how to
//! install it when it is not there.
//!
//! The search order is the one `cargo xtask` uses for the repository's own
//! `hello-py` and `hello-js`, with the project's folder in place of the
//! repository's root: the tool's environment variable (an explicit choice,
//! so a path there that does not run is an error, not a reason to look
//! elsewhere), the project's own install (`.venv/`, `node_modules/`), where
//! the repository's `.ci/polyglot` installs it (`~/.cache/wasmcron-polyglot`,
//! or `$WASMCRON_POLYGLOT_DIR`), then the `PATH`.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

/// One toolchain: where it is looked for and how it is installed.
#[derive(Debug)]
pub(super) struct Tool {
    /// Its executable's name, as on the `PATH`.
    pub name: &'static str,
    /// The release projects are made for and tested with.
    pub pinned: &'static str,
    /// The environment variable that names the executable.
    pub env: &'static str,
    /// The project's own install, relative to its folder.
    pub local: &'static str,
    /// Where `.ci/polyglot` installs it, relative to its folder.
    pub cached: &'static str,
    /// The command that installs it, run in the project's folder.
    pub install: &'static str,
    /// What the install needs first, for the message.
    pub needs: &'static str,
    /// What it runs on, when `--version` fails (e.g. Node.js).
    pub runs_on: Option<&'static str>,
}

/// A toolchain found on this machine.
#[derive(Debug, Clone)]
pub(super) struct Found {
    /// The executable.
    pub path: PathBuf,
    /// The last word its `--version` printed (`0.25.1`).
    pub version: String,
}

/// Why no toolchain can be used. Each message ends with the command that
/// installs it.
#[derive(Debug, thiserror::Error)]
pub enum ToolchainError {
    /// It is in none of the places looked at.
    #[error(
        "{tool} not found (looked at ${env}, {looked} and the PATH); install it: in {dir}, run \
         `{install}` ({needs})"
    )]
    NotFound {
        /// The executable's name.
        tool: &'static str,
        /// The variable that would name it.
        env: &'static str,
        /// The places looked at, besides the variable and the `PATH`.
        looked: String,
        /// The project's folder.
        dir: String,
        /// The install command.
        install: &'static str,
        /// What the install needs.
        needs: &'static str,
    },
    /// The environment variable names something that does not run.
    #[error(
        "{env}={path} does not run: {detail}; unset it, or install the toolchain: in {dir}, \
         run `{install}` ({needs})"
    )]
    BadOverride {
        /// The variable.
        env: &'static str,
        /// What it names.
        path: String,
        /// Why it did not run.
        detail: String,
        /// The project's folder.
        dir: String,
        /// The install command.
        install: &'static str,
        /// What the install needs.
        needs: &'static str,
    },
}

/// Where to look: what the environment says, gathered once so the search
/// itself is a pure function of it (and testable without touching the
/// process's environment).
#[derive(Debug)]
pub(super) struct Search {
    /// The tool's environment variable, if set.
    pub explicit: Option<PathBuf>,
    /// The project's folder.
    pub project: PathBuf,
    /// `.ci/polyglot`'s folder.
    pub cache: Option<PathBuf>,
    /// The `PATH`.
    pub path: Option<OsString>,
}

impl Search {
    /// The search for `tool` in `project`, from this process's environment.
    pub fn from_env(tool: &Tool, project: &Path) -> Self {
        Self {
            // Empty is unset, as a shell's `VAR= cmd` means.
            explicit: std::env::var_os(tool.env)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from),
            project: project.to_path_buf(),
            cache: std::env::var_os("WASMCRON_POLYGLOT_DIR")
                .map(PathBuf::from)
                .or_else(|| {
                    std::env::var_os("HOME")
                        .map(|h| PathBuf::from(h).join(".cache/wasmcron-polyglot"))
                }),
            path: std::env::var_os("PATH"),
        }
    }
}

/// Finds `tool` (see the module's documentation for where).
///
/// # Errors
/// [`ToolchainError`], saying where it looked and how to install it.
pub(super) fn find(tool: &Tool, search: &Search) -> Result<Found, ToolchainError> {
    let dir = search.project.display().to_string();
    if let Some(path) = &search.explicit {
        return version(tool, path).map_err(|detail| ToolchainError::BadOverride {
            env: tool.env,
            path: path.display().to_string(),
            detail,
            dir,
            install: tool.install,
            needs: tool.needs,
        });
    }
    let mut candidates = vec![search.project.join(tool.local)];
    if let Some(cache) = &search.cache {
        candidates.push(cache.join(tool.cached));
    }
    let looked: Vec<String> = candidates.iter().map(|p| p.display().to_string()).collect();
    if let Some(path) = &search.path {
        candidates.extend(std::env::split_paths(path).map(|d| d.join(tool.name)));
    }
    for path in candidates.iter().filter(|p| p.is_file()) {
        if let Ok(found) = version(tool, path) {
            return Ok(found);
        }
    }
    Err(ToolchainError::NotFound {
        tool: tool.name,
        env: tool.env,
        looked: looked.join(", "),
        dir,
        install: tool.install,
        needs: tool.needs,
    })
}

/// Runs `path --version` (`componentize-py 0.25.1`, or `0.23.0`).
fn version(tool: &Tool, path: &Path) -> Result<Found, String> {
    let out = Command::new(path)
        .arg("--version")
        .output()
        .map_err(|e| format!("cannot run {}: {e}", path.display()))?;
    if !out.status.success() {
        let hint = tool
            .runs_on
            .map(|r| format!(" (is {r} installed?)"))
            .unwrap_or_default();
        return Err(format!(
            "`{} --version` failed ({}){hint}: {}",
            path.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    Ok(Found {
        path: path.to_path_buf(),
        version: text
            .split_whitespace()
            .last()
            .unwrap_or_default()
            .to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scaffold::{js, python};

    fn nowhere(project: &Path, explicit: Option<PathBuf>) -> Search {
        Search {
            explicit,
            project: project.to_path_buf(),
            cache: Some(project.join("no-cache")),
            path: Some(OsString::new()),
        }
    }

    #[test]
    fn a_missing_toolchain_names_its_install_command() {
        let dir = tempfile::tempdir().expect("tempdir");
        let err = find(&python::TOOL, &nowhere(dir.path(), None))
            .expect_err("nothing is installed there");
        let text = err.to_string();
        assert!(
            text.contains("python3 -m venv .venv && .venv/bin/pip install componentize-py==0.25.1"),
            "{text}"
        );
        assert!(text.contains(".venv/bin/componentize-py"), "{text}");
        assert!(text.contains("$WASMCRON_COMPONENTIZE_PY"), "{text}");

        let text = find(&js::TOOL, &nowhere(dir.path(), None))
            .expect_err("nothing is installed there")
            .to_string();
        assert!(text.contains("run `npm install`"), "{text}");
        assert!(text.contains("node_modules/.bin/componentize-js"), "{text}");
    }

    #[test]
    fn a_variable_that_names_nothing_is_an_error_not_a_fallback() {
        let dir = tempfile::tempdir().expect("tempdir");
        let bogus = dir.path().join("not-there");
        let err = find(&python::TOOL, &nowhere(dir.path(), Some(bogus)))
            .expect_err("the variable names nothing");
        assert!(matches!(err, ToolchainError::BadOverride { .. }), "{err}");
        let text = err.to_string();
        assert!(
            text.contains("WASMCRON_COMPONENTIZE_PY=") && text.contains("pip install"),
            "{text}"
        );
    }
}

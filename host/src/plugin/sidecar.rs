//! `NAME.toml` beside `NAME.wasm`: the plugin's default capabilities and
//! jobs, so dropping two files schedules a job without an API call.
//!
//! ```toml
//! # cleanup.toml
//! [capabilities]                       # for every job of this plugin that sets none
//! dirs = [{ host = "/var/tmp/reports", guest = "/data", mode = "rw" }]
//!
//! [[jobs]]                             # `plugin` is implied; `id` defaults to the plugin name
//! trigger = { type = "cron", expr = "0 3 * * *" }
//! args = { older_than_days = 7 }
//! ```
//!
//! Relative `dirs[].host` paths are taken from the plugins folder.

use crate::job::{Capabilities, JobSpec};
use crate::runtime::grants::Grants;
use std::path::Path;
use std::sync::Arc;

/// A parsed, checked sidecar.
#[derive(Debug, Clone, PartialEq)]
pub struct Sidecar {
    /// Default capabilities for the plugin's jobs (validated).
    pub grants: Option<Arc<Grants>>,
    /// Jobs to upsert, `plugin` filled in.
    pub jobs: Vec<JobSpec>,
}

/// Why a sidecar was refused. The plugin still loads, without it.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{file}: {problem}")]
pub struct SidecarError {
    /// The sidecar's file name.
    pub file: String,
    /// What is wrong.
    pub problem: String,
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    #[serde(default)]
    capabilities: Option<Capabilities>,
    #[serde(default)]
    jobs: Vec<toml::Table>,
}

impl Sidecar {
    /// Parses the sidecar of plugin `name` from `text`; `folder` resolves
    /// relative directory grants.
    ///
    /// # Errors
    /// Bad TOML (with position), an unknown key, a job naming another
    /// plugin, a bad capability.
    pub fn parse(name: &str, text: &str, folder: &Path) -> Result<Self, SidecarError> {
        let bad = |problem: String| SidecarError {
            file: format!("{name}.toml"),
            problem,
        };
        let raw: Raw = toml::from_str(text).map_err(|e| bad(e.to_string()))?;
        let grants = match raw.capabilities {
            Some(mut caps) => {
                caps.resolve_relative(folder);
                let grants = caps
                    .validate()
                    .map_err(|e| bad(format!("{}: {}", e.field, e.problem)))?;
                Some(Arc::new(grants))
            }
            None => None,
        };
        let count = raw.jobs.len();
        let mut jobs = Vec::with_capacity(count);
        for (i, mut table) in raw.jobs.into_iter().enumerate() {
            match table.get("plugin") {
                Some(toml::Value::String(p)) if p == name => {}
                Some(other) => {
                    return Err(bad(format!(
                        "jobs[{i}].plugin: {other} is not this plugin; a sidecar's jobs run \
                         '{name}' (leave `plugin` out)"
                    )));
                }
                None => {
                    table.insert("plugin".into(), name.into());
                }
            }
            if !table.contains_key("id") {
                if count > 1 {
                    return Err(bad(format!(
                        "jobs[{i}].id: required when a sidecar declares more than one job"
                    )));
                }
                table.insert("id".into(), name.into());
            }
            let mut spec: JobSpec = table
                .try_into()
                .map_err(|e: toml::de::Error| bad(format!("jobs[{i}]: {}", e.message())))?;
            if let Some(caps) = spec.capabilities.as_deref_mut() {
                caps.resolve_relative(folder);
            }
            jobs.push(spec);
        }
        Ok(Self { grants, jobs })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jobs_get_the_plugin_and_a_default_id() {
        let s = Sidecar::parse(
            "cleanup",
            r#"
            [capabilities]
            dirs = [{ host = "reports", guest = "/data", mode = "rw" }]

            [[jobs]]
            trigger = { type = "interval", every = "1h" }
            args = { older_than_days = 7 }
            "#,
            Path::new("/srv/plugins"),
        )
        .unwrap();
        assert_eq!(s.jobs.len(), 1);
        assert_eq!(s.jobs[0].id, "cleanup");
        assert_eq!(s.jobs[0].plugin, "cleanup");
        let grants = s.grants.unwrap();
        assert_eq!(grants.dirs[0].host, Path::new("/srv/plugins/reports"));
        assert!(grants.dirs[0].writable);
    }

    /// `--plugins wasmcron-plugins` (relative, the default): a relative
    /// grant was joined to it and then refused as not absolute, so the
    /// example `cleanup` sidecar only loaded under `cargo xtask run`.
    #[test]
    fn a_relative_grant_in_a_relative_plugins_folder_is_made_absolute() {
        let s = Sidecar::parse(
            "cleanup",
            "[capabilities]\ndirs = [{ host = \"scratch\", guest = \"/scratch\", mode = \"rw\" }]",
            Path::new("wasmcron-plugins"),
        )
        .expect("a relative grant in a relative folder is accepted");
        let host = &s.grants.expect("grants").dirs[0].host;
        let cwd = std::env::current_dir().expect("cwd");
        assert_eq!(*host, cwd.join("wasmcron-plugins").join("scratch"));
    }

    #[test]
    fn problems_name_the_file_and_field() {
        for (text, says) in [
            (
                "[[jobs]]\nplugin = \"other\"\ntrigger = { type = \"interval\", every = \"1h\" }",
                "jobs[0].plugin",
            ),
            (
                "[[jobs]]\ntrigger = { type = \"interval\", every = \"1h\" }\n[[jobs]]\ntrigger = { type = \"interval\", every = \"2h\" }",
                "jobs[0].id",
            ),
            (
                "[capabilities]\nhttp = [\"example.com\"]",
                "capabilities.http[0]",
            ),
            ("[capabilities]\nnetwork = true", "unknown field"),
            ("jobs = 3", "invalid type"),
            ("[[jobs]]\nid = \"x\"", "trigger"),
        ] {
            let e = Sidecar::parse("p", text, Path::new("/")).expect_err(text);
            assert_eq!(e.file, "p.toml");
            assert!(e.problem.contains(says), "{text}: {e}");
        }
    }
}

//! Capabilities as written: what a job's guest may reach.
//!
//! ```toml
//! [jobs.capabilities]
//! dirs = [{ host = "/var/reports", guest = "/data", mode = "rw" }]
//! env = ["REPORT_TITLE"]
//! http = ["https://api.example.com", "http://127.0.0.1:*"]
//! secrets = ["PING_TOKEN"]   # value read from WASMCRON_SECRET_PING_TOKEN
//! ```
//!
//! Unset, a job gets its plugin's sidecar defaults, and without those
//! nothing at all.

use crate::runtime::grants::{self, Grants, HttpRule};
use serde::{Deserialize, Serialize};
use std::path::{Component, Path, PathBuf};

/// Capabilities granted to a job's runs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(
    deny_unknown_fields,
    expecting = "capabilities: a table of `dirs`, `env`, `http` and `secrets`"
)]
pub struct Capabilities {
    /// Host directories the guest sees, read-only unless `mode = "rw"`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dirs: Vec<DirSpec>,
    /// Host environment variables passed through, by name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<String>,
    /// Hosts outbound HTTP may reach: `scheme://host[:port]` patterns.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub http: Vec<String>,
    /// Secrets by name: the guest sees env var `NAME`, whose value the host
    /// reads from `WASMCRON_SECRET_NAME`; the value is scrubbed from logs
    /// and outputs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<String>,
}

/// A directory grant as written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(
    deny_unknown_fields,
    expecting = "a directory grant: a table, e.g. { host = \"/srv/data\", guest = \"/data\" }"
)]
pub struct DirSpec {
    /// The host directory (absolute; a sidecar may give it relative to the
    /// plugins folder).
    #[schema(value_type = String)]
    pub host: PathBuf,
    /// Where the guest sees it, e.g. `/data`.
    pub guest: String,
    /// `ro` (the default) or `rw`.
    #[serde(default)]
    pub mode: DirMode,
}

/// Read-only or read-write.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum DirMode {
    /// Read files and list directories.
    #[default]
    Ro,
    /// Also create, write, rename and delete.
    Rw,
}

/// A capability refused: the field path and the problem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CapabilityError {
    /// E.g. `capabilities.dirs[0].guest`.
    pub field: String,
    /// What is wrong and how to fix it.
    pub problem: String,
}

impl Capabilities {
    /// Resolves relative host paths against `base` (a sidecar's folder),
    /// made absolute from the working directory when `base` is itself
    /// relative (`--plugins wasmcron-plugins`, the default): a grant must
    /// name an absolute path ([`Self::validate`]). Nothing is read from the
    /// file system; should the working directory be unknown, the path is
    /// left relative and `validate` names it.
    pub fn resolve_relative(&mut self, base: &Path) {
        for dir in &mut self.dirs {
            if dir.host.is_relative() {
                let joined = base.join(&dir.host);
                dir.host = std::path::absolute(&joined).unwrap_or(joined);
            }
        }
    }

    /// Checks every grant.
    ///
    /// # Errors
    /// The first bad entry, by field path.
    pub fn validate(&self) -> Result<Grants, CapabilityError> {
        let err = |field: String, problem: String| CapabilityError { field, problem };
        let mut dirs = Vec::with_capacity(self.dirs.len());
        for (i, d) in self.dirs.iter().enumerate() {
            if !d.host.is_absolute() {
                return Err(err(
                    format!("capabilities.dirs[{i}].host"),
                    format!("'{}' must be an absolute path", d.host.display()),
                ));
            }
            if d.host.components().any(|c| c == Component::ParentDir) {
                return Err(err(
                    format!("capabilities.dirs[{i}].host"),
                    format!("'{}' must not contain '..'", d.host.display()),
                ));
            }
            let guest = &d.guest;
            if !guest.starts_with('/')
                || guest.split('/').any(|part| part == ".." || part == ".")
                || guest.contains('\0')
            {
                return Err(err(
                    format!("capabilities.dirs[{i}].guest"),
                    format!(
                        "'{guest}' must be an absolute guest path without '.' or '..', e.g. /data"
                    ),
                ));
            }
            let guest = if guest.len() > 1 {
                guest.trim_end_matches('/').to_owned()
            } else {
                guest.clone()
            };
            if dirs.iter().any(|g: &grants::DirGrant| g.guest == guest) {
                return Err(err(
                    format!("capabilities.dirs[{i}].guest"),
                    format!("'{guest}' is granted twice"),
                ));
            }
            dirs.push(grants::DirGrant {
                host: d.host.clone(),
                guest,
                writable: d.mode == DirMode::Rw,
            });
        }
        for (field, names) in [("env", &self.env), ("secrets", &self.secrets)] {
            for (i, name) in names.iter().enumerate() {
                let ok = !name.is_empty()
                    && name.len() <= 128
                    && !name.starts_with(|c: char| c.is_ascii_digit())
                    && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
                if !ok {
                    return Err(err(
                        format!("capabilities.{field}[{i}]"),
                        format!(
                            "'{name}' is not an environment variable name (letters, digits, '_')"
                        ),
                    ));
                }
            }
        }
        if let Some(name) = self.secrets.iter().find(|s| self.env.contains(s)) {
            return Err(err(
                "capabilities.secrets".into(),
                format!("'{name}' is listed in both env and secrets; keep it in one"),
            ));
        }
        let http = self
            .http
            .iter()
            .enumerate()
            .map(|(i, h)| HttpRule::parse(h).map_err(|p| err(format!("capabilities.http[{i}]"), p)))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Grants {
            dirs,
            env: self.env.clone(),
            http,
            secrets: self.secrets.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caps(json: &str) -> Capabilities {
        serde_json::from_str(json).unwrap_or_else(|e| panic!("{json}: {e}"))
    }

    #[test]
    fn good_grants_validate() {
        let g = caps(
            r#"{"dirs":[{"host":"/tmp/x","guest":"/data/","mode":"rw"}],"env":["A_B"],"http":["https://*.example.com"],"secrets":["TOKEN"]}"#,
        )
        .validate()
        .unwrap();
        assert_eq!(g.dirs[0].guest, "/data");
        assert!(g.dirs[0].writable);
        assert!(g.allows_http("https", "x.example.com", 443));
    }

    #[test]
    fn bad_grants_name_the_field() {
        for (json, field) in [
            (
                r#"{"dirs":[{"host":"rel","guest":"/d"}]}"#,
                "capabilities.dirs[0].host",
            ),
            (
                r#"{"dirs":[{"host":"/a/../b","guest":"/d"}]}"#,
                "capabilities.dirs[0].host",
            ),
            (
                r#"{"dirs":[{"host":"/a","guest":"d"}]}"#,
                "capabilities.dirs[0].guest",
            ),
            (
                r#"{"dirs":[{"host":"/a","guest":"/d/../e"}]}"#,
                "capabilities.dirs[0].guest",
            ),
            (
                r#"{"dirs":[{"host":"/a","guest":"/d"},{"host":"/b","guest":"/d"}]}"#,
                "capabilities.dirs[1].guest",
            ),
            (r#"{"env":["A=B"]}"#, "capabilities.env[0]"),
            (r#"{"secrets":["1X"]}"#, "capabilities.secrets[0]"),
            (r#"{"env":["X"],"secrets":["X"]}"#, "capabilities.secrets"),
            (r#"{"http":["example.com"]}"#, "capabilities.http[0]"),
        ] {
            let e = caps(json).validate().expect_err(json);
            assert_eq!(e.field, field, "{json}: {}", e.problem);
        }
    }

    #[test]
    fn unknown_modes_and_fields_are_refused_when_parsed() {
        assert!(
            serde_json::from_str::<Capabilities>(
                r#"{"dirs":[{"host":"/a","guest":"/d","mode":"x"}]}"#
            )
            .is_err()
        );
        assert!(serde_json::from_str::<Capabilities>(r#"{"network":true}"#).is_err());
    }
}

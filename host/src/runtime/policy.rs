//! The operator's grant policy: what any job may be granted at most.
//!
//! `wasmcron run --allow-dirs PATH... --allow-env NAME... --allow-http
//! PATTERN... --allow-secrets NAME...` bound every grant, whoever asks
//! (the API, a jobs file, a sidecar). Each kind is bounded only when its
//! flag is given: without any flag a job may be granted anything, as
//! before the policy existed.
//!
//! A grant is checked when a job is added or changed (a 422 naming the
//! field and the flag) and again when each run builds its sandbox, so a
//! job stored under a wider policy cannot reach past a narrower one.
//!
//! Directories are compared after resolving symlinks
//! ([`std::fs::canonicalize`]) on both sides: a granted
//! `/srv/jobs/link` pointing at `/etc` is `/etc`, and an allowed root that
//! is itself a link is where it points. A granted directory that does
//! not exist yet is resolved through its deepest existing ancestor.

use super::grants::{Grants, HttpRule};
use std::path::{Component, Path, PathBuf};

/// A grant outside the policy: the field and what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {problem}")]
pub struct PolicyError {
    /// E.g. `capabilities.dirs[0]`.
    pub field: String,
    /// What is outside which flag, and how to fix it.
    pub problem: String,
}

/// What `wasmcron run`'s `--allow-*` flags permit. `None` for a kind
/// means its flag was not given: that kind is not bounded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GrantPolicy {
    /// Directory trees a grant must lie inside (resolved, absolute).
    dirs: Option<Vec<PathBuf>>,
    /// Host variable names a job may be given.
    env: Option<Vec<String>>,
    /// Patterns a job's http allowlist entries must fall within.
    http: Option<Vec<HttpRule>>,
    /// Secret names a job may be given.
    secrets: Option<Vec<String>>,
    /// `--allow-private-http`: let a job's allowlisted *names* reach
    /// loopback, link-local and private addresses (see
    /// [`super::egress`]).
    pub allow_private_http: bool,
}

impl GrantPolicy {
    /// Builds the policy from the flags' values; an empty `Vec` is a flag
    /// not given.
    ///
    /// # Errors
    /// A message naming the flag: an allowed directory that is relative
    /// or does not exist, an http pattern that does not parse.
    pub fn new(
        dirs: Vec<PathBuf>,
        env: Vec<String>,
        http: Vec<String>,
        secrets: Vec<String>,
    ) -> Result<Self, String> {
        let dirs = if dirs.is_empty() {
            None
        } else {
            let mut roots = Vec::with_capacity(dirs.len());
            for d in dirs {
                if !d.is_absolute() {
                    return Err(format!(
                        "--allow-dirs {}: give an absolute path",
                        d.display()
                    ));
                }
                let root = std::fs::canonicalize(&d).map_err(|e| {
                    format!(
                        "--allow-dirs {}: {e}; create the directory or leave it out",
                        d.display()
                    )
                })?;
                roots.push(root);
            }
            Some(roots)
        };
        let http = if http.is_empty() {
            None
        } else {
            Some(
                http.iter()
                    .map(|h| HttpRule::parse(h).map_err(|e| format!("--allow-http {e}")))
                    .collect::<Result<Vec<_>, _>>()?,
            )
        };
        Ok(Self {
            dirs,
            env: (!env.is_empty()).then_some(env),
            http,
            secrets: (!secrets.is_empty()).then_some(secrets),
            allow_private_http: false,
        })
    }

    /// Whether no kind is bounded (the check is skipped).
    pub fn is_open(&self) -> bool {
        self.dirs.is_none() && self.env.is_none() && self.http.is_none() && self.secrets.is_none()
    }

    /// Checks every grant of `grants`.
    ///
    /// # Errors
    /// The first grant outside the policy, by field path
    /// (`capabilities.dirs[0]`, `capabilities.http[1]`, …).
    pub fn check(&self, grants: &Grants) -> Result<(), PolicyError> {
        if self.is_open() {
            return Ok(());
        }
        if let Some(roots) = &self.dirs {
            for (i, dir) in grants.dirs.iter().enumerate() {
                if self.resolve_dir(&dir.host).is_none() {
                    return Err(PolicyError {
                        field: format!("capabilities.dirs[{i}]"),
                        problem: format!(
                            "`{}` is outside the operator's --allow-dirs ({}); ask the \
                             operator or grant a directory under it",
                            dir.host.display(),
                            list(roots.iter().map(|r| r.display().to_string()))
                        ),
                    });
                }
            }
        }
        for (kind, flag, allowed, granted) in [
            ("env", "--allow-env", &self.env, &grants.env),
            ("secrets", "--allow-secrets", &self.secrets, &grants.secrets),
        ] {
            let Some(allowed) = allowed else { continue };
            if let Some((i, name)) = granted
                .iter()
                .enumerate()
                .find(|(_, n)| !allowed.contains(n))
            {
                return Err(PolicyError {
                    field: format!("capabilities.{kind}[{i}]"),
                    problem: format!(
                        "`{name}` is outside the operator's {flag} ({}); ask the operator \
                         or leave it out",
                        list(allowed.iter().cloned())
                    ),
                });
            }
        }
        if let Some(allowed) = &self.http {
            for (i, rule) in grants.http.iter().enumerate() {
                if !allowed.iter().any(|p| rule.within(p)) {
                    return Err(PolicyError {
                        field: format!("capabilities.http[{i}]"),
                        problem: format!(
                            "`{rule}` is outside the operator's --allow-http ({}); ask the \
                             operator or grant a host it allows",
                            list(allowed.iter().map(ToString::to_string))
                        ),
                    });
                }
            }
        }
        Ok(())
    }

    /// `dir` with its symlinks resolved, when it lies inside an allowed
    /// root (always, when directories are not bounded: then `dir` as
    /// given). A run preopens the path returned, the one checked.
    pub fn resolve_dir(&self, dir: &Path) -> Option<PathBuf> {
        let Some(roots) = &self.dirs else {
            return Some(dir.to_owned());
        };
        let resolved = resolve(dir)?;
        roots
            .iter()
            .any(|r| resolved.starts_with(r))
            .then_some(resolved)
    }
}

/// `path` with `.` dropped and symlinks resolved through its deepest
/// existing ancestor; `None` for a relative path or one with `..` (which
/// validation refuses anyway: after a symlink, `..` is not lexical).
fn resolve(path: &Path) -> Option<PathBuf> {
    if !path.is_absolute() || path.components().any(|c| c == Component::ParentDir) {
        return None;
    }
    let mut existing: PathBuf = path.components().collect();
    let mut rest = Vec::new();
    loop {
        match std::fs::canonicalize(&existing) {
            Ok(mut real) => {
                real.extend(rest.iter().rev());
                return Some(real);
            }
            Err(_) => {
                let name = existing.file_name()?.to_owned();
                rest.push(name);
                if !existing.pop() {
                    return None;
                }
            }
        }
    }
}

fn list(items: impl Iterator<Item = String>) -> String {
    items.collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::Capabilities;

    fn grants(json: &str) -> Grants {
        serde_json::from_str::<Capabilities>(json)
            .unwrap()
            .validate()
            .unwrap()
    }

    #[test]
    fn no_flags_allow_anything() {
        let p = GrantPolicy::default();
        let g = grants(r#"{"dirs":[{"host":"/etc","guest":"/d"}],"env":["HOME"]}"#);
        assert_eq!(p.check(&g), Ok(()));
    }

    #[test]
    fn dirs_are_compared_after_symlinks() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("jobs");
        std::fs::create_dir(&root).unwrap();
        std::os::unix::fs::symlink("/etc", root.join("link")).unwrap();
        let p = GrantPolicy::new(vec![root.clone()], vec![], vec![], vec![]).unwrap();
        let ok = |path: &Path| {
            let json = format!(
                r#"{{"dirs":[{{"host":"{}","guest":"/d"}}]}}"#,
                path.display()
            );
            p.check(&grants(&json))
        };
        assert_eq!(ok(&root), Ok(()));
        assert_eq!(ok(&root.join("a/not/yet")), Ok(()));
        assert_eq!(ok(&root.join("./a")), Ok(()));
        let err = ok(&root.join("link")).unwrap_err();
        assert_eq!(err.field, "capabilities.dirs[0]");
        assert!(err.problem.contains("--allow-dirs"), "{}", err.problem);
        assert!(ok(&root.join("link/ssl")).is_err());
        assert!(ok(Path::new("/etc")).is_err());
        // A sibling whose name starts like the root is not under it.
        assert!(ok(&tmp.path().join("jobs2")).is_err());
    }

    #[test]
    fn names_and_http_patterns_are_bounded() {
        let p = GrantPolicy::new(
            vec![],
            vec!["TZ".into()],
            vec!["https://*.example.com".into(), "http://127.0.0.1:*".into()],
            vec!["TOKEN".into()],
        )
        .unwrap();
        assert_eq!(
            p.check(&grants(
                r#"{"env":["TZ"],"secrets":["TOKEN"],"http":["https://a.example.com","https://*.b.example.com","http://127.0.0.1:8080","http://127.0.0.1:*"]}"#
            )),
            Ok(())
        );
        for (json, field) in [
            (r#"{"env":["TZ","HOME"]}"#, "capabilities.env[1]"),
            (r#"{"secrets":["OTHER"]}"#, "capabilities.secrets[0]"),
            (
                r#"{"http":["https://example.com"]}"#,
                "capabilities.http[0]",
            ),
            (r#"{"http":["https://*.com"]}"#, "capabilities.http[0]"),
            (
                r#"{"http":["http://a.example.com"]}"#,
                "capabilities.http[0]",
            ),
            (
                r#"{"http":["https://a.example.com:*"]}"#,
                "capabilities.http[0]",
            ),
            (
                r#"{"http":["http://localhost:8080"]}"#,
                "capabilities.http[0]",
            ),
        ] {
            let err = p.check(&grants(json)).expect_err(json);
            assert_eq!(err.field, field, "{json}");
        }
    }

    #[test]
    fn bad_flags_say_which() {
        let err = GrantPolicy::new(vec!["rel".into()], vec![], vec![], vec![]).unwrap_err();
        assert!(err.contains("--allow-dirs rel"), "{err}");
        let err =
            GrantPolicy::new(vec!["/no/such/dir/x".into()], vec![], vec![], vec![]).unwrap_err();
        assert!(err.contains("--allow-dirs /no/such/dir/x"), "{err}");
        let err = GrantPolicy::new(vec![], vec![], vec!["example.com".into()], vec![]).unwrap_err();
        assert!(err.contains("--allow-http"), "{err}");
    }
}

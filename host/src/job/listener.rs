//! A job's error listeners as written (`listeners = [...]`) and as
//! validated: a listener plugin or a webhook per entry, each with what it
//! wants to hear (`on`, `after_failures`; issue 13, item 10).

use super::JobError;
use serde::{Deserialize, Serialize};

/// An error listener: a listener plugin or a webhook, one per entry, and
/// what it hears.
///
/// ```toml
/// listeners = [
///     { plugin = "alert" },                                  # failed + missed
///     { webhook = "https://hooks.example.com/wasmcron", on = ["recovered", "paused"] },
///     { plugin = "pager", on = ["failed"], after_failures = 3 },
/// ]
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(
    deny_unknown_fields,
    expecting = "a listener: a table with `plugin` or `webhook`, e.g. { plugin = \"alert\" }"
)]
pub struct ListenerSpec {
    /// A plugin implementing world `listener`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plugin: Option<String>,
    /// A URL the event is POSTed to as JSON.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook: Option<String>,
    /// What it hears, any of `failed`, `missed`, `succeeded`, `recovered`
    /// (the first success after one or more failed runs) and `paused` (the
    /// job was auto-paused by `pause_after_failures`), each at most once.
    /// Unset: `["failed", "missed"]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on: Option<Vec<String>>,
    /// Hear a failed run only when it is the Nth or later failure in a row
    /// (counted as `pause_after_failures` counts: a fire's retries once),
    /// e.g. `3`. At least 1; unset: every failed run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after_failures: Option<u32>,
}

/// What a listener may hear: the names `on` takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ListenFor {
    /// A run ended failed (any failure, interrupted included), each attempt.
    Failed,
    /// A fire was not run (too late, coalesced, plugin missing).
    Missed,
    /// A run succeeded.
    Succeeded,
    /// A run succeeded after one or more failed runs in a row.
    Recovered,
    /// The job was auto-paused after `pause_after_failures` failures.
    Paused,
}

impl ListenFor {
    /// Every kind, in the order error messages list them.
    pub const ALL: [Self; 5] = [
        Self::Failed,
        Self::Missed,
        Self::Succeeded,
        Self::Recovered,
        Self::Paused,
    ];

    /// The name written in `on` (and sent to webhooks as `"on"`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Failed => "failed",
            Self::Missed => "missed",
            Self::Succeeded => "succeeded",
            Self::Recovered => "recovered",
            Self::Paused => "paused",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }

    fn bit(self) -> u8 {
        1 << self as u8
    }
}

/// Where a listener's events go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListenerTarget {
    /// A listener plugin, by name.
    Plugin(String),
    /// A webhook URL (http or https).
    Webhook(String),
}

/// A validated listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listener {
    /// Where its events go.
    pub target: ListenerTarget,
    /// What it hears, a bit per [`ListenFor`].
    on: u8,
    /// Failed runs are heard from the Nth in a row on; `None`: all.
    pub after_failures: Option<u32>,
}

impl Listener {
    /// Whether it hears `kind`.
    pub fn hears(&self, kind: ListenFor) -> bool {
        self.on & kind.bit() != 0
    }
}

pub(super) fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

fn all_names() -> String {
    ListenFor::ALL
        .iter()
        .map(|k| format!("`{}`", k.as_str()))
        .collect::<Vec<_>>()
        .join(", ")
}

impl ListenerSpec {
    pub(super) fn validate(&self, i: usize) -> Result<Listener, JobError> {
        let bad = |problem: &str| JobError::Listener {
            index: i,
            field: None,
            problem: problem.to_owned(),
        };
        let target = match (&self.plugin, &self.webhook) {
            (Some(p), None) if valid_name(p) => ListenerTarget::Plugin(p.clone()),
            (Some(p), None) => return Err(bad(&format!("'{p}' is not a plugin name"))),
            (None, Some(url)) => {
                let ok = (url.starts_with("http://") || url.starts_with("https://"))
                    && url.len() > "https://".len()
                    && !url.chars().any(char::is_whitespace);
                if ok {
                    ListenerTarget::Webhook(url.clone())
                } else {
                    return Err(bad(&format!("'{url}' is not an http:// or https:// URL")));
                }
            }
            _ => return Err(bad("give exactly one of `plugin` or `webhook`")),
        };
        let on = match &self.on {
            None => ListenFor::Failed.bit() | ListenFor::Missed.bit(),
            Some(names) if names.is_empty() => {
                return Err(JobError::Listener {
                    index: i,
                    field: Some("on".to_owned()),
                    problem: format!(
                        "must name at least one of {}; leave it unset for `failed` and `missed`",
                        all_names()
                    ),
                });
            }
            Some(names) => {
                let mut on = 0u8;
                for (j, name) in names.iter().enumerate() {
                    let field = Some(format!("on[{j}]"));
                    let Some(kind) = ListenFor::parse(name) else {
                        return Err(JobError::Listener {
                            index: i,
                            field,
                            problem: format!("'{name}' is not one of {}", all_names()),
                        });
                    };
                    if on & kind.bit() != 0 {
                        return Err(JobError::Listener {
                            index: i,
                            field,
                            problem: format!("'{name}' is listed twice"),
                        });
                    }
                    on |= kind.bit();
                }
                on
            }
        };
        if self.after_failures == Some(0) {
            return Err(JobError::Listener {
                index: i,
                field: Some("after_failures".to_owned()),
                problem: "must be at least 1 (1 hears every failed run, as leaving it unset does)"
                    .to_owned(),
            });
        }
        Ok(Listener {
            target,
            on,
            after_failures: self.after_failures,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(json: &str) -> ListenerSpec {
        serde_json::from_str(json).unwrap_or_else(|e| panic!("{json}: {e}"))
    }

    #[test]
    fn the_default_hears_failed_and_missed_only() {
        let l = spec(r#"{"plugin":"alert"}"#).validate(0).unwrap();
        assert!(l.hears(ListenFor::Failed) && l.hears(ListenFor::Missed));
        for k in [
            ListenFor::Succeeded,
            ListenFor::Recovered,
            ListenFor::Paused,
        ] {
            assert!(!l.hears(k), "{k:?}");
        }
    }

    #[test]
    fn bad_filters_name_their_field() {
        for (json, field) in [
            (
                r#"{"plugin":"a","on":["failed","nope"]}"#,
                "listeners[2].on[1]",
            ),
            (
                r#"{"plugin":"a","on":["paused","paused"]}"#,
                "listeners[2].on[1]",
            ),
            (r#"{"plugin":"a","on":[]}"#, "listeners[2].on"),
            (
                r#"{"plugin":"a","after_failures":0}"#,
                "listeners[2].after_failures",
            ),
        ] {
            let err = spec(json).validate(2).expect_err(json);
            assert_eq!(err.field(), field, "{json}: {err}");
            assert!(err.to_string().starts_with(field), "{err}");
        }
        let err = spec(r#"{"plugin":"a","on":["x"]}"#)
            .validate(0)
            .unwrap_err();
        assert!(err.to_string().contains("`recovered`"), "{err}");
    }
}

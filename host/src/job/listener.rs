//! A job's error listeners as written (`listeners = [...]`) and as
//! validated: a listener plugin or a webhook per entry.

use super::JobError;
use serde::{Deserialize, Serialize};

/// An error listener: a listener plugin or a webhook, one per entry.
///
/// ```toml
/// listeners = [{ plugin = "alert" }, { webhook = "https://hooks.example.com/wasmcron" }]
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ListenerSpec {
    /// A plugin implementing world `listener`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plugin: Option<String>,
    /// A URL the event is POSTed to as JSON.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook: Option<String>,
}

/// A validated listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Listener {
    /// A listener plugin, by name.
    Plugin(String),
    /// A webhook URL (http or https).
    Webhook(String),
}

pub(super) fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

impl ListenerSpec {
    pub(super) fn validate(&self, i: usize) -> Result<Listener, JobError> {
        let bad = |problem: &str| JobError::Listener {
            index: i,
            problem: problem.to_owned(),
        };
        match (&self.plugin, &self.webhook) {
            (Some(p), None) if valid_name(p) => Ok(Listener::Plugin(p.clone())),
            (Some(p), None) => Err(bad(&format!("'{p}' is not a plugin name"))),
            (None, Some(url)) => {
                let ok = (url.starts_with("http://") || url.starts_with("https://"))
                    && url.len() > "https://".len()
                    && !url.chars().any(char::is_whitespace);
                if ok {
                    Ok(Listener::Webhook(url.clone()))
                } else {
                    Err(bad(&format!("'{url}' is not an http:// or https:// URL")))
                }
            }
            _ => Err(bad("give exactly one of `plugin` or `webhook`")),
        }
    }
}


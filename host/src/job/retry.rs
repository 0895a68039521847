//! Retry policy: how many attempts, how long between them, on which
//! outcomes.

use crate::duration;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// A retry policy as written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(
    deny_unknown_fields,
    expecting = "a retry policy: a table, e.g. { max_attempts = 3, delay = \"10s\" }"
)]
pub struct RetrySpec {
    /// Attempts per fire, the first included: 1 means no retries.
    #[serde(default = "one")]
    pub max_attempts: u32,
    /// `fixed` or `exponential`.
    #[serde(default = "fixed")]
    pub backoff: String,
    /// The delay before the first retry, e.g. `10s`.
    #[serde(default = "ten_seconds")]
    pub delay: String,
    /// The longest delay exponential backoff may reach, e.g. `10m`.
    #[serde(default = "ten_minutes")]
    pub max_delay: String,
    /// Outcome kinds worth retrying. A guest's `failed` is retried only
    /// when the guest also said it was retryable.
    #[serde(default = "default_retry_on")]
    pub retry_on: Vec<String>,
}

fn one() -> u32 {
    1
}
fn fixed() -> String {
    "fixed".into()
}
fn ten_seconds() -> String {
    "10s".into()
}
fn ten_minutes() -> String {
    "10m".into()
}
fn default_retry_on() -> Vec<String> {
    ["failed", "trapped", "timed-out", "interrupted"]
        .map(String::from)
        .to_vec()
}

impl Default for RetrySpec {
    fn default() -> Self {
        Self {
            max_attempts: 1,
            backoff: fixed(),
            delay: ten_seconds(),
            max_delay: ten_minutes(),
            retry_on: default_retry_on(),
        }
    }
}

/// How the delay grows between attempts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backoff {
    /// The same delay every time.
    Fixed(Duration),
    /// `initial * 2^(attempt-1)`, capped at `max`.
    Exponential {
        /// The first delay.
        initial: Duration,
        /// The cap.
        max: Duration,
    },
}

/// A validated retry policy. Small and allocation-free: one per job, and
/// hosts hold a million jobs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts per fire, the first included.
    pub max_attempts: u32,
    /// The delays.
    pub backoff: Backoff,
    /// Outcome kinds worth retrying: bit i set for `RETRYABLE_KINDS[i]`.
    retry_on: u8,
}

/// Outcome kinds a policy may name.
pub const RETRYABLE_KINDS: &[&str] = &[
    "failed",
    "trapped",
    "out-of-fuel",
    "timed-out",
    "memory-limit",
    "interrupted",
];

impl RetrySpec {
    /// Validates the policy.
    ///
    /// # Errors
    /// A message starting with the field name.
    pub fn validate(&self) -> Result<RetryPolicy, String> {
        if self.max_attempts == 0 || self.max_attempts > 100 {
            return Err("max_attempts: must be between 1 and 100".into());
        }
        let delay = duration::parse(&self.delay).map_err(|e| format!("delay: {e}"))?;
        let max = duration::parse(&self.max_delay).map_err(|e| format!("max_delay: {e}"))?;
        // A retry is stored as due at `now + delay`: a delay past
        // MAX_DURATION would run off chrono's calendar there.
        let too_long = |field: &str, value: &str| {
            format!(
                "{field}: {value} is longer than the longest allowed, {}",
                duration::format(super::MAX_DURATION)
            )
        };
        if delay > super::MAX_DURATION {
            return Err(too_long("delay", &self.delay));
        }
        let backoff = match self.backoff.as_str() {
            "fixed" => Backoff::Fixed(delay),
            "exponential" => {
                if max > super::MAX_DURATION {
                    return Err(too_long("max_delay", &self.max_delay));
                }
                if max < delay {
                    return Err("max_delay: must not be shorter than delay".into());
                }
                Backoff::Exponential {
                    initial: delay,
                    max,
                }
            }
            other => {
                return Err(format!(
                    "backoff: '{other}' is not 'fixed' or 'exponential'"
                ));
            }
        };
        if let Some(bad) = self
            .retry_on
            .iter()
            .find(|k| !RETRYABLE_KINDS.contains(&k.as_str()))
        {
            return Err(format!(
                "retry_on: '{bad}' is not an outcome kind ({})",
                RETRYABLE_KINDS.join(", ")
            ));
        }
        let retry_on = self.retry_on.iter().fold(0u8, |bits, k| {
            bits | RETRYABLE_KINDS
                .iter()
                .position(|r| r == k)
                .map_or(0, |i| 1 << i)
        });
        Ok(RetryPolicy {
            max_attempts: self.max_attempts,
            backoff,
            retry_on,
        })
    }
}

impl RetryPolicy {
    /// No retries: one attempt per fire.
    pub fn none() -> Self {
        Self {
            max_attempts: 1,
            backoff: Backoff::Fixed(Duration::from_secs(10)),
            retry_on: 0,
        }
    }

    /// The delay before attempt `attempt + 1`, after attempt `attempt`
    /// (1-based) failed.
    pub fn delay_after(&self, attempt: u32) -> Duration {
        match self.backoff {
            Backoff::Fixed(d) => d,
            Backoff::Exponential { initial, max } => {
                let factor = 2u32.saturating_pow(attempt.saturating_sub(1).min(31));
                initial.saturating_mul(factor).min(max)
            }
        }
    }

    /// Whether an attempt that ended as `kind` (with the guest's own
    /// `retryable` flag for `failed`) gets another try.
    pub fn should_retry(&self, attempt: u32, kind: &str, guest_retryable: bool) -> bool {
        attempt < self.max_attempts
            && RETRYABLE_KINDS
                .iter()
                .position(|k| *k == kind)
                .is_some_and(|i| self.retry_on & (1 << i) != 0)
            && (kind != "failed" || guest_retryable)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exponential_doubles_up_to_the_cap() {
        let p = RetrySpec {
            max_attempts: 10,
            backoff: "exponential".into(),
            delay: "1s".into(),
            max_delay: "5s".into(),
            ..RetrySpec::default()
        }
        .validate()
        .unwrap();
        let delays: Vec<u64> = (1..=5).map(|a| p.delay_after(a).as_secs()).collect();
        assert_eq!(delays, [1, 2, 4, 5, 5]);
    }

    #[test]
    fn permanent_guest_errors_and_unlisted_kinds_are_not_retried() {
        let p = RetrySpec {
            max_attempts: 3,
            ..RetrySpec::default()
        }
        .validate()
        .unwrap();
        assert!(p.should_retry(1, "failed", true));
        assert!(!p.should_retry(1, "failed", false));
        assert!(!p.should_retry(1, "out-of-fuel", true));
        assert!(!p.should_retry(3, "failed", true));
    }

    #[test]
    fn bad_policies_name_the_field() {
        let bad = RetrySpec {
            retry_on: vec!["exploded".into()],
            ..RetrySpec::default()
        };
        assert!(bad.validate().unwrap_err().starts_with("retry_on:"));
        let bad = RetrySpec {
            backoff: "linear".into(),
            ..RetrySpec::default()
        };
        assert!(bad.validate().unwrap_err().starts_with("backoff:"));
    }
}

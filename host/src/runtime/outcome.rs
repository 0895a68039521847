//! How a run ended, and what it reported on the way.

use serde::{Deserialize, Serialize};
use std::time::Duration;

/// How one run ended. Every way a guest can fail has its own variant, so
/// the scheduler can retry only what is worth retrying and people can tell
/// "the job said no" from "the job was stopped".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Outcome {
    /// The guest returned output.
    Succeeded {
        /// The output text (truncated to the host's output limit).
        output: String,
    },
    /// The guest returned an error.
    Failed {
        /// The guest's message.
        message: String,
        /// Whether the guest said a retry may help.
        retryable: bool,
    },
    /// The guest trapped: a panic, stack overflow, bad memory access, or
    /// failed to start.
    Trapped {
        /// The trap, with the panic message when the guest printed one.
        message: String,
    },
    /// The guest used up its fuel (instruction budget).
    OutOfFuel,
    /// The run took longer than its timeout.
    TimedOut,
    /// The guest tried to grow memory past its limit.
    MemoryLimit,
}

impl Outcome {
    /// The outcome's kind, as used in logs, metrics and the run history.
    pub fn kind(&self) -> OutcomeKind {
        match self {
            Self::Succeeded { .. } => OutcomeKind::Succeeded,
            Self::Failed { .. } => OutcomeKind::Failed,
            Self::Trapped { .. } => OutcomeKind::Trapped,
            Self::OutOfFuel => OutcomeKind::OutOfFuel,
            Self::TimedOut => OutcomeKind::TimedOut,
            Self::MemoryLimit => OutcomeKind::MemoryLimit,
        }
    }

    /// Whether the run succeeded.
    pub fn is_success(&self) -> bool {
        matches!(self, Self::Succeeded { .. })
    }
}

/// The kind of an [`Outcome`], without its data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OutcomeKind {
    /// See [`Outcome::Succeeded`].
    Succeeded,
    /// See [`Outcome::Failed`].
    Failed,
    /// See [`Outcome::Trapped`].
    Trapped,
    /// See [`Outcome::OutOfFuel`].
    OutOfFuel,
    /// See [`Outcome::TimedOut`].
    TimedOut,
    /// See [`Outcome::MemoryLimit`].
    MemoryLimit,
}

impl OutcomeKind {
    /// The kebab-case name (`out-of-fuel`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Trapped => "trapped",
            Self::OutOfFuel => "out-of-fuel",
            Self::TimedOut => "timed-out",
            Self::MemoryLimit => "memory-limit",
        }
    }

    /// Every kind, in [`Self::as_str`]'s order.
    pub const ALL: [Self; 6] = [
        Self::Succeeded,
        Self::Failed,
        Self::Trapped,
        Self::OutOfFuel,
        Self::TimedOut,
        Self::MemoryLimit,
    ];

    /// Parses a kebab-case name (`out-of-fuel`); `None` for another.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

impl std::fmt::Display for OutcomeKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Everything one run produced.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunReport {
    /// How it ended.
    pub outcome: Outcome,
    /// Fuel the run consumed.
    pub fuel_consumed: u64,
    /// Wall-clock time from the start of instantiation to the end.
    #[serde(with = "duration_us")]
    pub duration: Duration,
    /// Captured stdout, stderr and log calls, in order.
    pub logs: Vec<super::capture::LogRecord>,
    /// Bytes of log text dropped because the run's log budget was spent
    /// (the records' framing not counted).
    pub logs_dropped_bytes: u64,
    /// Records (lines, log calls, host notes) dropped because the run's log
    /// budget was spent. Empty ones count too: each costs its framing.
    #[serde(default)]
    pub logs_dropped_records: u64,
}

mod duration_us {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_micros)
    }
}

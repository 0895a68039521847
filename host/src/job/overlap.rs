//! A job's overlap policy: what a fire does when it finds the job's
//! `max_instances` runs still going. The names and meanings are Temporal
//! Schedules' (`ScheduleOverlapPolicy`): skip, buffer one, buffer all,
//! cancel other, allow all.

use serde::{Deserialize, Serialize};

/// The most fires a `buffer-all` job keeps waiting when `max_buffered` is
/// unset; a fire beyond them is recorded skipped.
pub const DEFAULT_MAX_BUFFERED: u32 = 100;

/// What a fire does when the job already has `max_instances` runs going.
///
/// ```toml
/// overlap = "buffer-one"   # skip | buffer-one | buffer-all | cancel-other | allow-all
/// ```
///
/// Fires waiting under a buffer policy are recorded `pending` at their
/// fire (a note says why they wait) and start in fire order as instances
/// free up; catch-up runs after downtime wait the same way and count
/// towards the buffer. On a store several hosts share the rule holds
/// across them: the claim that finds the job at its `max_instances`
/// applies it.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "kebab-case", try_from = "String")]
pub enum Overlap {
    /// The fire is recorded `skipped` and does not run (APScheduler's
    /// rule, and wasmcron's before overlap policies).
    #[default]
    Skip,
    /// At most one fire waits and runs when a run ends; a fire while one
    /// already waits is recorded `skipped`.
    BufferOne,
    /// Fires wait in order, up to `max_buffered` (default 100); beyond
    /// that they are recorded `skipped`.
    BufferAll,
    /// The oldest run going is stopped (recorded `interrupted`, with the
    /// fire that replaced it in its note, and not retried) and the fire
    /// runs once it has ended. One fire at a time waits to replace it; a
    /// fire while one already waits is recorded `skipped`.
    CancelOther,
    /// Every fire starts at once beside the runs still going, up to
    /// `max_instances` of them (which must then be above 1); a fire beyond
    /// that is recorded `skipped`, as under `skip`.
    AllowAll,
}

/// Every policy, in the order the docs list them.
const ALL: [Overlap; 5] = [
    Overlap::Skip,
    Overlap::BufferOne,
    Overlap::BufferAll,
    Overlap::CancelOther,
    Overlap::AllowAll,
];

impl TryFrom<String> for Overlap {
    type Error = String;

    /// Parses a policy's name (read from a string, so that a bad name is
    /// reported at the field `overlap` rather than inside an enum).
    fn try_from(name: String) -> Result<Self, String> {
        ALL.into_iter().find(|p| p.as_str() == name).ok_or_else(|| {
            format!(
                "'{}' is not an overlap policy; write one of skip, buffer-one, buffer-all, \
                 cancel-other, allow-all",
                name.chars().take(64).collect::<String>()
            )
        })
    }
}

impl Overlap {
    /// The policy's name as written (`buffer-one`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Skip => "skip",
            Self::BufferOne => "buffer-one",
            Self::BufferAll => "buffer-all",
            Self::CancelOther => "cancel-other",
            Self::AllowAll => "allow-all",
        }
    }

    /// Whether this is the default (`skip`), which a spec leaves unwritten.
    pub fn is_default(&self) -> bool {
        *self == Self::Skip
    }

    /// How many fires may wait for a free instance under this policy
    /// (`max_buffered` is the job's validated value; 0 for policies that
    /// never buffer).
    pub fn buffer(self, max_buffered: u32) -> usize {
        match self {
            Self::Skip | Self::AllowAll => 0,
            Self::BufferOne | Self::CancelOther => 1,
            Self::BufferAll => usize::try_from(max_buffered).unwrap_or(usize::MAX),
        }
    }
}

/// The note of a fire waiting under a buffer policy. Starts with
/// `buffered`: on a shared store the claim tells waiting fires (which may
/// not be skipped) from fresh ones by it, as it does catch-up runs.
pub fn buffered_note(policy: Overlap, going: u32, max_instances: u32) -> String {
    format!(
        "buffered: {going} run(s) already in flight (max_instances {max_instances}); \
         waits for one to end (overlap {})",
        policy.as_str()
    )
}

/// The note of a fire skipped because the buffer is full.
pub fn buffer_full_note(policy: Overlap, waiting: usize, going: u32, max_instances: u32) -> String {
    format!(
        "{going} run(s) already in flight (max_instances {max_instances}) and {waiting} fire(s) \
         already waiting (overlap {})",
        policy.as_str()
    )
}

/// The note of a run stopped by a fire under `cancel-other`.
pub fn cancelled_note(fire: chrono::DateTime<chrono::Utc>) -> String {
    format!(
        "cancelled by overlap cancel-other: the fire at {} takes its place",
        fire.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
    )
}

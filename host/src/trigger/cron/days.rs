//! Which days a schedule fires on, as a value: the structured half of
//! `cron explain`, from which its words are written.
//!
//! It is derived from the parsed day sets and [`days_ored`], the very
//! decision the matcher makes, and then simplified the way a reader would
//! (a restricted field that allows every day drops out of an AND, and makes
//! an OR allow every day). The property tests check it, and the words made
//! from it, against the days `next_after` actually fires on.

use super::parse::Fields;
use chrono::{Datelike, NaiveDate};

/// Vixie's day rule, shared by the matcher and the describer: when both day
/// fields are restricted (neither begins with `*`, however stepped) a day
/// matches if *either* field does; otherwise both must.
pub(super) fn days_ored(f: &Fields) -> bool {
    !f.dom_star && !f.dow_star
}

/// Whether every value `lo..=hi` is in `set`.
pub(super) fn full(set: u64, lo: u32, hi: u32) -> bool {
    (lo..=hi).all(|v| set & (1u64 << v) != 0)
}

/// The days a schedule fires on (within its months), simplified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Days {
    /// Every day. `ored` is true when both fields were restricted but one
    /// of them allows every day, so classic cron's OR lets every day
    /// through (`0 12 1-31 * 1`, `0 12 1 * 0-6`).
    Every {
        /// Reached through the OR of two restricted fields.
        ored: bool,
    },
    /// The days of the month in the set (bits 1-31), whatever the weekday.
    OfMonth(u64),
    /// The weekdays in the set (bits 0-6, Sunday 0), whatever the date.
    OfWeek(u64),
    /// Days of the month in `dom` that are also weekdays in `dow` (a day
    /// field begins with `*`, so both must match).
    Both {
        /// Bits 1-31.
        dom: u64,
        /// Bits 0-6, Sunday 0.
        dow: u64,
    },
    /// Days of the month in `dom`, and also every weekday in `dow` (both
    /// fields restricted: classic cron's OR).
    Either {
        /// Bits 1-31.
        dom: u64,
        /// Bits 0-6, Sunday 0.
        dow: u64,
    },
}

impl Days {
    /// The day rule of parsed fields.
    pub fn of(f: &Fields) -> Self {
        let (dom, dow) = (f.days_of_month, f.days_of_week);
        let dom_all = full(dom, 1, 31);
        let dow_all = full(dow, 0, 6);
        if days_ored(f) {
            if dom_all || dow_all {
                Self::Every { ored: true }
            } else {
                Self::Either { dom, dow }
            }
        } else {
            match (dom_all, dow_all) {
                (true, true) => Self::Every { ored: false },
                (true, false) => Self::OfWeek(dow),
                (false, true) => Self::OfMonth(dom),
                (false, false) => Self::Both { dom, dow },
            }
        }
    }

    /// Whether the rule lets `date` through (months aside).
    pub fn includes(&self, date: NaiveDate) -> bool {
        let in_dom = |set: u64| set & (1u64 << date.day()) != 0;
        let in_dow = |set: u64| set & (1u64 << date.weekday().num_days_from_sunday()) != 0;
        match *self {
            Self::Every { .. } => true,
            Self::OfMonth(dom) => in_dom(dom),
            Self::OfWeek(dow) => in_dow(dow),
            Self::Both { dom, dow } => in_dom(dom) && in_dow(dow),
            Self::Either { dom, dow } => in_dom(dom) || in_dow(dow),
        }
    }
}

/// A schedule's description: the structured rule and the words made from
/// it, so a caller (or a test) can check one against the other.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Description {
    /// Which days it fires on.
    pub days: Days,
    /// Which months (bits 1-12).
    pub months: u64,
    /// The whole schedule in words, e.g. "at 09:00 on Monday".
    pub words: String,
}

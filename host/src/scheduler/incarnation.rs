//! A job's incarnation as the job table keeps it: 16 bytes in place for
//! the UUIDs this host makes (`store::new_incarnation`), instead of a
//! shared string on the heap. A host keeps one per job in memory; as text
//! it took 64 bytes of heap and 16 in the entry per job (a million jobs:
//! 80 MB; docs/BENCHMARKS.md, "Memory per job").

use std::fmt;
use std::sync::Arc;

/// Bytes of a hyphenated UUID (`8-4-4-4-12` hex digits).
pub(crate) const UUID_TEXT: usize = uuid::fmt::Hyphenated::LENGTH;

/// An incarnation: the UUID it is when its text is exactly a lower-case
/// hyphenated UUID (so it is written back the same), else that text
/// (stores written by other tools, tests).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Incarnation {
    /// Text that is `uuid.hyphenated()` exactly.
    Uuid(uuid::Uuid),
    /// Any other text.
    Text(Arc<str>),
}

impl Incarnation {
    /// The incarnation `text` names.
    pub(crate) fn new(text: &str) -> Self {
        match uuid::Uuid::try_parse(text) {
            Ok(id) if id.hyphenated().encode_lower(&mut [0; UUID_TEXT]) == text => Self::Uuid(id),
            _ => Self::Text(Arc::from(text)),
        }
    }

    /// Its text, written into `buf` when it is kept as a UUID.
    pub(crate) fn as_str<'a>(&'a self, buf: &'a mut [u8; UUID_TEXT]) -> &'a str {
        match self {
            Self::Uuid(id) => id.hyphenated().encode_lower(buf),
            Self::Text(text) => text,
        }
    }
}

impl PartialEq<str> for Incarnation {
    fn eq(&self, other: &str) -> bool {
        self.as_str(&mut [0; UUID_TEXT]) == other
    }
}

impl fmt::Display for Incarnation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str(&mut [0; UUID_TEXT]))
    }
}

#[cfg(test)]
mod tests {
    use super::Incarnation;

    #[test]
    fn a_uuid_is_kept_in_place_and_reads_back_the_same() {
        let text = crate::store::new_incarnation();
        let inc = Incarnation::new(&text);
        assert!(matches!(inc, Incarnation::Uuid(_)), "{inc:?}");
        assert_eq!(inc.to_string(), text);
        assert!(inc == *text.as_str());
        assert!(inc != *"0190a8c2-0000-7000-8000-000000000000");
    }

    #[test]
    fn other_text_is_kept_as_written() {
        // Upper case and the simple form parse as UUIDs, but would not be
        // written back as they came: they stay text.
        for text in [
            "inc-1",
            "",
            "0190A8C2-0000-7000-8000-000000000000",
            "0190a8c2000070008000000000000000",
        ] {
            let inc = Incarnation::new(text);
            assert!(matches!(inc, Incarnation::Text(_)), "{text}: {inc:?}");
            assert_eq!(inc.to_string(), text);
            assert!(inc == *text);
        }
    }
}

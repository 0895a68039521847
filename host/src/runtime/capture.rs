//! Bounded capture of a run's stdout, stderr and log calls.
//!
//! Everything a guest prints or logs lands in one per-run budget (64 KiB by
//! default). Every record is charged its text *and* its framing
//! ([`RECORD_OVERHEAD`] bytes, plus [`FIELD_OVERHEAD`] per field), so empty
//! lines and empty log calls cost something and the number of kept records
//! is bounded by `budget / RECORD_OVERHEAD` (1,024 by default) and never
//! exceeds [`MAX_RECORDS`]. The first record that does not fit closes the
//! capture: it and everything after it is dropped, so the kept log is a
//! prefix of what the guest wrote, with no gaps.
//!
//! Dropping is *silent to the guest*: a capture that returned write errors
//! would crash guests whose `println!` panics on failure. The report counts
//! the dropped records and bytes and ends with a marker line.

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};

/// Default per-run budget for captured output.
pub const DEFAULT_LOG_BUDGET: usize = 64 * 1024;
/// The longest single record; longer lines and messages are cut.
const MAX_RECORD: usize = 4 * 1024;
/// At most this many key/value fields are kept per log call.
pub(crate) const MAX_FIELDS: usize = 32;
/// Longest field key kept, in bytes.
const MAX_FIELD_KEY: usize = 256;
/// What every kept record costs on top of its text: its source, level and
/// the framing it is stored and served in (a JSON object with those keys
/// is about 50 bytes). It is what makes an empty line cost something.
pub const RECORD_OVERHEAD: usize = 64;
/// What every kept log field costs on top of its key and value.
pub const FIELD_OVERHEAD: usize = 16;
/// The most records a run keeps, whatever its budget: with the default
/// 64 KiB budget the framing charge stops at 1,024 records first; this
/// bounds hosts configured with a larger budget.
pub const MAX_RECORDS: usize = 16 * 1024;

/// Where a captured line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum LogSource {
    /// The guest's standard output.
    Stdout,
    /// The guest's standard error.
    Stderr,
    /// A call to the `log` host import.
    Log,
    /// A note added by the host (for example the truncation marker).
    Host,
}

/// Severity of a captured line. Stdout lines are `info`, stderr `warn`.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    /// Fine-grained tracing.
    Trace,
    /// Debugging detail.
    Debug,
    /// Normal operation.
    Info,
    /// Something unexpected.
    Warn,
    /// A failure.
    Error,
}

/// One captured line or log call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct LogRecord {
    /// Where it came from.
    pub source: LogSource,
    /// Its severity.
    pub level: LogLevel,
    /// The text, without a trailing newline.
    pub message: String,
    /// Key/value fields of a log call.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schema(value_type = Vec<Vec<String>>)]
    pub fields: Vec<(String, String)>,
}

#[derive(Debug)]
struct Inner {
    records: Vec<LogRecord>,
    used: usize,
    budget: usize,
    /// Set by the first record that does not fit; everything after it is
    /// dropped too.
    full: bool,
    dropped_bytes: u64,
    dropped_records: u64,
    /// Bytes of stdout and stderr not yet ended by a newline.
    partial: [Vec<u8>; 2],
    /// The run's granted secrets (name, value): redacted from what
    /// [`Capture::snapshot`] shows while the run goes (its report is
    /// scrubbed at the end).
    secrets: Vec<(String, String)>,
}

/// A run's capture buffer; cheap to clone, shared by the streams and the
/// log import of one store.
#[derive(Debug, Clone)]
pub(crate) struct Capture(Arc<Mutex<Inner>>);

impl Capture {
    pub(crate) fn new(budget: usize) -> Self {
        Self(Arc::new(Mutex::new(Inner {
            records: Vec::new(),
            used: 0,
            budget,
            full: false,
            dropped_bytes: 0,
            dropped_records: 0,
            partial: [Vec::new(), Vec::new()],
            secrets: Vec::new(),
        })))
    }

    /// Sets the secrets [`Capture::snapshot`] redacts.
    pub(crate) fn set_secrets(&self, secrets: &[(String, String)]) {
        self.lock().secrets = secrets.to_vec();
    }

    /// The records kept so far, from `offset`, at most `limit`, with the
    /// run's secrets redacted, and how many are kept in all: the logs of
    /// a run still going (`GET /runs/{run_id}/logs`). A line not yet ended
    /// by a newline is not shown until it is.
    pub(crate) fn snapshot(&self, offset: usize, limit: usize) -> (Vec<LogRecord>, usize) {
        let inner = self.lock();
        let mut records: Vec<LogRecord> = inner
            .records
            .iter()
            .skip(offset)
            .take(limit)
            .cloned()
            .collect();
        if !inner.secrets.is_empty() {
            for record in &mut records {
                super::grants::redact(&mut record.message, &inner.secrets);
                for (_, v) in &mut record.fields {
                    super::grants::redact(v, &inner.secrets);
                }
            }
        }
        (records, inner.records.len())
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A poisoned lock only means another thread panicked mid-push; the
        // records are still well-formed, so keep going.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records a log call from the guest. `fields` are the first fields the
    /// guest passed, each made by [`field`] (the caller copies at most
    /// [`MAX_FIELDS`] of them, and only what is kept of each), and
    /// `more_fields` how many it passed beyond those, noted in the record.
    pub(crate) fn log(
        &self,
        level: LogLevel,
        message: &str,
        mut fields: Vec<(String, String)>,
        more_fields: usize,
    ) {
        fields.truncate(MAX_FIELDS);
        if more_fields > 0 {
            fields.push((
                "[wasmcron]".to_owned(),
                format!("{more_fields} more fields not kept (at most {MAX_FIELDS} per call)"),
            ));
        }
        self.lock().push(LogRecord {
            source: LogSource::Log,
            level,
            message: cut(message, MAX_RECORD),
            fields,
        });
    }

    /// Whether the budget is spent: every further record is dropped, so a
    /// caller may skip copying one.
    pub(crate) fn is_full(&self) -> bool {
        self.lock().full
    }

    /// Counts a record the caller dropped without building it, because the
    /// capture [`is_full`](Self::is_full); `text_bytes` is its text length.
    pub(crate) fn count_dropped(&self, text_bytes: usize) {
        let mut inner = self.lock();
        inner.dropped_records += 1;
        inner.dropped_bytes += text_bytes as u64;
    }

    /// Records a note from the host about this run (a refused request, say),
    /// so it sits in the run's history beside the guest's own lines.
    pub(crate) fn note(&self, level: LogLevel, message: String) {
        self.lock().push(LogRecord {
            source: LogSource::Host,
            level,
            message: cut(&message, MAX_RECORD),
            fields: Vec::new(),
        });
    }

    /// Appends raw bytes written to stdout or stderr.
    fn write(&self, source: LogSource, bytes: &[u8]) {
        let idx = usize::from(source == LogSource::Stderr);
        let mut inner = self.lock();
        for &b in bytes {
            if b == b'\n' || inner.partial[idx].len() >= MAX_RECORD {
                let line = std::mem::take(&mut inner.partial[idx]);
                inner.push_line(source, &line);
                if b == b'\n' {
                    continue;
                }
            }
            inner.partial[idx].push(b);
        }
    }

    /// Ends the capture: flushes unterminated lines, adds the truncation
    /// marker, and returns the records and what was dropped.
    pub(crate) fn finish(&self) -> Captured {
        let mut inner = self.lock();
        for (idx, source) in [(0, LogSource::Stdout), (1, LogSource::Stderr)] {
            let line = std::mem::take(&mut inner.partial[idx]);
            if !line.is_empty() {
                inner.push_line(source, &line);
            }
        }
        if inner.dropped_records > 0 {
            let message = format!(
                "[wasmcron] {} bytes of output dropped ({} records): the run's log budget of {} \
                 bytes was used up (each record is charged its text plus {RECORD_OVERHEAD} bytes)",
                inner.dropped_bytes, inner.dropped_records, inner.budget
            );
            inner.records.push(LogRecord {
                source: LogSource::Host,
                level: LogLevel::Warn,
                message,
                fields: Vec::new(),
            });
        }
        Captured {
            records: std::mem::take(&mut inner.records),
            dropped_bytes: inner.dropped_bytes,
            dropped_records: inner.dropped_records,
        }
    }

    /// A WASI stdout or stderr stream that writes into this capture.
    pub(crate) fn stream(&self, source: LogSource) -> CaptureStream {
        CaptureStream {
            capture: self.clone(),
            source,
        }
    }

    /// The last Rust panic message on stderr (the "panicked at" line and
    /// the message line after it), to make a trap say why the guest aborted.
    pub(crate) fn panic_message(&self) -> Option<String> {
        let inner = self.lock();
        let partial = String::from_utf8_lossy(&inner.partial[1]).into_owned();
        let lines: Vec<&str> = inner
            .records
            .iter()
            .filter(|r| r.source == LogSource::Stderr)
            .map(|r| r.message.as_str())
            .chain(std::iter::once(partial.as_str()))
            .collect();
        let at = lines.iter().rposition(|l| l.contains("panicked at"))?;
        let mut message = lines[at].trim().to_owned();
        if let Some(next) = lines.get(at + 1).filter(|l| !l.trim().is_empty()) {
            message.push(' ');
            message.push_str(next.trim());
        }
        Some(message)
    }
}

/// What a finished capture kept and dropped.
#[derive(Debug, Default)]
pub(crate) struct Captured {
    /// The kept records, ending with the truncation marker if any were
    /// dropped.
    pub(crate) records: Vec<LogRecord>,
    /// Text bytes of the dropped records (their framing not counted).
    pub(crate) dropped_bytes: u64,
    /// How many records were dropped.
    pub(crate) dropped_records: u64,
}

impl Inner {
    fn push_line(&mut self, source: LogSource, line: &[u8]) {
        if self.full {
            // No copy of a line that will not be kept.
            let text = line.strip_suffix(b"\r").unwrap_or(line);
            self.dropped_records += 1;
            self.dropped_bytes += text.len() as u64;
            return;
        }
        let level = if source == LogSource::Stderr {
            LogLevel::Warn
        } else {
            LogLevel::Info
        };
        let text = String::from_utf8_lossy(line);
        let message = text.strip_suffix('\r').unwrap_or(&text).to_owned();
        self.push(LogRecord {
            source,
            level,
            message,
            fields: Vec::new(),
        });
    }

    fn push(&mut self, record: LogRecord) {
        let text = record.message.len()
            + record
                .fields
                .iter()
                .map(|(k, v)| k.len() + v.len())
                .sum::<usize>();
        let cost = text + RECORD_OVERHEAD + FIELD_OVERHEAD * record.fields.len();
        if self.full
            || self.records.len() >= MAX_RECORDS
            || self.used.saturating_add(cost) > self.budget
        {
            self.full = true;
            self.dropped_records += 1;
            self.dropped_bytes += text as u64;
        } else {
            self.used += cost;
            self.records.push(record);
        }
    }
}

/// A log field as it is kept: the key cut to 256 bytes, the value to 4 KiB.
/// Only the kept part is copied out of `key` and `value`.
pub(crate) fn field(key: &str, value: &str) -> (String, String) {
    (cut(key, MAX_FIELD_KEY), cut(value, MAX_RECORD))
}

/// Cuts `s` to at most `max` bytes on a character boundary, marking the cut.
fn cut(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…[cut {} bytes]", &s[..end], s.len() - end)
}

/// Stdout or stderr of one run.
#[derive(Debug, Clone)]
pub(crate) struct CaptureStream {
    capture: Capture,
    source: LogSource,
}

impl IsTerminal for CaptureStream {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for CaptureStream {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for CaptureStream {
    async fn ready(&mut self) {}
}

impl OutputStream for CaptureStream {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.capture.write(self.source, &bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        // Always ready: the capture never blocks, it drops past its budget.
        Ok(64 * 1024)
    }
}

impl tokio::io::AsyncWrite for CaptureStream {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.capture.write(self.source, buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_split_and_unterminated_tails_flushed() {
        let c = Capture::new(1024);
        c.write(LogSource::Stdout, b"one\ntw");
        c.write(LogSource::Stdout, b"o\nthree");
        c.write(LogSource::Stderr, b"err\r\n");
        let done = c.finish();
        let msgs: Vec<_> = done.records.iter().map(|r| r.message.as_str()).collect();
        assert_eq!(msgs, ["one", "two", "err", "three"]);
        assert_eq!(done.records[2].level, LogLevel::Warn);
        assert_eq!(done.dropped_records, 0);
    }

    #[test]
    fn output_past_the_budget_is_dropped_and_marked() {
        // Room for two 5-byte lines and their framing, not a third.
        let c = Capture::new(2 * (5 + RECORD_OVERHEAD) + 3);
        c.write(LogSource::Stdout, b"12345\n67890\nabcdef\nxy\n");
        let done = c.finish();
        assert_eq!(done.records.len(), 3);
        // Once full, everything after is dropped too, even what would fit.
        assert_eq!((done.dropped_bytes, done.dropped_records), (8, 2));
        assert_eq!(done.records[2].source, LogSource::Host);
        assert!(
            done.records[2]
                .message
                .contains("8 bytes of output dropped (2 records)"),
            "{}",
            done.records[2].message
        );
    }

    #[test]
    fn empty_records_cost_their_framing_and_their_number_is_bounded() {
        let c = Capture::new(DEFAULT_LOG_BUDGET);
        for _ in 0..50_000 {
            c.log(LogLevel::Info, "", Vec::new(), 0);
            c.write(LogSource::Stdout, b"\n");
        }
        let done = c.finish();
        let kept = DEFAULT_LOG_BUDGET / RECORD_OVERHEAD;
        // The kept records and the marker.
        assert_eq!(done.records.len(), kept + 1);
        assert_eq!(done.dropped_records, 100_000 - kept as u64);
        assert_eq!(done.dropped_bytes, 0);
        let marker = &done.records[kept].message;
        assert!(
            marker.contains(&format!("({} records)", 100_000 - kept)),
            "{marker}"
        );
    }

    #[test]
    fn record_count_is_capped_even_with_a_huge_budget() {
        let c = Capture::new(usize::MAX);
        for _ in 0..MAX_RECORDS + 10 {
            c.write(LogSource::Stderr, b"\n");
        }
        let done = c.finish();
        assert_eq!(done.records.len(), MAX_RECORDS + 1);
        assert_eq!(done.dropped_records, 10);
    }

    #[test]
    fn fields_are_charged_and_extra_fields_noted() {
        let c = Capture::new(DEFAULT_LOG_BUDGET);
        let fields = vec![field("k", &"v".repeat(100)); MAX_FIELDS];
        c.log(LogLevel::Info, "m", fields, 5);
        let done = c.finish();
        let record = &done.records[0];
        assert_eq!(record.fields.len(), MAX_FIELDS + 1);
        assert_eq!(
            record.fields[MAX_FIELDS].1,
            "5 more fields not kept (at most 32 per call)"
        );
        let inner = c.lock();
        assert!(inner.used >= RECORD_OVERHEAD + MAX_FIELDS * (101 + FIELD_OVERHEAD));
    }

    #[test]
    fn long_lines_and_messages_are_cut() {
        let c = Capture::new(1 << 20);
        c.write(LogSource::Stdout, &vec![b'x'; MAX_RECORD + 10]);
        c.log(LogLevel::Info, &"é".repeat(MAX_RECORD), Vec::new(), 0);
        let records = c.finish().records;
        // The log call lands before the stdout tail, which only ends at finish.
        assert_eq!(records[0].message.len(), MAX_RECORD);
        assert!(records[1].message.contains("…[cut"));
        assert_eq!(records[2].message, "x".repeat(10));
    }

    #[test]
    fn panic_message_is_found_on_stderr() {
        let c = Capture::new(1024);
        c.write(
            LogSource::Stderr,
            b"\nthread 'main' panicked at src/lib.rs:3:5:\nboom\n",
        );
        assert_eq!(
            c.panic_message().as_deref(),
            Some("thread 'main' panicked at src/lib.rs:3:5: boom")
        );
    }
}

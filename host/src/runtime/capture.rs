//! Bounded capture of a run's stdout, stderr and log calls.
//!
//! Everything a guest prints or logs lands in one per-run budget (64 KiB by
//! default). Past it, output is dropped *silently to the guest*: a capture
//! that returned write errors would crash guests whose `println!` panics on
//! failure. The report counts what was dropped and ends with a marker line.

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
const MAX_FIELDS: usize = 32;

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
    dropped: u64,
    /// Bytes of stdout and stderr not yet ended by a newline.
    partial: [Vec<u8>; 2],
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
            dropped: 0,
            partial: [Vec::new(), Vec::new()],
        })))
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A poisoned lock only means another thread panicked mid-push; the
        // records are still well-formed, so keep going.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records a log call from the guest.
    pub(crate) fn log(&self, level: LogLevel, message: &str, fields: Vec<(String, String)>) {
        let fields = fields
            .into_iter()
            .take(MAX_FIELDS)
            .map(|(k, v)| (cut(&k, 256), cut(&v, MAX_RECORD)))
            .collect();
        self.lock().push(LogRecord {
            source: LogSource::Log,
            level,
            message: cut(message, MAX_RECORD),
            fields,
        });
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
    /// marker, and returns the records and the dropped byte count.
    pub(crate) fn finish(&self) -> (Vec<LogRecord>, u64) {
        let mut inner = self.lock();
        for (idx, source) in [(0, LogSource::Stdout), (1, LogSource::Stderr)] {
            let line = std::mem::take(&mut inner.partial[idx]);
            if !line.is_empty() {
                inner.push_line(source, &line);
            }
        }
        if inner.dropped > 0 {
            let message = format!(
                "[wasmcron] {} bytes of output dropped: the run's log budget of {} bytes was used up",
                inner.dropped, inner.budget
            );
            inner.records.push(LogRecord {
                source: LogSource::Host,
                level: LogLevel::Warn,
                message,
                fields: Vec::new(),
            });
        }
        (std::mem::take(&mut inner.records), inner.dropped)
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

impl Inner {
    fn push_line(&mut self, source: LogSource, line: &[u8]) {
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
        let cost = record.message.len()
            + record
                .fields
                .iter()
                .map(|(k, v)| k.len() + v.len())
                .sum::<usize>();
        if self.used + cost > self.budget {
            self.dropped += cost as u64;
        } else {
            self.used += cost;
            self.records.push(record);
        }
    }
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
        let (records, dropped) = c.finish();
        let msgs: Vec<_> = records.iter().map(|r| r.message.as_str()).collect();
        assert_eq!(msgs, ["one", "two", "err", "three"]);
        assert_eq!(records[2].level, LogLevel::Warn);
        assert_eq!(dropped, 0);
    }

    #[test]
    fn output_past_the_budget_is_dropped_and_marked() {
        let c = Capture::new(10);
        c.write(LogSource::Stdout, b"12345\n67890\nabcdef\n");
        let (records, dropped) = c.finish();
        assert_eq!(records.len(), 3);
        assert_eq!(dropped, 6);
        assert_eq!(records[2].source, LogSource::Host);
        assert!(records[2].message.contains("6 bytes of output dropped"));
    }

    #[test]
    fn long_lines_and_messages_are_cut() {
        let c = Capture::new(1 << 20);
        c.write(LogSource::Stdout, &vec![b'x'; MAX_RECORD + 10]);
        c.log(LogLevel::Info, &"é".repeat(MAX_RECORD), Vec::new());
        let (records, _) = c.finish();
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

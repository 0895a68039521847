//! Tables for people, pretty JSON for scripts, written so that a reader
//! that goes away (`wasmcron cluster status | head -1`) ends the command
//! quietly instead of panicking as `println!` does.

use serde_json::Value;

/// `println!` that returns the write's error (an [`std::io::Result`])
/// instead of panicking on it: a closed pipe is [`is_closed_pipe`].
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        writeln!(std::io::stdout().lock(), $($arg)*)
    }};
}
pub(super) use out;

pub(super) fn text(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Prints rows under headers, columns padded to their widest cell.
pub(super) fn table(headers: &[&str], rows: &[Vec<String>]) -> std::io::Result<()> {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            // A width past u16::MAX panics in `format!`.
            .map(|(c, w)| format!("{c:<w$}", w = (*w).min(usize::from(u16::MAX))))
            .collect();
        out!("{}", padded.join("  ").trim_end())
    };
    line(headers.to_vec())?;
    for row in rows {
        line(row.iter().map(String::as_str).collect())?;
    }
    Ok(())
}

pub(super) fn print_json(v: &Value) -> anyhow::Result<()> {
    out!("{}", serde_json::to_string_pretty(v)?)?;
    Ok(())
}

/// Whether `err` is a write to stdout failing because its reader went
/// away (EPIPE; stdout's errors reach here as they are, with no context):
/// the command then ends quietly with success, as ripgrep and the
/// classic Unix tools do when `head` has read enough. A broken pipe
/// deeper in an error's causes (the HTTP connection) is not this.
pub(super) fn is_closed_pipe(err: &anyhow::Error) -> bool {
    err.downcast_ref::<std::io::Error>()
        .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_closed_pipe_is_told_apart_from_other_errors() {
        let pipe = anyhow::Error::from(std::io::Error::from(std::io::ErrorKind::BrokenPipe));
        assert!(is_closed_pipe(&pipe));
        let other = anyhow::Error::from(std::io::Error::from(std::io::ErrorKind::NotFound));
        assert!(!is_closed_pipe(&other));
        assert!(!is_closed_pipe(&anyhow::anyhow!("HTTP 500")));
        // A cause of another error (a transport's) is not stdout's.
        let deeper = anyhow::Error::from(std::io::Error::other(std::io::Error::from(
            std::io::ErrorKind::BrokenPipe,
        )));
        assert!(!is_closed_pipe(&deeper));
    }
}

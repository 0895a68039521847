//! The API under hostile clients, through the real binary: slow headers
//! (slowloris), idle kept-alive connections, thousands of connections at
//! once and oversized headers are shed or timed out, while the API keeps
//! answering and jobs keep firing.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};
use wasmcron_tests::host::{Host, count, eventually, setup_warm};

const BIN: &str = env!("CARGO_BIN_EXE_wasmcron");

const EVERY_SECOND: &str = r#"
[[jobs]]
id = "tick"
plugin = "hello"
args = { name = "tick" }
trigger = { type = "interval", every = "1s" }
"#;

/// `host:port` of the host's API (a first start compiles the plugins).
fn addr(host: &Host) -> String {
    host.api_url_within(Duration::from_secs(600))
        .trim_start_matches("http://")
        .to_owned()
}

/// Reads until the server closes the connection (or 60 s pass: a safety
/// net, not a timing assertion); returns what was read and whether the
/// server closed it.
fn read_until_closed(stream: &mut TcpStream) -> (String, bool) {
    let _ = stream.set_read_timeout(Some(Duration::from_millis(200)));
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while Instant::now() < deadline {
        match stream.read(&mut buf) {
            Ok(0) => return (String::from_utf8_lossy(&got).into_owned(), true),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            // A reset is the server closing too.
            Err(_) => return (String::from_utf8_lossy(&got).into_owned(), true),
        }
    }
    (String::from_utf8_lossy(&got).into_owned(), false)
}

/// One plain `GET path` on a new connection; the status code, or `None`
/// when the connection fails.
fn get_status(addr: &str, path: &str) -> Option<u16> {
    let mut s = TcpStream::connect(addr).ok()?;
    let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
    write!(
        s,
        "GET {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n"
    )
    .ok()?;
    let mut text = String::new();
    let _ = s.read_to_string(&mut text);
    text.split_whitespace().nth(1)?.parse().ok()
}

fn runs_of(dir: &std::path::Path, job: &str) -> i64 {
    count(
        dir,
        &format!("SELECT count(*) FROM runs WHERE job_id = '{job}' AND outcome_kind = 'succeeded'"),
    )
}

#[test]
fn slow_and_idle_clients_are_disconnected_and_big_headers_refused() {
    let dir = setup_warm(EVERY_SECOND, &["hello"]);
    let host = Host::start(BIN, dir.path(), &["--api-header-timeout", "1s"]);
    let addr = addr(&host);

    // Slowloris: a request line, then one header byte every 200 ms, never
    // finishing. The server must close it though bytes keep coming.
    let mut slow = TcpStream::connect(&addr).expect("connect");
    slow.write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\nx-slow: ")
        .expect("write");
    let _ = slow.set_read_timeout(Some(Duration::from_millis(200)));
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut closed = false;
    let mut buf = [0u8; 512];
    while Instant::now() < deadline {
        if slow.write_all(b"a").is_err() {
            closed = true;
            break;
        }
        match slow.read(&mut buf) {
            Ok(0) => {
                closed = true;
                break;
            }
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(_) => {
                closed = true;
                break;
            }
        }
    }
    assert!(
        closed,
        "a client trickling its headers was never disconnected"
    );

    // An idle kept-alive connection, after one answered request, is closed.
    let mut idle = TcpStream::connect(&addr).expect("connect");
    idle.write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n")
        .expect("write");
    let (answer, closed) = read_until_closed(&mut idle);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(closed, "an idle kept-alive connection was never closed");

    // A 100 KiB header block: 431, and the connection is closed.
    let mut big = TcpStream::connect(&addr).expect("connect");
    let filler = "a".repeat(100 * 1024);
    let _ = write!(
        big,
        "GET /healthz HTTP/1.1\r\nhost: x\r\nx-big: {filler}\r\n\r\n"
    );
    let (answer, closed) = read_until_closed(&mut big);
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer}");
    assert!(closed);

    // None of it hurt: the API answers and the job keeps firing.
    assert_eq!(get_status(&addr, "/healthz"), Some(200));
    let before = runs_of(dir.path(), "tick");
    eventually(&host, "more runs of the job", || {
        runs_of(dir.path(), "tick") > before
    });
}

#[test]
fn connections_past_the_cap_are_answered_503_and_the_host_keeps_serving() {
    let dir = setup_warm(EVERY_SECOND, &["hello"]);
    let host = Host::start(
        BIN,
        dir.path(),
        &[
            "--api-max-connections",
            "1000",
            "--api-header-timeout",
            "60s",
        ],
    );
    let addr = addr(&host);
    eventually(&host, "a first run", || runs_of(dir.path(), "tick") > 0);

    // Two thousand connections that send nothing: the first thousand are
    // held (until the header timeout), the rest told 503 and closed.
    let mut held = Vec::new();
    for _ in 0..2000 {
        match TcpStream::connect(&addr) {
            Ok(s) => held.push(s),
            Err(e) => panic!("connect failed after {} connections: {e}", held.len()),
        }
    }
    let mut refused = 0;
    for s in held.iter_mut().skip(1000) {
        let (answer, closed) = read_until_closed(s);
        if answer.starts_with("HTTP/1.1 503") && answer.contains("too_many_connections") {
            assert!(closed);
            refused += 1;
        }
    }
    // The listener may not have taken every late connection in order, so
    // count rather than index: at least the excess is refused.
    assert!(
        refused >= 900,
        "only {refused} of 1,000 connections past the cap were refused"
    );

    // Jobs keep firing while the cap is reached.
    let before = runs_of(dir.path(), "tick");
    eventually(&host, "runs while the API is full", || {
        runs_of(dir.path(), "tick") > before + 1
    });

    // Once the clients go, the API answers again.
    drop(held);
    eventually(&host, "the API to answer after the flood", || {
        get_status(&addr, "/healthz") == Some(200)
    });
}

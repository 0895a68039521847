//! A TCP proxy that makes one host's network to PostgreSQL go silent on
//! demand, for the cluster tests' partition.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};

/// A TCP proxy between one host and PostgreSQL that the test can
/// [`freeze`](FreezableProxy::freeze): no byte (nor end of stream) moves
/// in either direction while frozen, yet every socket stays open, so the
/// host sees a silent network, not a refusal or a reset. Connections
/// made while frozen are accepted and held too.
///
/// It can also freeze itself at the worst moment: inside a transaction
/// ([`FreezableProxy::freeze_in_transaction`]), the server holding what
/// the transaction took and waiting for a client it will never hear from.
///
/// One thread accepts; each connection has two threads, one per
/// direction, that read a chunk, wait while frozen, then write it.
#[derive(Debug)]
pub struct FreezableProxy {
    port: u16,
    gate: Arc<Gate>,
    stop: Arc<AtomicBool>,
    /// Both ends of every connection, to close them when dropped.
    sockets: Arc<Mutex<Vec<TcpStream>>>,
    /// The proxy's own port of each connection to PostgreSQL (its
    /// sessions' `client_port` in `pg_stat_activity`).
    upstream_ports: Arc<Mutex<Vec<u16>>>,
    acceptor: Option<std::thread::JoinHandle<()>>,
}

/// Open or frozen, and a wait for open.
#[derive(Debug, Default)]
struct Gate {
    frozen: Mutex<bool>,
    changed: Condvar,
    /// Freeze at the next reply that finds a session inside a transaction.
    armed: AtomicBool,
}

impl Gate {
    fn set(&self, frozen: bool) {
        *self.frozen.lock().unwrap_or_else(PoisonError::into_inner) = frozen;
        self.changed.notify_all();
    }

    fn is_frozen(&self) -> bool {
        *self.frozen.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn wait_open(&self) {
        let mut frozen = self.frozen.lock().unwrap_or_else(PoisonError::into_inner);
        while *frozen {
            frozen = self
                .changed
                .wait(frozen)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }
}

impl FreezableProxy {
    /// Listens on `127.0.0.1:0`, forwarding to `upstream` (`HOST:PORT`).
    ///
    /// # Panics
    /// When it cannot listen or `upstream` does not resolve.
    pub fn start(upstream: &str) -> Self {
        let upstream: SocketAddr = upstream
            .to_socket_addrs()
            .ok()
            .and_then(|mut a| a.next())
            .unwrap_or_else(|| panic!("cannot resolve {upstream}"));
        let listener = TcpListener::bind("127.0.0.1:0").expect("the proxy listens");
        let port = listener.local_addr().expect("the proxy's address").port();
        let gate = Arc::new(Gate::default());
        let stop = Arc::new(AtomicBool::new(false));
        let sockets = Arc::new(Mutex::new(Vec::new()));
        let upstream_ports = Arc::new(Mutex::new(Vec::new()));
        let acceptor = {
            let (gate, stop, sockets) = (gate.clone(), stop.clone(), sockets.clone());
            let ports = upstream_ports.clone();
            std::thread::spawn(move || {
                for client in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        return;
                    }
                    let Ok(client) = client else { continue };
                    let Ok(server) = TcpStream::connect(upstream) else {
                        // PostgreSQL refused: so does the proxy.
                        continue;
                    };
                    let _ = client.set_nodelay(true);
                    let _ = server.set_nodelay(true);
                    if let Ok(local) = server.local_addr() {
                        ports
                            .lock()
                            .unwrap_or_else(PoisonError::into_inner)
                            .push(local.port());
                    }
                    let clones = (
                        client.try_clone(),
                        server.try_clone(),
                        client.try_clone(),
                        server.try_clone(),
                    );
                    let (Ok(c2), Ok(s2), Ok(c3), Ok(s3)) = clones else {
                        continue;
                    };
                    sockets
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .extend([c3, s3]);
                    let g = gate.clone();
                    std::thread::spawn(move || pump(client, s2, &g, false));
                    let g = gate.clone();
                    std::thread::spawn(move || pump(server, c2, &g, true));
                }
            })
        };
        Self {
            port,
            gate,
            stop,
            sockets,
            upstream_ports,
            acceptor: Some(acceptor),
        }
    }

    /// The port it listens on (127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Stops moving bytes, both ways, on every connection (existing and
    /// new), keeping them open.
    pub fn freeze(&self) {
        self.gate.set(true);
    }

    /// Freezes (as [`FreezableProxy::freeze`]) as soon as PostgreSQL
    /// answers a statement inside a transaction, after its `BEGIN`: that
    /// answer is held, so the client never sends the `COMMIT` and the
    /// server keeps the transaction, and whatever it locked, open. See
    /// [`FreezableProxy::is_frozen`] for when it happened.
    pub fn freeze_in_transaction(&self) {
        self.gate.armed.store(true, Ordering::SeqCst);
    }

    /// Whether it is frozen now.
    pub fn is_frozen(&self) -> bool {
        self.gate.is_frozen()
    }

    /// The proxy's ports of its connections to PostgreSQL, which
    /// `pg_stat_activity.client_port` shows for the host's sessions.
    pub fn upstream_ports(&self) -> Vec<u16> {
        self.upstream_ports
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Moves bytes again, starting with those held.
    pub fn thaw(&self) {
        self.gate.armed.store(false, Ordering::SeqCst);
        self.gate.set(false);
    }
}

impl Drop for FreezableProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the acceptor so it sees `stop`, then end every connection
        // (the pumps see it and end) and let held bytes go.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        for s in self
            .sockets
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .drain(..)
        {
            let _ = s.shutdown(Shutdown::Both);
        }
        self.gate.set(false);
        if let Some(a) = self.acceptor.take() {
            let _ = a.join();
        }
    }
}

/// Copies `from` to `to`, holding each chunk (and the end of the stream)
/// while the gate is frozen. From the server (`replies`), it also watches
/// the transaction status in each ReadyForQuery message (`Z`, length 5,
/// then `I`dle, in `T`ransaction or `E`rror) and freezes the gate when
/// armed and the second `T` in a row comes: the first answers `BEGIN`,
/// the second a statement that ran inside the transaction.
fn pump(mut from: TcpStream, mut to: TcpStream, gate: &Gate, replies: bool) {
    let mut buf = vec![0u8; 64 * 1024];
    let mut in_transaction = 0u32;
    loop {
        let read = from.read(&mut buf);
        if let (true, Ok(n)) = (replies, &read) {
            for w in buf[..*n].windows(6).filter(|w| w[..5] == *b"Z\0\0\0\x05") {
                in_transaction = if w[5] == b'T' { in_transaction + 1 } else { 0 };
            }
            if in_transaction >= 2 && gate.armed.swap(false, Ordering::SeqCst) {
                gate.set(true);
            }
        }
        gate.wait_open();
        match read {
            Ok(0) => {
                let _ = to.shutdown(Shutdown::Write);
                return;
            }
            Ok(n) => {
                if to.write_all(&buf[..n]).is_err() {
                    let _ = from.shutdown(Shutdown::Both);
                    return;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => {
                let _ = to.shutdown(Shutdown::Both);
                return;
            }
        }
    }
}

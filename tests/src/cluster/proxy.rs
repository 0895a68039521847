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
/// One thread accepts; each connection has two threads, one per
/// direction, that read a chunk, wait while frozen, then write it.
#[derive(Debug)]
pub struct FreezableProxy {
    port: u16,
    gate: Arc<Gate>,
    stop: Arc<AtomicBool>,
    /// Both ends of every connection, to close them when dropped.
    sockets: Arc<Mutex<Vec<TcpStream>>>,
    acceptor: Option<std::thread::JoinHandle<()>>,
}

/// Open or frozen, and a wait for open.
#[derive(Debug, Default)]
struct Gate {
    frozen: Mutex<bool>,
    changed: Condvar,
}

impl Gate {
    fn set(&self, frozen: bool) {
        *self.frozen.lock().unwrap_or_else(PoisonError::into_inner) = frozen;
        self.changed.notify_all();
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
        let acceptor = {
            let (gate, stop, sockets) = (gate.clone(), stop.clone(), sockets.clone());
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
                    std::thread::spawn(move || pump(client, s2, &g));
                    let g = gate.clone();
                    std::thread::spawn(move || pump(server, c2, &g));
                }
            })
        };
        Self {
            port,
            gate,
            stop,
            sockets,
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

    /// Moves bytes again, starting with those held.
    pub fn thaw(&self) {
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
/// while the gate is frozen.
fn pump(mut from: TcpStream, mut to: TcpStream, gate: &Gate) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let read = from.read(&mut buf);
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

//! Where an allowlisted `wasi:http` request may connect: the SSRF check.
//!
//! Matching the allowlist by name is not enough: `https://api.example.com`
//! may resolve to `127.0.0.1` or `169.254.169.254` (a cloud's metadata
//! service), and a name the guest's owner controls may be made to. So
//! after the allowlist matched, the host resolves the name itself, drops
//! every address that is loopback, link-local, private, unspecified or
//! otherwise not a public unicast address ([`is_internal`]) unless
//!
//! - the job's allowlist names that literal address (`http://127.0.0.1:*`,
//!   `http://[::1]:8080`), or
//! - the operator started the host with `--allow-private-http`,
//!
//! and connects to one of the addresses it kept: [`send`] is handed the
//! checked socket addresses and never resolves again, so a DNS answer that
//! changes between the check and the connection (DNS rebinding) cannot
//! move the request. TLS still verifies the certificate against the name
//! in the URL.
//!
//! The sending itself follows wasmtime-wasi-http's `default_send_request`
//! (48.0.8), whose connection step resolves the name again and so could
//! not be used.

use http_body_util::BodyExt;
use hyper::body::Bytes;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;
use tokio::net::TcpStream;
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody};

/// Timeouts a request without `request-options` gets (wasmtime's own
/// defaults); the run's time limit bounds them anyway.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);

/// Whether `ip` is an address a job may not reach by name: loopback
/// (127/8, ::1), unspecified (0.0.0.0, ::), private (10/8, 172.16/12,
/// 192.168/16, fc00::/7), link-local (169.254/16, fe80::/10), shared
/// carrier-grade NAT (100.64/10), "this network" (0/8), benchmarking
/// (198.18/15), broadcast, multicast and the reserved 240/4. IPv4-mapped
/// and -compatible IPv6 addresses are judged as the IPv4 address they
/// carry.
pub fn is_internal(ip: IpAddr) -> bool {
    match ip.to_canonical() {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || a == 0
                || (a == 100 && (64..128).contains(&b))
                || (a == 198 && (b == 18 || b == 19))
                || a >= 240
        }
        IpAddr::V6(v6) => {
            let first = v6.segments()[0];
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
                // IPv4-compatible (::a.b.c.d, deprecated) and NAT64
                // (64:ff9b::/96) carry an IPv4 address that may be inside.
                || (v6.segments()[..6] == [0; 6])
                || (v6.segments()[..6] == [0x64, 0xff9b, 0, 0, 0, 0]
                    && is_internal(IpAddr::V4(std::net::Ipv4Addr::from_bits(
                        (u32::from(v6.segments()[6]) << 16) | u32::from(v6.segments()[7]),
                    ))))
        }
    }
}

/// The host as an allowlist entry writes a literal address: `127.0.0.1`,
/// `[::1]`.
pub fn literal(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => format!("[{v6}]"),
    }
}

/// The addresses `host` (as the URL has it: an IPv6 literal in brackets)
/// resolves to, port included; an IP literal is itself.
///
/// # Errors
/// [`Error::DnsError`] when the name does not resolve.
pub async fn resolve(host: &str, port: u16) -> Result<Vec<SocketAddr>, Error> {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = bare.parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    let found = tokio::net::lookup_host((bare, port))
        .await
        .map_err(|e| Error::DnsError {
            rcode: Some(e.to_string()),
            info_code: None,
        })?;
    Ok(found.collect())
}

/// The response and the future that drives its connection, as
/// `WasiHttpHooks::send_request` answers them.
pub type Sent = (
    http::Response<WasiBody>,
    Box<dyn Future<Output = Result<(), Error>> + Send>,
);

/// Sends `request` over a connection to the first of `addrs` that
/// accepts one (each already checked; none is resolved again), with TLS
/// for `https` verified against the URL's host name.
///
/// # Errors
/// The last connection error, a TLS failure, a timeout, or hyper's error.
pub async fn send(
    mut request: http::Request<WasiBody>,
    options: Option<RequestOptions>,
    addrs: Vec<SocketAddr>,
) -> Result<Sent, Error> {
    let uri = request.uri();
    let use_tls = uri.scheme() == Some(&http::uri::Scheme::HTTPS);
    let host = uri
        .host()
        .ok_or(Error::HttpRequestUriInvalid)?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let connect_timeout = options
        .and_then(|o| o.connect_timeout)
        .unwrap_or(DEFAULT_TIMEOUT);
    let first_byte_timeout = options
        .and_then(|o| o.first_byte_timeout)
        .unwrap_or(DEFAULT_TIMEOUT);
    let between_bytes_timeout = options
        .and_then(|o| o.between_bytes_timeout)
        .unwrap_or(DEFAULT_TIMEOUT)
        .max(Duration::from_nanos(1));
    let mut last = Error::ConnectionRefused;
    let mut stream = None;
    for addr in addrs {
        match tokio::time::timeout(connect_timeout, TcpStream::connect(addr)).await {
            Ok(Ok(s)) => {
                stream = Some(s);
                break;
            }
            Ok(Err(e)) => last = Error::Connect(e),
            Err(_) => last = Error::ConnectionTimeout,
        }
    }
    let stream = stream.ok_or(last)?;
    let io: Box<dyn Stream> = if use_tls {
        let roots = tokio_rustls::rustls::RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.into(),
        };
        let config = tokio_rustls::rustls::ClientConfig::builder()
            .with_root_certificates(roots)
            .with_no_client_auth();
        let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config));
        let name = match host.parse::<IpAddr>() {
            Ok(ip) => tokio_rustls::rustls::pki_types::ServerName::from(ip),
            Err(_) => tokio_rustls::rustls::pki_types::ServerName::try_from(host)?,
        };
        Box::new(connector.connect(name, stream).await.map_err(Error::Tls)?)
    } else {
        Box::new(stream)
    };
    let (mut sender, conn) = tokio::time::timeout(
        connect_timeout,
        hyper::client::conn::http1::Builder::new().handshake(hyper_util::rt::TokioIo::new(io)),
    )
    .await
    .map_err(|_| Error::ConnectionTimeout)??;
    // Only the path goes on the request line (the authority is the Host
    // header), as to any server that is not a proxy.
    let path = request
        .uri()
        .path_and_query()
        .map_or("/", http::uri::PathAndQuery::as_str)
        .to_owned();
    *request.uri_mut() = http::Uri::builder()
        .path_and_query(path)
        .build()
        .map_err(|_| Error::HttpRequestUriInvalid)?;
    let mut conn = Some(conn);
    let mut send = std::pin::pin!(async move {
        let response = tokio::time::timeout(first_byte_timeout, sender.send_request(request))
            .await
            .map_err(|_| Error::ConnectionReadTimeout)??;
        let mut timeout = tokio::time::interval(between_bytes_timeout);
        timeout.reset();
        Ok::<_, Error>(response.map(|incoming| Incoming { incoming, timeout }))
    });
    // Drive the connection while waiting for the response head.
    let response = std::future::poll_fn(|cx| match send.as_mut().poll(cx) {
        Poll::Ready(r) => Poll::Ready(r),
        Poll::Pending => {
            let Some(c) = conn.as_mut() else {
                return Poll::Pending;
            };
            let done = ready!(Pin::new(c).poll(cx));
            conn = None;
            match done {
                Ok(()) => send.as_mut().poll(cx),
                Err(e) => Poll::Ready(Err(Error::from(e))),
            }
        }
    })
    .await?;
    let driver = async move {
        match conn {
            Some(c) => c.await.map_err(|e| {
                if e.is_timeout() {
                    Error::HttpResponseTimeout
                } else {
                    Error::from(e)
                }
            }),
            None => Ok(()),
        }
    };
    Ok((
        response.map(BodyExt::boxed_unsync),
        Box::new(driver) as Box<dyn Future<Output = _> + Send>,
    ))
}

trait Stream: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static {}
impl<T> Stream for T where T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static {}

/// A response body whose frames may be at most the request's
/// `between-bytes-timeout` apart.
struct Incoming {
    incoming: hyper::body::Incoming,
    timeout: tokio::time::Interval,
}

impl http_body::Body for Incoming {
    type Data = Bytes;
    type Error = Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, Error>>> {
        match Pin::new(&mut self.incoming).poll_frame(cx) {
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(if e.is_timeout() {
                Error::HttpResponseTimeout
            } else {
                Error::from(e)
            }))),
            Poll::Ready(Some(Ok(frame))) => {
                self.timeout.reset();
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Pending => {
                ready!(self.timeout.poll_tick(cx));
                Poll::Ready(Some(Err(Error::ConnectionReadTimeout)))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.incoming.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.incoming.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_addresses_are_known() {
        for ip in [
            "127.0.0.1",
            "127.9.9.9",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "255.255.255.255",
            "224.0.0.1",
            "::1",
            "::",
            "fe80::1",
            "fc00::1",
            "fd12:3456::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "64:ff9b::a9fe:a9fe",
        ] {
            assert!(is_internal(ip.parse().unwrap()), "{ip}");
        }
        for ip in [
            "93.184.216.34",
            "8.8.8.8",
            "172.32.0.1",
            "100.128.0.1",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
        ] {
            assert!(!is_internal(ip.parse().unwrap()), "{ip}");
        }
    }

    #[test]
    fn literals_are_written_as_allowlists_write_them() {
        assert_eq!(literal("127.0.0.1".parse().unwrap()), "127.0.0.1");
        assert_eq!(literal("::1".parse().unwrap()), "[::1]");
    }
}

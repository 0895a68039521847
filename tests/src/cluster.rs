//! Several `wasmcron run` processes on one PostgreSQL database, for the
//! cluster tests: each host with its own folder, log, API port and name
//! (`--host-name node-N`, N its index), all with the same `--db` (directly, or through a [`FreezableProxy`] that
//! makes one host's network go silent on demand).
//!
//! What a test asks of a cluster: who leads (every live host's
//! `GET /cluster`, which must agree), how long a take-over took, and what
//! the `runs` table holds (doubles, per-second coverage, runs per host).
//! Failure messages carry [`Cluster::report`]: every host's view and the
//! tail of its log.
//!
//! Cluster tests start three hosts each, on a machine of two cores: they
//! run one at a time ([`Cluster::new`] holds a lock for the cluster's
//! life), so that one test's load does not bend another's timings.

use crate::host::{Host, prewarm, setup, setup_warm};
use crate::pg::TestDb;
use serde_json::Value;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

mod proxy;
mod sql;
mod view;

pub use proxy::FreezableProxy;
pub use sql::{
    coverage_faults, doubles, runs_per_host, seconds_without_success, show, ts, unexplained_gaps,
    whole_second,
};
use view::agreed_leader;
pub use view::{ClusterView, HostId, Leader};

/// The plugins every host has: `hello` (quick) and `slow` (sleeps for its
/// `millis` argument).
pub const PLUGINS: &[&str] = &["hello", "slow"];

/// Where every cluster test's interval jobs start: a whole second in the
/// past, so all of them fire on the same whole seconds.
pub const START: &str = "2020-01-01T00:00:00Z";

/// A jobs file: for each `(prefix, n, extra)`, `n` jobs `PREFIX-000`… of
/// plugin `hello` every second from [`START`], each with the TOML lines
/// `extra` (e.g. `coalesce = false`), keeping 1,000 runs of history.
pub fn jobs_file(groups: &[(&str, usize, &str)]) -> String {
    let mut file = String::from("version = 1\n");
    for (prefix, n, extra) in groups {
        for i in 0..*n {
            let _ = write!(
                file,
                "\n[[jobs]]\nid = \"{prefix}-{i:03}\"\nplugin = \"hello\"\n\
                 trigger = {{ type = \"interval\", every = \"1s\", start = \"{START}\" }}\n\
                 keep_runs = 1000\n{extra}\n"
            );
        }
    }
    file
}

/// One member: its folder (plugins, jobs file, cache, logs), the `--db` it
/// is given, and the process while it runs.
#[derive(Debug)]
struct Node {
    dir: tempfile::TempDir,
    db_url: String,
    host: Option<Host>,
    api: Option<String>,
    /// Every log this member wrote, one per start.
    logs: Vec<PathBuf>,
    /// Arguments of this member only (after the cluster's), e.g.
    /// `["--token", "T"]`.
    args: Vec<String>,
}

/// Small HTTP calls with a timeout, from sync tests.
#[derive(Debug)]
struct Http {
    rt: tokio::runtime::Runtime,
    client: reqwest::Client,
}

impl Http {
    fn new() -> Self {
        Self {
            rt: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime for HTTP calls"),
            // The hosts close a keep-alive connection after 10 s idle
            // (`--api-header-timeout`). This runtime is driven only
            // inside `block_on`, so a pooled connection's task never sees
            // the server's FIN between calls, and a request sent on it
            // fails with "error sending request". Connections idle for
            // more than 2 s are therefore not reused.
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(3))
                .pool_idle_timeout(Duration::from_secs(2))
                .build()
                .expect("an HTTP client"),
        }
    }

    fn send(
        &self,
        method: reqwest::Method,
        url: &str,
        body: Option<&Value>,
    ) -> Result<(u16, Value), String> {
        let mut req = Request::new(method);
        if let Some(b) = body {
            req.body = Some(serde_json::to_vec(b).map_err(|e| e.to_string())?);
            req.content_type = "application/json";
        }
        self.send_request(url, &req)
    }

    fn send_request(&self, url: &str, r: &Request<'_>) -> Result<(u16, Value), String> {
        let method = r.method.clone();
        self.rt.block_on(async {
            let mut req = self.client.request(method.clone(), url).timeout(r.timeout);
            if let Some(b) = &r.body {
                req = req.header("content-type", r.content_type).body(b.clone());
            }
            if let Some(t) = r.token {
                req = req.bearer_auth(t);
            }
            let resp = req
                .send()
                .await
                .map_err(|e| format!("{method} {url}: {e}"))?;
            let status = resp.status().as_u16();
            let text = resp
                .text()
                .await
                .map_err(|e| format!("{method} {url}: reading the body: {e}"))?;
            Ok((
                status,
                serde_json::from_str(&text).unwrap_or(Value::String(text)),
            ))
        })
    }
}

/// One HTTP request to a host, for [`Cluster::request`]: a method, an
/// optional body, an optional bearer token and a timeout (3 s unless
/// set).
#[derive(Debug, Clone)]
pub struct Request<'a> {
    method: reqwest::Method,
    body: Option<Vec<u8>>,
    content_type: &'a str,
    token: Option<&'a str>,
    timeout: Duration,
}

impl<'a> Request<'a> {
    /// A request with no body, no token and a 3 s timeout.
    pub fn new(method: reqwest::Method) -> Self {
        Self {
            method,
            body: None,
            content_type: "application/octet-stream",
            token: None,
            timeout: Duration::from_secs(3),
        }
    }

    /// `PUT` with the raw `bytes` as body (`application/octet-stream`).
    pub fn put_bytes(bytes: Vec<u8>) -> Self {
        let mut r = Self::new(reqwest::Method::PUT);
        r.body = Some(bytes);
        r
    }

    /// `PUT` of `body` as JSON.
    pub fn put_json(body: &Value) -> Self {
        let mut r = Self::new(reqwest::Method::PUT);
        r.body = Some(body.to_string().into_bytes());
        r.content_type = "application/json";
        r
    }

    /// With `Authorization: Bearer TOKEN`.
    #[must_use]
    pub fn token(mut self, token: &'a str) -> Self {
        self.token = Some(token);
        self
    }

    /// Waiting up to `limit` for the answer (a pushed plugin is compiled
    /// before the answer: a debug cranelift takes a while).
    #[must_use]
    pub fn timeout(mut self, limit: Duration) -> Self {
        self.timeout = limit;
        self
    }
}

/// One server-sent event: its `event:` name and its `data:` (JSON when it
/// parses, else the text).
#[derive(Debug, Clone)]
pub struct Sse {
    /// The `event:` line (`message` when there is none).
    pub event: String,
    /// The `data:` lines, joined, as JSON when they parse.
    pub data: Value,
}

/// Splits `text` into complete server-sent events (those ended by a blank
/// line); returns them and what is left of an incomplete one.
fn parse_sse(text: &str) -> (Vec<Sse>, String) {
    let mut events = Vec::new();
    let mut rest = text;
    while let Some(end) = rest.find("\n\n") {
        let block = &rest[..end];
        rest = &rest[end + 2..];
        let mut name = None;
        let mut data = Vec::new();
        for line in block.lines() {
            if let Some(v) = line.strip_prefix("event:") {
                name = Some(v.trim().to_owned());
            } else if let Some(v) = line.strip_prefix("data:") {
                data.push(v.strip_prefix(' ').unwrap_or(v));
            }
        }
        if name.is_none() && data.is_empty() {
            continue; // a comment (keep-alive)
        }
        let data = data.join("\n");
        events.push(Sse {
            event: name.unwrap_or_else(|| "message".to_owned()),
            data: serde_json::from_str(&data).unwrap_or(Value::String(data)),
        });
    }
    (events, rest.to_owned())
}

/// Cluster tests run one at a time (see the module docs).
static SERIAL: Mutex<()> = Mutex::new(());

/// Hosts on one fresh PostgreSQL database; every host is killed when this
/// is dropped, then the database is dropped.
#[derive(Debug)]
pub struct Cluster {
    bin: &'static str,
    jobs: String,
    args: Vec<String>,
    nodes: Vec<Node>,
    proxies: Vec<FreezableProxy>,
    http: Http,
    db: TestDb,
    _serial: MutexGuard<'static, ()>,
}

impl Cluster {
    /// A cluster with no host yet: a fresh database; every host will get
    /// the jobs file `jobs` and the extra arguments `args` (e.g.
    /// `["--lease", "3s"]`).
    ///
    /// # Panics
    /// When PostgreSQL is not reachable.
    pub fn new(bin: &'static str, jobs: &str, args: &[&str]) -> Self {
        let serial = SERIAL.lock().unwrap_or_else(PoisonError::into_inner);
        Self {
            bin,
            jobs: jobs.to_owned(),
            args: args.iter().map(|a| (*a).to_owned()).collect(),
            nodes: Vec::new(),
            proxies: Vec::new(),
            http: Http::new(),
            db: TestDb::create(),
            _serial: serial,
        }
    }

    /// [`Cluster::new`] with `n` hosts started on the database directly,
    /// each serving its API.
    ///
    /// # Panics
    /// As [`Cluster::new`] and [`Cluster::add_host`].
    pub fn start(bin: &'static str, n: usize, jobs: &str, args: &[&str]) -> Self {
        let mut cluster = Self::new(bin, jobs, args);
        for _ in 0..n {
            cluster.add_host();
        }
        cluster.check_distinct_names();
        cluster
    }

    /// The database all hosts share.
    pub fn db(&self) -> &TestDb {
        &self.db
    }

    /// How many hosts (running or not).
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether there is no host.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// Starts one more host on the database directly; returns its index
    /// once its API answers.
    ///
    /// # Panics
    /// When it does not start or never serves its API.
    pub fn add_host(&mut self) -> usize {
        let url = self.db.url().to_owned();
        self.add_node(url)
    }

    /// Starts one more host whose every connection to PostgreSQL passes
    /// through a [`FreezableProxy`] of its own; returns its index (the
    /// proxy is [`Cluster::proxy`] of it).
    ///
    /// # Panics
    /// As [`Cluster::add_host`], or when the proxy cannot listen.
    pub fn add_host_via_proxy(&mut self) -> (usize, &FreezableProxy) {
        let (server, (before, after)) = split_db_url(self.db.url());
        let proxy = FreezableProxy::start(&server);
        let url = format!("{before}127.0.0.1:{}{after}", proxy.port());
        self.proxies.push(proxy);
        let i = self.add_node(url);
        let proxy = self.proxies.last().expect("the proxy just added");
        (i, proxy)
    }

    /// Starts one more host on the database directly whose plugins folder
    /// holds `files` (`(name, built plugin)`: `("hello", "counter")` puts
    /// the built `counter` as `hello.wasm`) instead of [`PLUGINS`], whose
    /// compile cache already holds the built plugins `warm` (so files that
    /// arrive later load without a compile), and with the extra arguments
    /// `args` (after the cluster's; kept for restarts). Returns its index
    /// once its API answers.
    ///
    /// # Panics
    /// As [`Cluster::add_host`], or for an unknown plugin.
    pub fn add_host_with(&mut self, files: &[(&str, &str)], warm: &[&str], args: &[&str]) -> usize {
        let dir = setup(&self.jobs, &[]);
        let folder = dir.path().join("plugins");
        for (name, source) in files {
            std::fs::copy(plugin_path(source), folder.join(format!("{name}.wasm")))
                .expect("copy plugin");
        }
        prewarm(dir.path(), warm);
        let url = self.db.url().to_owned();
        self.push_node(dir, url, args)
    }

    fn add_node(&mut self, db_url: String) -> usize {
        let dir = setup_warm(&self.jobs, PLUGINS);
        self.push_node(dir, db_url, &[])
    }

    fn push_node(&mut self, dir: tempfile::TempDir, db_url: String, args: &[&str]) -> usize {
        self.nodes.push(Node {
            dir,
            db_url,
            host: None,
            api: None,
            logs: Vec::new(),
            args: args.iter().map(|a| (*a).to_owned()).collect(),
        });
        let i = self.nodes.len() - 1;
        self.restart(i);
        i
    }

    /// Starts host `i` again (after [`Cluster::kill9`] or
    /// [`Cluster::sigterm`]) with the same folder, database URL and
    /// arguments; returns once its API answers.
    ///
    /// # Panics
    /// When it is running, or does not come up.
    pub fn restart(&mut self, i: usize) {
        // Hosts on one machine need names of their own (`runs.host`); the
        // same name again on a restart, as a machine keeps its own.
        let name = format!("node-{i}");
        let mut args: Vec<String> = vec!["--host-name".to_owned(), name];
        args.extend(self.args.iter().cloned());
        args.extend(self.nodes[i].args.iter().cloned());
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let node = &mut self.nodes[i];
        assert!(node.host.is_none(), "host {i} is still running");
        let host = Host::start_with_db_url(self.bin, node.dir.path(), &node.db_url, &args);
        node.logs.push(host.log_path().to_owned());
        // A first start may compile with a debug cranelift on a loaded
        // machine: minutes, at worst. A host that gave up says `error:`.
        let deadline = Instant::now() + Duration::from_secs(180);
        let api = loop {
            let log = host.log();
            if let Some(addr) = api_addr(&log) {
                break addr;
            }
            assert!(
                !log.lines().any(|l| l.starts_with("error")) && Instant::now() < deadline,
                "host {i} did not come up:\n{log}"
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        node.host = Some(host);
        node.api = Some(api);
    }

    /// Whether host `i` is running (as far as this cluster knows: not
    /// killed or stopped through it).
    pub fn is_running(&self, i: usize) -> bool {
        self.nodes[i].host.is_some()
    }

    /// The running hosts' indexes.
    pub fn running(&self) -> Vec<usize> {
        (0..self.nodes.len())
            .filter(|&i| self.is_running(i))
            .collect()
    }

    /// Host `i`'s API base URL (`http://127.0.0.1:PORT`).
    ///
    /// # Panics
    /// When it is not running.
    pub fn api(&self, i: usize) -> &str {
        self.nodes[i]
            .api
            .as_deref()
            .unwrap_or_else(|| panic!("host {i} is not running"))
    }

    /// The proxy in front of the `n`th host started through one.
    ///
    /// # Panics
    /// When there is none.
    pub fn proxy(&self, n: usize) -> &FreezableProxy {
        self.proxies
            .get(n)
            .unwrap_or_else(|| panic!("no proxy {n}"))
    }

    /// `kill -9` host `i` (and reap it).
    ///
    /// # Panics
    /// When it is not running.
    pub fn kill9(&mut self, i: usize) {
        let node = &mut self.nodes[i];
        let mut host = node
            .host
            .take()
            .unwrap_or_else(|| panic!("host {i} is not running"));
        host.kill();
        node.api = None;
    }

    /// Sends SIGTERM to host `i` and returns at once (see
    /// [`Cluster::wait_exit`]).
    ///
    /// # Panics
    /// When it is not running.
    pub fn sigterm(&self, i: usize) {
        self.nodes[i]
            .host
            .as_ref()
            .unwrap_or_else(|| panic!("host {i} is not running"))
            .signal("-TERM");
    }

    /// Waits (60 s at most) for host `i` to exit after a signal.
    ///
    /// # Panics
    /// When it is not running or does not exit.
    pub fn wait_exit(&mut self, i: usize) -> std::process::ExitStatus {
        let node = &mut self.nodes[i];
        node.api = None;
        node.host
            .take()
            .unwrap_or_else(|| panic!("host {i} is not running"))
            .wait()
    }

    /// `GET path` on host `i`.
    ///
    /// # Errors
    /// When the request fails or times out (3 s).
    pub fn get(&self, i: usize, path: &str) -> Result<(u16, Value), String> {
        let url = format!("{}{path}", self.api(i));
        self.http.send(reqwest::Method::GET, &url, None)
    }

    /// `POST path` with the JSON `body` on host `i`.
    ///
    /// # Errors
    /// When the request fails or times out (3 s).
    pub fn post(&self, i: usize, path: &str, body: &Value) -> Result<(u16, Value), String> {
        let url = format!("{}{path}", self.api(i));
        self.http.send(reqwest::Method::POST, &url, Some(body))
    }

    /// `DELETE path` on host `i`.
    ///
    /// # Errors
    /// When the request fails or times out (3 s).
    pub fn delete(&self, i: usize, path: &str) -> Result<(u16, Value), String> {
        let url = format!("{}{path}", self.api(i));
        self.http.send(reqwest::Method::DELETE, &url, None)
    }

    /// `request` on `path` of host `i`; the answer's status and body (JSON
    /// when it parses, else the text).
    ///
    /// # Errors
    /// When the request fails or times out.
    pub fn request(
        &self,
        i: usize,
        path: &str,
        request: &Request<'_>,
    ) -> Result<(u16, Value), String> {
        let url = format!("{}{path}", self.api(i));
        self.http.send_request(&url, request)
    }

    /// Reads host `i`'s server-sent events at `path` (e.g. `/events`) for
    /// `during`, then hangs up; the events that arrived whole.
    ///
    /// # Errors
    /// When the request fails or is not answered 200.
    pub fn events(&self, i: usize, path: &str, during: Duration) -> Result<Vec<Sse>, String> {
        let url = format!("{}{path}", self.api(i));
        self.http.rt.block_on(async {
            let client = reqwest::Client::new();
            let mut resp = tokio::time::timeout(during, client.get(&url).send())
                .await
                .map_err(|_| format!("GET {url}: no answer within {during:?}"))?
                .map_err(|e| format!("GET {url}: {e}"))?;
            if resp.status() != reqwest::StatusCode::OK {
                return Err(format!("GET {url}: {}", resp.status()));
            }
            let deadline = tokio::time::Instant::now() + during;
            let mut text = String::new();
            let mut events = Vec::new();
            while let Ok(chunk) = tokio::time::timeout_at(deadline, resp.chunk()).await {
                match chunk {
                    Ok(Some(bytes)) => {
                        text.push_str(&String::from_utf8_lossy(&bytes));
                        let (whole, rest) = parse_sse(&text);
                        events.extend(whole);
                        text = rest;
                    }
                    Ok(None) => break,
                    Err(e) => return Err(format!("GET {url}: reading the stream: {e}")),
                }
            }
            Ok(events)
        })
    }

    /// Host `i`'s plugins folder.
    pub fn plugins_dir(&self, i: usize) -> PathBuf {
        self.nodes[i].dir.path().join("plugins")
    }

    /// Host `i`'s own folder (its plugins folder's parent).
    pub fn dir(&self, i: usize) -> &std::path::Path {
        self.nodes[i].dir.path()
    }

    /// Runs the wasmcron binary with `args` (a CLI client command: `--url`
    /// is the caller's) and waits for it (60 s at most).
    ///
    /// # Panics
    /// When it cannot be started or does not end.
    pub fn cli(&self, args: &[&str]) -> std::process::Output {
        let mut child = std::process::Command::new(self.bin)
            .args(args)
            .env_remove("WASMCRON_URL")
            .env_remove("WASMCRON_TOKEN")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("start the wasmcron CLI");
        let deadline = Instant::now() + Duration::from_secs(60);
        while child.try_wait().expect("wait for the CLI").is_none() {
            if Instant::now() > deadline {
                let _ = child.kill();
                let out = child.wait_with_output().expect("the CLI's output");
                panic!(
                    "wasmcron {args:?} did not end within 60 s: {}\n{}",
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        child.wait_with_output().expect("the CLI's output")
    }

    /// Host `i`'s `GET /cluster`.
    ///
    /// # Errors
    /// When it does not answer 200 with the expected JSON.
    pub fn view(&self, i: usize) -> Result<ClusterView, String> {
        let (status, body) = self.get(i, "/cluster")?;
        if status != 200 {
            return Err(format!("GET /cluster on host {i}: {status} {body}"));
        }
        serde_json::from_value(body.clone())
            .map_err(|e| format!("GET /cluster on host {i}: {e}: {body}"))
    }

    /// Every running host's name, by index (from `GET /cluster`).
    ///
    /// # Panics
    /// When a host does not answer.
    pub fn names(&self) -> Vec<(usize, String)> {
        self.running()
            .into_iter()
            .map(|i| match self.view(i) {
                Ok(v) => (i, v.host.name),
                Err(e) => panic!("{e}\n{}", self.report()),
            })
            .collect()
    }

    /// Host `i`'s name.
    ///
    /// # Panics
    /// When it does not answer.
    pub fn name(&self, i: usize) -> String {
        match self.view(i) {
            Ok(v) => v.host.name,
            Err(e) => panic!("{e}\n{}", self.report()),
        }
    }

    /// Runs rows say which host ran them by name: hosts on one machine
    /// must not share one.
    fn check_distinct_names(&self) {
        let names = self.names();
        let mut sorted: Vec<&str> = names.iter().map(|(_, n)| n.as_str()).collect();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(
            sorted.len(),
            names.len(),
            "hosts on one machine share a name ({names:?}): runs.host cannot tell them apart\n{}",
            self.report()
        );
    }

    /// The leader among the running hosts, once they agree: exactly one
    /// says `is_leader`, every one names it (same host id and term), and
    /// its own id is that host id. Polls up to 30 s (a safety net; tests
    /// that bound a take-over use [`Cluster::wait_new_leader`]).
    ///
    /// # Panics
    /// When they do not agree in time.
    pub fn leader(&self) -> (usize, Leader) {
        self.leader_among(&self.running())
    }

    /// [`Cluster::leader`] over the hosts `among` only (e.g. leaving out a
    /// frozen one).
    ///
    /// # Panics
    /// When they do not agree within 30 s.
    pub fn leader_among(&self, among: &[usize]) -> (usize, Leader) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let views: Vec<_> = among.iter().map(|&i| (i, self.view(i))).collect();
            match agreed_leader(&views) {
                Ok(found) => return found,
                Err(why) => assert!(
                    Instant::now() < deadline,
                    "the hosts {among:?} do not agree on one leader: {why}\n{}",
                    self.report()
                ),
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Polls the hosts `among` until one of them says it leads with a
    /// term above `above_term` (and its own id is the leader's); returns
    /// it and how long that took from `since`. Gives up at `since +
    /// within`.
    ///
    /// # Errors
    /// When none did in time: what each host said last.
    pub fn wait_new_leader(
        &self,
        among: &[usize],
        above_term: i64,
        since: Instant,
        within: Duration,
    ) -> Result<(usize, Leader, Duration), String> {
        let mut last = Vec::new();
        loop {
            last.clear();
            for &i in among {
                let view = self.view(i);
                if let Ok(v) = &view
                    && v.is_leader
                    && let Some(l) = &v.leader
                    && l.term > above_term
                    && l.host_id == v.host.id
                {
                    return Ok((i, l.clone(), since.elapsed()));
                }
                last.push((i, view));
            }
            if since.elapsed() > within {
                return Err(format!(
                    "no host of {among:?} led with a term above {above_term} within {within:?} \
                     (last views: {last:#?})"
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Polls `check` every 100 ms for up to `limit`.
    ///
    /// # Panics
    /// When it does not hold in time, with [`Cluster::report`].
    pub fn wait_for(&self, what: &str, limit: Duration, check: impl Fn() -> bool) {
        let deadline = Instant::now() + limit;
        while !check() {
            assert!(
                Instant::now() < deadline,
                "timed out after {limit:?} waiting for {what}\n{}",
                self.report()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The last `lines` lines of every log host `i` wrote (all starts).
    pub fn log_tail(&self, i: usize, lines: usize) -> String {
        let mut out = String::new();
        for path in &self.nodes[i].logs {
            let text = std::fs::read_to_string(path).unwrap_or_default();
            let all: Vec<&str> = text.lines().collect();
            let from = all.len().saturating_sub(lines);
            let _ = writeln!(
                out,
                "--- {} (last {} of {} lines)",
                path.display(),
                all.len() - from,
                all.len()
            );
            for line in &all[from..] {
                let _ = writeln!(out, "{line}");
            }
        }
        out
    }

    /// Lines of host `i`'s logs (every start) that contain `needle`.
    pub fn log_lines(&self, i: usize, needle: &str) -> Vec<String> {
        self.nodes[i]
            .logs
            .iter()
            .flat_map(|p| {
                std::fs::read_to_string(p)
                    .unwrap_or_default()
                    .lines()
                    .filter(|l| l.contains(needle))
                    .map(str::to_owned)
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    /// What a failure message needs: each host's `GET /cluster` (running
    /// ones), the runs per host, and each host's log tail.
    pub fn report(&self) -> String {
        let mut out = String::from("==== cluster report\n");
        for i in 0..self.nodes.len() {
            let state = if self.is_running(i) {
                match self.get(i, "/cluster") {
                    Ok((s, v)) => format!("{s} {v}"),
                    Err(e) => e,
                }
            } else {
                "not running".to_owned()
            };
            let _ = writeln!(out, "host {i} ({}): {state}", self.nodes[i].db_url);
        }
        let _ = writeln!(
            out,
            "runs per host and status: {}",
            show(&runs_per_host(&self.db))
        );
        let _ = writeln!(
            out,
            "leader_lease: {}",
            show(&self.db.rows(
                "SELECT term::text, holder, holder_name, expires_at::text, now()::text
                   FROM leader_lease"
            ))
        );
        // Sessions of the hosts: one open transaction of a cut-off host
        // can hold what another waits for.
        let _ = writeln!(
            out,
            "sessions (pid | client port | state | waiting on | since | query): {}",
            show(&self.db.rows(
                "SELECT pid::text, coalesce(client_port::text, '-'), coalesce(state, '-'),
                        coalesce(wait_event_type || ':' || wait_event, '-'),
                        coalesce((now() - xact_start)::text, '-'),
                        left(regexp_replace(query, '\\s+', ' ', 'g'), 120)
                   FROM pg_stat_activity
                  WHERE datname = current_database() AND pid <> pg_backend_pid()
                  ORDER BY xact_start NULLS LAST"
            ))
        );
        for i in 0..self.nodes.len() {
            let _ = writeln!(out, "==== host {i} log\n{}", self.log_tail(i, 40));
        }
        out
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        // Hosts first (their Drop kills them), then the proxies, then the
        // database (dropped WITH FORCE).
        for node in &mut self.nodes {
            node.host.take();
        }
        self.proxies.clear();
    }
}

/// The path of the built test plugin `name`.
///
/// # Panics
/// When there is none.
pub fn plugin_path(name: &str) -> &'static str {
    crate::plugins::ALL
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, p)| *p)
        .unwrap_or_else(|| panic!("no built plugin {name}"))
}

/// The API's base URL, once a host's JSON log says where it listens.
fn api_addr(log: &str) -> Option<String> {
    log.lines().find_map(|line| {
        let v: Value = serde_json::from_str(line).ok()?;
        Some(format!("http://{}", v["fields"]["addr"].as_str()?))
    })
}

/// `postgres://user@HOST:PORT/db` → (`HOST:PORT`, (`postgres://user@`,
/// `/db`)).
fn split_db_url(url: &str) -> (String, (String, String)) {
    let scheme_end = url.find("://").map_or(0, |p| p + 3);
    let auth_start = url[scheme_end..]
        .find('/')
        .map_or(url.len(), |p| scheme_end + p);
    let host_start = url[scheme_end..auth_start]
        .rfind('@')
        .map_or(scheme_end, |p| scheme_end + p + 1);
    (
        url[host_start..auth_start].to_owned(),
        (url[..host_start].to_owned(), url[auth_start..].to_owned()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_sent_events_split_on_blank_lines() {
        let (events, rest) = parse_sse(
            ": keep-alive\n\nevent: run-succeeded\ndata: {\"host\":\"a\"}\n\nevent: x\ndata: 1",
        );
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].event, "run-succeeded");
        assert_eq!(events[0].data["host"], "a");
        assert_eq!(rest, "event: x\ndata: 1");
    }

    #[test]
    fn a_db_url_splits_around_its_server() {
        assert_eq!(
            split_db_url("postgres://postgres@127.0.0.1:5432/test"),
            (
                "127.0.0.1:5432".to_owned(),
                ("postgres://postgres@".to_owned(), "/test".to_owned())
            )
        );
        assert_eq!(
            split_db_url("postgres://u:p@db:5433/x?a=b"),
            (
                "db:5433".to_owned(),
                ("postgres://u:p@".to_owned(), "/x?a=b".to_owned())
            )
        );
    }
}

//! A real headless Chromium driven through chromedriver (WebDriver), for
//! the dashboard's end-to-end tests (`tests/tests/dashboard.rs`).
//!
//! Each [`Browser`] starts its own `chromedriver` on a free loopback port,
//! in a process group of its own with a private `TMPDIR` (where chromedriver
//! puts the browser's profile), and opens one session on it. Dropping the
//! `Browser` kills the whole group, so neither chromedriver nor Chromium
//! outlives a test, even a failed one, and removes the profile.
//!
//! Every helper panics with a message fit for a test report: a wait that
//! times out says what it waited for, the page's URL, the path of a
//! screenshot taken at that moment, the start of the page's text and the
//! browser console's messages so far.
//!
//! When Chromium or chromedriver is not installed, [`Browser::launch`]
//! returns `None` after a loud `SKIPPED` line on stderr, so `cargo test
//! --workspace` still passes for someone with only rustup; with
//! `WASMCRON_REQUIRE_BROWSER=1` (CI sets it) it panics instead.

use base64::Engine as _;
use fantoccini::elements::Element;
use fantoccini::wd::{Capabilities, WebDriverCompatibleCommand};
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};
use std::future::Future;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a wait polls before it gives up: a safety net for a debug
/// build on a loaded 2-core machine, not a performance bound.
pub const WAIT: Duration = Duration::from_secs(30);

/// How often a wait polls its condition.
pub const POLL: Duration = Duration::from_millis(50);

/// The variable that turns a missing browser from a skip into a failure.
pub const REQUIRE_ENV: &str = "WASMCRON_REQUIRE_BROWSER";

/// The Chrome command-line switches every session gets: headless, no
/// sandbox (containers and root, as in CI), no GPU, `/tmp` instead of a
/// small `/dev/shm`, a desktop-sized window and English formatting.
const CHROME_ARGS: &[&str] = &[
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--window-size=1280,900",
    "--lang=en-US",
];

/// One message of the browser's console (or a failed resource load, which
/// Chrome logs there too), as chromedriver reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsoleMessage {
    /// `SEVERE` (errors), `WARNING`, `INFO` or `DEBUG`.
    pub level: String,
    /// Where it came from (`console-api`, `network`, `javascript`…).
    pub source: String,
    /// The text, prefixed by Chrome with the script's URL and position.
    pub message: String,
}

impl ConsoleMessage {
    /// One entry of chromedriver's log.
    fn from_json(e: &Value) -> Self {
        Self {
            level: e["level"].as_str().unwrap_or_default().to_owned(),
            source: e["source"].as_str().unwrap_or_default().to_owned(),
            message: e["message"].as_str().unwrap_or_default().to_owned(),
        }
    }

    /// Whether it is an error (`console.error`, an uncaught exception, a
    /// failed request).
    pub fn is_error(&self) -> bool {
        self.level == "SEVERE"
    }
}

impl std::fmt::Display for ConsoleMessage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "[{} {}] {}", self.level, self.source, self.message)
    }
}

/// A headless Chromium session; see the module's documentation.
#[derive(Debug)]
pub struct Browser {
    client: Client,
    driver: Child,
    driver_log: PathBuf,
    shots: PathBuf,
    /// Console messages read so far: chromedriver hands each out once.
    console: Mutex<Vec<ConsoleMessage>>,
    /// The private `TMPDIR` of chromedriver and Chromium; removed on drop.
    _tmp: tempfile::TempDir,
}

impl Browser {
    /// Starts chromedriver and a headless Chromium session, saving
    /// screenshots into `shots` (a test passes
    /// `concat!(env!("CARGO_TARGET_TMPDIR"), "/dashboard-screenshots/")`:
    /// that variable exists only for integration tests, not this library).
    ///
    /// Chromium is `$CHROME_BIN`, else `/usr/bin/chromium`; chromedriver is
    /// `$CHROMEDRIVER`, else `chromedriver` on the `PATH`.
    ///
    /// Returns `None` (after printing `SKIPPED: …` to stderr) when either is
    /// missing, unless [`REQUIRE_ENV`] is `1`.
    ///
    /// # Panics
    /// When either is missing and [`REQUIRE_ENV`] is `1`; when chromedriver
    /// does not start or the session cannot be opened.
    pub async fn launch(shots: impl Into<PathBuf>) -> Option<Self> {
        let chrome = std::env::var_os("CHROME_BIN")
            .map_or_else(|| PathBuf::from("/usr/bin/chromium"), PathBuf::from);
        let driver = std::env::var_os("CHROMEDRIVER")
            .map(PathBuf::from)
            .or_else(|| on_path("chromedriver"));
        let missing = match &driver {
            _ if !chrome.is_file() => Some(format!("Chromium ({})", chrome.display())),
            None => Some("chromedriver (on the PATH)".to_owned()),
            Some(_) => None,
        };
        if let Some(what) = missing {
            let advice = format!(
                "{what} is not installed: the dashboard's browser tests need a headless \
                 Chromium and its WebDriver. Install them with `apt-get install -y chromium \
                 chromium-driver` (Debian/Ubuntu), or point CHROME_BIN and CHROMEDRIVER at them."
            );
            if std::env::var(REQUIRE_ENV).is_ok_and(|v| v == "1") {
                panic!("{advice} ({REQUIRE_ENV}=1 makes this a failure, as in CI)");
            }
            let name = std::thread::current()
                .name()
                .unwrap_or("a dashboard test")
                .to_owned();
            // Straight to the process's stderr: the test harness captures
            // `eprintln!` of a passing test, and this must be seen.
            let _ = writeln!(
                std::io::stderr().lock(),
                "\n******** SKIPPED: {name}: {advice} Set {REQUIRE_ENV}=1 to fail instead. ********\n"
            );
            return None;
        }
        let driver = driver.expect("checked above");
        let shots = shots.into();
        std::fs::create_dir_all(&shots).expect("create the screenshots folder");
        let tmp = tempfile::Builder::new()
            .prefix("wasmcron-browser-")
            .tempdir()
            .expect("a temporary folder for the browser");
        let driver_log = tmp.path().join("chromedriver.log");
        let (child, port) = start_driver(&driver, tmp.path(), &driver_log).await;
        let mut caps = Capabilities::new();
        caps.insert("browserName".into(), json!("chrome"));
        caps.insert(
            "goog:chromeOptions".into(),
            json!({ "binary": chrome, "args": CHROME_ARGS }),
        );
        // Without this chromedriver keeps no console messages to read back.
        caps.insert("goog:loggingPrefs".into(), json!({ "browser": "ALL" }));
        let connected =
            ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
                .capabilities(caps)
                .connect(&format!("http://127.0.0.1:{port}"))
                .await;
        let client = match connected {
            Ok(client) => client,
            Err(e) => {
                let log = std::fs::read_to_string(&driver_log).unwrap_or_default();
                kill_group(child);
                panic!(
                    "chromedriver started but could not open a Chromium session ({}): {e}\n\
                     chromedriver's log:\n{log}",
                    chrome.display()
                );
            }
        };
        Some(Self {
            client,
            driver: child,
            driver_log,
            shots,
            console: Mutex::new(Vec::new()),
            _tmp: tmp,
        })
    }

    /// The WebDriver client, for what the helpers do not cover.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Opens `url` and waits for its load event.
    ///
    /// # Panics
    /// When the browser cannot navigate there.
    pub async fn goto(&self, url: &str) {
        if let Err(e) = self.client.goto(url).await {
            self.fail(&format!("could not open {url}: {e}")).await;
        }
    }

    /// Reloads the page (a new document: the old one is discarded, not
    /// kept in the back/forward cache).
    ///
    /// # Panics
    /// When the browser cannot reload.
    pub async fn reload(&self) {
        if let Err(e) = self.client.refresh().await {
            self.fail(&format!("could not reload: {e}")).await;
        }
    }

    /// The page's current URL.
    ///
    /// # Panics
    /// When the session is gone.
    pub async fn url(&self) -> String {
        self.client
            .current_url()
            .await
            .map(|u| u.to_string())
            .expect("the browser's current URL")
    }

    /// Runs `script` (a function body: `return …`) in the page with
    /// `args` (`arguments[0]`…) and returns its JSON result.
    ///
    /// # Panics
    /// When the script throws.
    pub async fn exec(&self, script: &str, args: Vec<Value>) -> Value {
        match self.client.execute(script, args).await {
            Ok(v) => v,
            Err(e) => self.fail(&format!("script failed: {e}\n{script}")).await,
        }
    }

    /// Polls `check` every [`POLL`] until it holds; `what` names the
    /// condition in the panic message.
    ///
    /// # Panics
    /// When it does not hold within [`WAIT`].
    pub async fn wait_until<F, Fut>(&self, what: &str, mut check: F)
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = bool>,
    {
        let deadline = Instant::now() + WAIT;
        while !check().await {
            if Instant::now() >= deadline {
                self.fail(&format!("timed out after {WAIT:?} waiting for {what}"))
                    .await;
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Waits until the JavaScript expression `expr` is truthy in the page.
    ///
    /// # Panics
    /// As [`Browser::wait_until`].
    pub async fn wait_js(&self, what: &str, expr: &str) {
        let script = format!("return Boolean({expr});");
        self.wait_until(what, || async {
            self.client
                .execute(&script, Vec::new())
                .await
                .is_ok_and(|v| v == Value::Bool(true))
        })
        .await;
    }

    /// Waits until an element matches the CSS selector `css` and returns
    /// the first one.
    ///
    /// # Panics
    /// When none appears within [`WAIT`].
    pub async fn wait_for(&self, css: &str) -> Element {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Ok(el) = self.client.find(Locator::Css(css)).await {
                return el;
            }
            if Instant::now() >= deadline {
                self.fail(&format!("timed out after {WAIT:?} waiting for `{css}`"))
                    .await;
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Waits until nothing matches `css`.
    ///
    /// # Panics
    /// When something still does after [`WAIT`].
    pub async fn wait_gone(&self, css: &str) {
        self.wait_until(&format!("`{css}` to be gone"), || async {
            self.count(css).await == 0
        })
        .await;
    }

    /// Waits until the first element matching `css` shows text containing
    /// `needle`, and returns that text.
    ///
    /// # Panics
    /// When it does not within [`WAIT`].
    pub async fn wait_for_text(&self, css: &str, needle: &str) -> String {
        let mut last = None;
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(text) = self.try_text(css).await {
                if text.contains(needle) {
                    return text;
                }
                last = Some(text);
            }
            if Instant::now() >= deadline {
                let seen = last.map_or_else(
                    || "no such element".to_owned(),
                    |t| format!("its text was {t:?}"),
                );
                self.fail(&format!(
                    "timed out after {WAIT:?} waiting for `{css}` to contain {needle:?}; {seen}"
                ))
                .await;
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Waits until exactly `n` elements match `css`.
    ///
    /// # Panics
    /// When the count is not `n` within [`WAIT`].
    pub async fn wait_count(&self, css: &str, n: usize) {
        self.wait_until(&format!("{n} elements matching `{css}`"), || async {
            self.count(css).await == n
        })
        .await;
    }

    /// How many elements match `css` now (no waiting).
    pub async fn count(&self, css: &str) -> usize {
        self.client
            .find_all(Locator::Css(css))
            .await
            .map_or(0, |all| all.len())
    }

    /// Whether an element matches `css` and is displayed, now.
    pub async fn is_displayed(&self, css: &str) -> bool {
        match self.client.find(Locator::Css(css)).await {
            Ok(el) => el.is_displayed().await.unwrap_or(false),
            Err(_) => false,
        }
    }

    /// The rendered text of the first element matching `css`, if any, now.
    pub async fn try_text(&self, css: &str) -> Option<String> {
        let el = self.client.find(Locator::Css(css)).await.ok()?;
        el.text().await.ok()
    }

    /// The rendered text of the first element matching `css`, waiting for
    /// it to appear.
    ///
    /// # Panics
    /// When none appears within [`WAIT`].
    pub async fn text(&self, css: &str) -> String {
        let el = self.wait_for(css).await;
        match el.text().await {
            Ok(t) => t,
            Err(e) => {
                self.fail(&format!("cannot read the text of `{css}`: {e}"))
                    .await
            }
        }
    }

    /// The texts of every element matching `css`, now.
    pub async fn texts(&self, css: &str) -> Vec<String> {
        let mut out = Vec::new();
        for el in self
            .client
            .find_all(Locator::Css(css))
            .await
            .unwrap_or_default()
        {
            out.push(el.text().await.unwrap_or_default());
        }
        out
    }

    /// An attribute of the first element matching `css` (waiting for it).
    ///
    /// # Panics
    /// When no element appears within [`WAIT`].
    pub async fn attr(&self, css: &str, name: &str) -> Option<String> {
        let el = self.wait_for(css).await;
        el.attr(name).await.ok().flatten()
    }

    /// Clicks the first element matching `css` once it is displayed and
    /// enabled (retrying while something covers it, e.g. a closing dialog).
    ///
    /// # Panics
    /// When it cannot be clicked within [`WAIT`].
    pub async fn click(&self, css: &str) {
        let deadline = Instant::now() + WAIT;
        let mut last = String::from("no such element");
        loop {
            if let Ok(el) = self.client.find(Locator::Css(css)).await {
                let shown = el.is_displayed().await.unwrap_or(false);
                let enabled = el.is_enabled().await.unwrap_or(false);
                if shown && enabled {
                    match el.click().await {
                        Ok(()) => return,
                        Err(e) => last = e.to_string(),
                    }
                } else {
                    last = format!("displayed: {shown}, enabled: {enabled}");
                }
            }
            if Instant::now() >= deadline {
                self.fail(&format!(
                    "timed out after {WAIT:?} trying to click `{css}` ({last})"
                ))
                .await;
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Types `text` into the first element matching `css` (waiting for it)
    /// in one WebDriver command: a key event per character, sent at once.
    ///
    /// # Panics
    /// When the element does not appear or takes no keys.
    pub async fn type_text(&self, css: &str, text: &str) {
        let el = self.wait_for(css).await;
        if let Err(e) = el.send_keys(text).await {
            self.fail(&format!("cannot type into `{css}`: {e}")).await;
        }
    }

    /// Types `text` into `css` one character per WebDriver command, so a
    /// page reacting as you type sees every intermediate value; calls
    /// `after(prefix)` after each character (e.g. to check what the page
    /// says about an incomplete input).
    ///
    /// # Panics
    /// As [`Browser::type_text`].
    pub async fn type_chars<F, Fut>(&self, css: &str, text: &str, mut after: F)
    where
        F: FnMut(String) -> Fut,
        Fut: Future<Output = ()>,
    {
        let el = self.wait_for(css).await;
        let mut typed = String::new();
        for c in text.chars() {
            if let Err(e) = el.send_keys(&c.to_string()).await {
                self.fail(&format!("cannot type {c:?} into `{css}`: {e}"))
                    .await;
            }
            typed.push(c);
            after(typed.clone()).await;
        }
    }

    /// Empties the input matching `css` (waiting for it).
    ///
    /// # Panics
    /// When the element does not appear or cannot be cleared.
    pub async fn clear(&self, css: &str) {
        let el = self.wait_for(css).await;
        if let Err(e) = el.clear().await {
            self.fail(&format!("cannot clear `{css}`: {e}")).await;
        }
    }

    /// Makes the viewport `width`×`height` CSS pixels, as a phone does when
    /// `mobile` (the page's `<meta name="viewport">` is honoured, touch
    /// media queries apply); through Chrome's device emulation, since a
    /// headless window's outer size does not map exactly to its viewport.
    ///
    /// # Panics
    /// When Chrome refuses the emulation.
    pub async fn set_viewport(&self, width: u32, height: u32, mobile: bool) {
        self.cdp(
            "Emulation.setDeviceMetricsOverride",
            json!({ "width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile }),
        )
        .await;
    }

    /// Saves a PNG of the whole page (beyond the viewport) as
    /// `<shots>/<name>.png` and returns its path.
    ///
    /// # Panics
    /// When the screenshot cannot be taken or written.
    pub async fn save_screenshot(&self, name: &str) -> PathBuf {
        let png = match self.full_page_png().await {
            Ok(png) => png,
            // The viewport alone, when Chrome cannot capture past it.
            Err(_) => self.client.screenshot().await.expect("a screenshot"),
        };
        let path = self.shots.join(format!("{}.png", file_name(name)));
        std::fs::write(&path, png).expect("write the screenshot");
        path
    }

    /// Every console message so far (reading chromedriver's log drains
    /// it, so they are kept here).
    ///
    /// # Panics
    /// When chromedriver does not answer.
    pub async fn console_messages(&self) -> Vec<ConsoleMessage> {
        let fresh: Vec<ConsoleMessage> = match self.client.issue_cmd(BrowserLog).await {
            Ok(Value::Array(entries)) => entries.iter().map(ConsoleMessage::from_json).collect(),
            Ok(other) => panic!("chromedriver's browser log is not a list: {other}"),
            Err(e) => panic!("cannot read the browser console from chromedriver: {e}"),
        };
        let mut all = self.console.lock().expect("console messages lock");
        all.extend(fresh);
        all.clone()
    }

    /// The console's errors so far.
    pub async fn console_errors(&self) -> Vec<ConsoleMessage> {
        self.console_messages()
            .await
            .into_iter()
            .filter(ConsoleMessage::is_error)
            .collect()
    }

    /// Forgets the console messages read so far, so a later
    /// [`Browser::assert_no_console_errors`] judges only what follows.
    pub async fn forget_console(&self) {
        self.console_messages().await;
        self.console.lock().expect("console messages lock").clear();
    }

    /// Panics if the console has had an error since the session started
    /// (or since [`Browser::forget_console`]).
    ///
    /// # Panics
    /// When it has, listing them with the page's URL.
    pub async fn assert_no_console_errors(&self) {
        self.assert_no_console_errors_but(|_| false).await;
    }

    /// [`Browser::assert_no_console_errors`], except for the errors
    /// `expected` accepts (e.g. the failed-request line Chrome logs for an
    /// API's 422 that the page shows as a validation message).
    ///
    /// # Panics
    /// On any other error, listing them with the page's URL.
    pub async fn assert_no_console_errors_but(&self, expected: impl Fn(&ConsoleMessage) -> bool) {
        let errors: Vec<ConsoleMessage> = self
            .console_errors()
            .await
            .into_iter()
            .filter(|m| !expected(m))
            .collect();
        if !errors.is_empty() {
            let list: Vec<String> = errors.iter().map(ToString::to_string).collect();
            let shot = self.save_screenshot("failure-console-errors").await;
            panic!(
                "the browser console has {} error(s) on {}:\n  {}\nscreenshot: {}",
                errors.len(),
                self.url().await,
                list.join("\n  "),
                shot.display()
            );
        }
    }

    /// Ends the session and stops chromedriver and Chromium (dropping the
    /// `Browser` does the same, less politely).
    pub async fn close(self) {
        // A session closed first lets Chromium exit on its own; the group
        // is killed in any case by Drop.
        let _ = tokio::time::timeout(Duration::from_secs(5), self.client.clone().close()).await;
    }

    /// Panics with `what`, the URL, a fresh screenshot, the start of the
    /// page's text and the console so far: the message of every helper's
    /// failure.
    async fn fail(&self, what: &str) -> ! {
        static FAILURES: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = FAILURES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let test = std::thread::current().name().unwrap_or("test").to_owned();
        let url = self
            .client
            .current_url()
            .await
            .map_or_else(|e| format!("(unknown: {e})"), |u| u.to_string());
        let shot = self
            .shots
            .join(format!("{}.png", file_name(&format!("failure-{test}-{n}"))));
        let saved = match self.client.screenshot().await {
            Ok(png) => std::fs::write(&shot, png).map_or_else(
                |e| format!("(not saved: {e})"),
                |()| shot.display().to_string(),
            ),
            Err(e) => format!("(not taken: {e})"),
        };
        let text = self
            .client
            .execute(
                "return document.body ? document.body.innerText : ''",
                Vec::new(),
            )
            .await
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        let text: String = text.chars().take(1500).collect();
        // Every console message, not only errors: a stuck page often says
        // why in a warning or a log line.
        let mut console = self.console.lock().map(|c| c.clone()).unwrap_or_default();
        if let Ok(Value::Array(fresh)) = self.client.issue_cmd(BrowserLog).await {
            console.extend(fresh.iter().map(ConsoleMessage::from_json));
        }
        let console: Vec<String> = console.iter().map(ToString::to_string).collect();
        let driver_log = std::fs::read_to_string(&self.driver_log).unwrap_or_default();
        let driver_tail: Vec<&str> = driver_log.lines().rev().take(10).collect();
        panic!(
            "{what}\n  page: {url}\n  screenshot: {saved}\n  page text (start):\n{text}\n  \
             console:\n    {}\n  chromedriver's log (last lines, newest first):\n    {}",
            console.join("\n    "),
            driver_tail.join("\n    ")
        );
    }

    /// One Chrome DevTools Protocol command through chromedriver.
    async fn cdp(&self, cmd: &'static str, params: Value) -> Value {
        match self.client.issue_cmd(Cdp { cmd, params }).await {
            Ok(v) => v,
            Err(e) => panic!("Chrome refused {cmd}: {e}"),
        }
    }

    /// The whole page as a PNG, through DevTools: WebDriver's screenshot
    /// is only the viewport.
    async fn full_page_png(&self) -> Result<Vec<u8>, String> {
        let metrics = self
            .client
            .issue_cmd(Cdp {
                cmd: "Page.getLayoutMetrics",
                params: json!({}),
            })
            .await
            .map_err(|e| e.to_string())?;
        let size = &metrics["cssContentSize"];
        let viewport = &metrics["cssLayoutViewport"];
        // The window's inner width, scrollbar included: a capture of the
        // full height has no vertical scrollbar, so the page lays out that
        // wide while it is taken.
        let inner = self
            .client
            .execute("return window.innerWidth", Vec::new())
            .await
            .ok()
            .and_then(|v| v.as_f64())
            .unwrap_or(0.0);
        let width = size["width"]
            .as_f64()
            .unwrap_or(0.0)
            .max(viewport["clientWidth"].as_f64().unwrap_or(0.0))
            .max(inner);
        let height = size["height"]
            .as_f64()
            .unwrap_or(0.0)
            .max(viewport["clientHeight"].as_f64().unwrap_or(0.0));
        if width < 1.0 || height < 1.0 {
            return Err("no layout size".into());
        }
        let shot = self
            .client
            .issue_cmd(Cdp {
                cmd: "Page.captureScreenshot",
                params: json!({
                    "format": "png",
                    "captureBeyondViewport": true,
                    "clip": { "x": 0, "y": 0, "width": width, "height": height.min(8000.0), "scale": 1 },
                }),
            })
            .await
            .map_err(|e| e.to_string())?;
        let data = shot["data"].as_str().ok_or("no image data")?;
        base64::engine::general_purpose::STANDARD
            .decode(data)
            .map_err(|e| e.to_string())
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Chromium is chromedriver's child, in its process group: killing
        // the group stops both, even when the session was never closed.
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.driver.id())])
            .status();
        let _ = self.driver.wait();
    }
}

/// `POST /session/{id}/se/log {"type":"browser"}`: chromedriver's console
/// log (the W3C protocol has none); each message is returned once.
#[derive(Debug)]
struct BrowserLog;

impl WebDriverCompatibleCommand for BrowserLog {
    fn endpoint(
        &self,
        base_url: &url::Url,
        session_id: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base_url.join(&format!(
            "session/{}/se/log",
            session_id.unwrap_or_default()
        ))
    }

    fn method_and_body(&self, _request_url: &url::Url) -> (http::Method, Option<String>) {
        (http::Method::POST, Some(r#"{"type":"browser"}"#.to_owned()))
    }
}

/// `POST /session/{id}/goog/cdp/execute`: one Chrome DevTools command.
#[derive(Debug)]
struct Cdp {
    cmd: &'static str,
    params: Value,
}

impl WebDriverCompatibleCommand for Cdp {
    fn endpoint(
        &self,
        base_url: &url::Url,
        session_id: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base_url.join(&format!(
            "session/{}/goog/cdp/execute",
            session_id.unwrap_or_default()
        ))
    }

    fn method_and_body(&self, _request_url: &url::Url) -> (http::Method, Option<String>) {
        let body = json!({ "cmd": self.cmd, "params": self.params });
        (http::Method::POST, Some(body.to_string()))
    }
}

/// Starts chromedriver on a free port in its own process group, with
/// `tmp` as its `TMPDIR`, and waits until `/status` says it is ready.
/// Tries a few ports: another process may take the one picked first.
async fn start_driver(driver: &Path, tmp: &Path, log: &Path) -> (Child, u16) {
    use std::os::unix::process::CommandExt as _;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()
        .expect("an HTTP client");
    let mut tried = Vec::new();
    for _ in 0..3 {
        let port = free_port();
        let out = std::fs::File::create(log).expect("chromedriver's log file");
        let err = out.try_clone().expect("chromedriver's log file");
        let mut child = Command::new(driver)
            .arg(format!("--port={port}"))
            // Chromium's profile, caches and settings stay in `tmp` too,
            // out of the user's home.
            .env("TMPDIR", tmp)
            .env("XDG_CACHE_HOME", tmp.join("cache"))
            .env("XDG_CONFIG_HOME", tmp.join("config"))
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", driver.display()));
        let deadline = Instant::now() + WAIT;
        let status = format!("http://127.0.0.1:{port}/status");
        loop {
            if let Ok(resp) = http.get(&status).send().await
                && let Ok(body) = resp.json::<Value>().await
                && body["value"]["ready"] == Value::Bool(true)
            {
                return (child, port);
            }
            if let Ok(Some(exit)) = child.try_wait() {
                tried.push(format!(
                    "port {port}: exited with {exit}: {}",
                    std::fs::read_to_string(log).unwrap_or_default()
                ));
                break;
            }
            if Instant::now() >= deadline {
                kill_group(child);
                panic!(
                    "chromedriver ({}) did not answer {status} within {WAIT:?}; its log:\n{}",
                    driver.display(),
                    std::fs::read_to_string(log).unwrap_or_default()
                );
            }
            tokio::time::sleep(POLL).await;
        }
    }
    panic!(
        "chromedriver ({}) did not start:\n{}",
        driver.display(),
        tried.join("\n")
    );
}

/// Kills a process group led by `child`, and reaps the leader.
fn kill_group(mut child: Child) {
    let _ = Command::new("kill")
        .args(["-KILL", "--", &format!("-{}", child.id())])
        .status();
    let _ = child.wait();
}

/// A port free on loopback right now (the OS picks it; chromedriver takes
/// only a number, so the listener is closed before it starts).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// `name` found in a folder of the `PATH`.
fn on_path(name: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// `name` made safe as a file name: letters, digits, `-`, `_` and `.`.
fn file_name(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

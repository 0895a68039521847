//! Watching the folder: file events (a hint to scan sooner), periodic
//! rescans, and finished background compiles, in one loop.

use super::{FolderChange, PluginFolder};
use std::path::Path;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

impl PluginFolder {
    /// Watches the folder until `cancel`, sending each non-empty batch of
    /// changes to `tx`, including the results of background compiles (the
    /// start-up scan's too). Scans run on the blocking pool (reading files
    /// and cache hits are I/O). At `cancel`, compiles under way are killed.
    pub fn watch(
        mut self,
        options: WatchOptions,
        tx: mpsc::UnboundedSender<Vec<FolderChange>>,
        cancel: CancellationToken,
    ) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let (hint_tx, mut hints) = mpsc::unbounded_channel::<()>();
            let _watcher = start_watcher(&self.dir, hint_tx, options.rescan);
            let mut done_rx = match self.done_rx.take() {
                Some(rx) => rx,
                None => {
                    let (done_tx, rx) = mpsc::unbounded_channel();
                    self.done_tx = done_tx;
                    rx
                }
            };
            let stop = self.stop.clone();
            // A deadline, not a sleep per turn: compile results arriving
            // often must not keep pushing the next rescan away.
            let mut next_scan = tokio::time::Instant::now() + options.rescan;
            loop {
                tokio::select! {
                    () = cancel.cancelled() => {
                        self.stop.cancel();
                        return;
                    }
                    Some(done) = done_rx.recv() => {
                        let mut changes = Vec::new();
                        self.finish(done, &mut changes);
                        if !changes.is_empty() && tx.send(changes).is_err() {
                            self.stop.cancel();
                            return;
                        }
                        continue;
                    }
                    Some(()) = hints.recv() => {
                        // Let a burst of events (a copy in progress) settle.
                        tokio::time::sleep(options.debounce).await;
                        while hints.try_recv().is_ok() {}
                    }
                    () = tokio::time::sleep_until(next_scan) => {}
                }
                let scanned = tokio::task::spawn_blocking(move || {
                    let result = self.scan(false);
                    (self, result)
                })
                .await;
                let result;
                (self, result) = match scanned {
                    Ok(done) => done,
                    Err(e) => {
                        tracing::error!(error = %e, "plugin folder scan panicked; folder watching stopped");
                        stop.cancel();
                        return;
                    }
                };
                match result {
                    Ok((changes, still_settling)) => {
                        next_scan = tokio::time::Instant::now()
                            + if still_settling {
                                options.debounce
                            } else {
                                options.rescan
                            };
                        if !changes.is_empty() && tx.send(changes).is_err() {
                            stop.cancel();
                            return;
                        }
                    }
                    Err(e) => {
                        next_scan = tokio::time::Instant::now() + options.rescan;
                        tracing::warn!(dir = %self.dir.display(), error = %e, "cannot list the plugins folder; keeping what is loaded");
                    }
                }
            }
        })
    }
}

/// How the folder is watched.
#[derive(Debug, Clone, Copy)]
pub struct WatchOptions {
    /// How long a file's size and time must hold still before it is read.
    pub debounce: Duration,
    /// Rescan this often even without file events.
    pub rescan: Duration,
}

impl Default for WatchOptions {
    fn default() -> Self {
        Self {
            debounce: Duration::from_millis(250),
            rescan: Duration::from_secs(2),
        }
    }
}

fn start_watcher(
    dir: &Path,
    hint: mpsc::UnboundedSender<()>,
    rescan: Duration,
) -> Option<notify::RecommendedWatcher> {
    use notify::Watcher as _;
    let watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if event.is_ok() {
            let _ = hint.send(());
        }
    });
    match watcher.and_then(|mut w| {
        w.watch(dir, notify::RecursiveMode::NonRecursive)?;
        Ok(w)
    }) {
        Ok(w) => Some(w),
        Err(e) => {
            tracing::warn!(dir = %dir.display(), error = %e, "file events unavailable; rescanning every {}", crate::duration::format(rescan));
            None
        }
    }
}

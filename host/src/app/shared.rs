//! What a host does only when it shares its store with other hosts.

use crate::api::HostIdentity;
use crate::scheduler::Scheduler;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// What only hosts sharing a store do: plugins pushed through another
/// host written into this one's folder, this host's events passed to the
/// others' `GET /events`, and its report at each heartbeat.
pub(super) fn spawn_shared_tasks(
    scheduler: &Scheduler,
    host: &HostIdentity,
    report: &Arc<std::sync::Mutex<crate::store::HostReport>>,
    plugins_dir: Option<PathBuf>,
    stop_watching: &CancellationToken,
) {
    if let Some(dir) = plugins_dir {
        // Plugins pushed through any host's API.
        tokio::spawn(super::uploads::sync_loop(
            dir,
            scheduler.store().clone(),
            stop_watching.clone(),
        ));
    }
    {
        // This host's events, passed to the others' GET /events.
        let mut events = scheduler.subscribe();
        let store = scheduler.store().clone();
        let host = host.clone();
        tokio::spawn(async move {
            loop {
                match events.recv().await {
                    Ok(event) => store.share_event(crate::api::tagged(&event, &host).to_string()),
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                }
            }
        });
    }
    // What this host tells the others at each heartbeat (GET /cluster),
    // and, every 5 s, whether its plugins differ from theirs.
    let scheduler = scheduler.clone();
    let report = report.clone();
    let stop = stop_watching.clone();
    let me = host.id.clone();
    tokio::spawn(async move {
        let mut divergence = crate::store::leader::DivergenceWatch::default();
        for tick in 0u64.. {
            let now = crate::store::HostReport {
                plugins: scheduler
                    .plugins()
                    .loaded()
                    .iter()
                    .map(|p| crate::store::PluginVersion {
                        name: p.name().to_owned(),
                        hash: p.hash().as_str().to_owned(),
                    })
                    .collect(),
                in_flight: scheduler.runs_here() as u64,
            };
            if tick % 5 == 4 {
                divergence
                    .look(scheduler.store().as_ref(), &me, &now.plugins)
                    .await;
            }
            *report
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = now;
            tokio::select! {
                () = tokio::time::sleep(Duration::from_secs(1)) => {}
                () = stop.cancelled() => return,
            }
        }
    });
}

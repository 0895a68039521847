//! What the plugin folder tells the scheduler: a plugin loaded (jobs held
//! for it resume), refused, or removed (its jobs are held at their next
//! fire).

use super::queue::Due;
use super::{Scheduler, State};
use crate::event::{Event, PluginEvent};

impl Scheduler {
    /// Tells the scheduler that plugin `name` is loaded (again): jobs held
    /// for it go back on the queue at the fire they were held at, so the
    /// fires they missed are treated like downtime (`misfire_grace`,
    /// `coalesce`).
    pub fn plugin_loaded(&self, name: &str) {
        let hash = self
            .inner
            .plugins
            .get(name)
            .map(|p| p.hash().as_str().to_owned());
        self.publish_plugin_event(name, hash, None, Event::PluginLoaded);
        let mut resumed = 0;
        {
            let mut state = self.inner.lock();
            let State { jobs, queue, .. } = &mut *state;
            for (id, entry) in jobs.iter_mut() {
                if !entry.held || entry.job.spec.plugin != name {
                    continue;
                }
                entry.held = false;
                if let (Some(at), false) = (entry.next_run, entry.paused) {
                    queue.push(
                        at,
                        Due::Fire {
                            job_id: id.clone(),
                            generation: entry.generation,
                        },
                    );
                    resumed += 1;
                }
            }
        }
        if resumed > 0 {
            tracing::info!(
                plugin = name,
                jobs = resumed,
                "plugin is back; its held jobs resume"
            );
            self.inner.wake.notify_one();
        }
    }

    /// Tells listeners that a file of plugin `name` was refused.
    pub fn plugin_refused(&self, name: &str, error: String) {
        let hash = self
            .inner
            .plugins
            .get(name)
            .map(|p| p.hash().as_str().to_owned());
        self.publish_plugin_event(name, hash, Some(error), Event::PluginRefused);
    }

    /// Tells listeners that plugin `name` is gone. Its jobs are held at
    /// their next fire (see [`Self::plugin_loaded`]).
    pub fn plugin_removed(&self, name: &str) {
        self.publish_plugin_event(name, None, None, Event::PluginRemoved);
    }

    fn publish_plugin_event(
        &self,
        plugin: &str,
        hash: Option<String>,
        error: Option<String>,
        kind: fn(PluginEvent) -> Event,
    ) {
        self.inner.events.publish(kind(PluginEvent {
            plugin: plugin.to_owned(),
            hash,
            error,
            at: self.inner.clock.now(),
        }));
    }
}

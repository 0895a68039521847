//! What a run instantiates: a component type-checked against one of our
//! worlds and linked (`InstancePre`), ready to start in a fresh store.
//!
//! The plugin module turns files into these (compile, cache, check); the
//! runtime needs only this and a name, so it does not depend on the plugin
//! module (the data flows one way: plugin file → loaded component → run).

use super::RunState;
use super::bindings::JobPre;
use super::bindings::listener::ListenerPre;
use std::sync::Arc;

/// Which world a component implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum World {
    /// A scheduled job (`wasmcron:plugin/job`).
    Job,
    /// An error listener (`wasmcron:plugin/listener`).
    Listener,
}

impl World {
    /// The world's full name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Job => "wasmcron:plugin/job@0.1.0",
            Self::Listener => "wasmcron:plugin/listener@0.1.0",
        }
    }
}

/// A component linked against the host's imports for its world; each run
/// only instantiates it.
pub enum Linked {
    /// Implements `wasmcron:plugin/job`.
    Job(JobPre<RunState>),
    /// Implements `wasmcron:plugin/listener`.
    Listener(ListenerPre<RunState>),
}

impl std::fmt::Debug for Linked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Linked").field(&self.world()).finish()
    }
}

impl Linked {
    /// The world it implements.
    pub fn world(&self) -> World {
        match self {
            Self::Job(_) => World::Job,
            Self::Listener(_) => World::Listener,
        }
    }
}

/// What the runtime needs of a loaded plugin: its name (for messages and a
/// listener's kv namespace) and its linked component.
pub trait Runnable: Send + Sync {
    /// The plugin's name.
    fn name(&self) -> &str;
    /// Its linked component.
    fn linked(&self) -> &Linked;
}

impl<T: Runnable + ?Sized> Runnable for Arc<T> {
    fn name(&self) -> &str {
        (**self).name()
    }

    fn linked(&self) -> &Linked {
        (**self).linked()
    }
}

//! What a run instantiates: a component type-checked against one of our
//! worlds, in one of the WIT package's versions, and linked
//! (`InstancePre`), ready to start in a fresh store.
//!
//! The plugin module turns files into these (compile, cache, check); the
//! runtime needs only this and a name, so it does not depend on the plugin
//! module (the data flows one way: plugin file → loaded component → run).

use super::RunState;
use super::bindings::{v0_1, v0_2};
use std::sync::Arc;
use wasmtime::component::InstancePre;

/// Which world a component implements (in either version of the package).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum World {
    /// A scheduled job (`wasmcron:plugin/job`).
    Job,
    /// An error listener (`wasmcron:plugin/listener`).
    Listener,
}

impl World {
    /// The world's full name in `version`, e.g. `wasmcron:plugin/job@0.2.0`.
    pub fn name(self, version: WitVersion) -> &'static str {
        match (self, version) {
            (Self::Job, WitVersion::V0_1) => "wasmcron:plugin/job@0.1.0",
            (Self::Job, WitVersion::V0_2) => "wasmcron:plugin/job@0.2.0",
            (Self::Listener, WitVersion::V0_1) => "wasmcron:plugin/listener@0.1.0",
            (Self::Listener, WitVersion::V0_2) => "wasmcron:plugin/listener@0.2.0",
        }
    }
}

/// Which version of the `wasmcron:plugin` package a component targets, as
/// its export says (`wasmcron:plugin/runner@0.1.0` or `@0.2.0`, the
/// handler likewise). The host serves both; a 0.1.0 component is run
/// exactly as before 0.2.0 existed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum WitVersion {
    /// `wasmcron:plugin@0.1.0`.
    V0_1,
    /// `wasmcron:plugin@0.2.0`: the run context has `cause` and `parent`;
    /// listeners hear `run-recovered` and `job-paused`.
    V0_2,
}

impl WitVersion {
    /// The version as WIT writes it (`0.1.0`, `0.2.0`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::V0_1 => "0.1.0",
            Self::V0_2 => "0.2.0",
        }
    }
}

/// A component linked against the host's imports for its world; each run
/// only instantiates it.
pub enum Linked {
    /// Implements `wasmcron:plugin/job@0.1.0`.
    JobV0_1(v0_1::JobPre<RunState>),
    /// Implements `wasmcron:plugin/job@0.2.0`.
    JobV0_2(v0_2::JobPre<RunState>),
    /// Implements `wasmcron:plugin/listener@0.1.0`.
    ListenerV0_1(v0_1::listener::ListenerPre<RunState>),
    /// Implements `wasmcron:plugin/listener@0.2.0`.
    ListenerV0_2(v0_2::listener::ListenerPre<RunState>),
}

impl std::fmt::Debug for Linked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Linked").field(&self.world_name()).finish()
    }
}

impl Linked {
    /// Checks `pre`'s exports against each world, newest version first.
    ///
    /// # Errors
    /// When it implements none: the message says what world `job` in each
    /// version misses.
    pub fn new(pre: &InstancePre<RunState>) -> wasmtime::Result<Self> {
        let job_v0_2 = match v0_2::JobPre::new(pre.clone()) {
            Ok(p) => return Ok(Self::JobV0_2(p)),
            Err(e) => e,
        };
        let job_v0_1 = match v0_1::JobPre::new(pre.clone()) {
            Ok(p) => return Ok(Self::JobV0_1(p)),
            Err(e) => e,
        };
        if let Ok(p) = v0_2::listener::ListenerPre::new(pre.clone()) {
            return Ok(Self::ListenerV0_2(p));
        }
        if let Ok(p) = v0_1::listener::ListenerPre::new(pre.clone()) {
            return Ok(Self::ListenerV0_1(p));
        }
        Err(wasmtime::Error::msg(format!("{job_v0_2:#}; {job_v0_1:#}")))
    }

    /// The world it implements.
    pub fn world(&self) -> World {
        match self {
            Self::JobV0_1(_) | Self::JobV0_2(_) => World::Job,
            Self::ListenerV0_1(_) | Self::ListenerV0_2(_) => World::Listener,
        }
    }

    /// The version of the package it targets.
    pub fn version(&self) -> WitVersion {
        match self {
            Self::JobV0_1(_) | Self::ListenerV0_1(_) => WitVersion::V0_1,
            Self::JobV0_2(_) | Self::ListenerV0_2(_) => WitVersion::V0_2,
        }
    }

    /// The world's full name with its version, e.g.
    /// `wasmcron:plugin/job@0.2.0`.
    pub fn world_name(&self) -> &'static str {
        self.world().name(self.version())
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

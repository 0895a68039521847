//! Why a host did not start.

use crate::plugin::PluginError;
use std::path::PathBuf;

/// An error with its chain of causes, as the store and the jobs file
/// report theirs (their messages are the binary's, word for word).
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Why a host did not start. Each case says what failed and keeps the
/// cause as its source.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// An option out of its range; the message names it and the range.
    #[error("{0}")]
    Options(String),
    /// The job store could not be opened: a SQLite file another host
    /// holds, an unreachable or refusing PostgreSQL server, a URL of no
    /// known kind.
    #[error(transparent)]
    Store(BoxError),
    /// The WebAssembly engine could not be set up.
    #[error("starting the WebAssembly runtime")]
    Runtime(#[source] BoxError),
    /// The plugins folder could not be created or read.
    #[error("{action} the plugins folder {}", path.display())]
    PluginsFolder {
        /// `creating` or `reading`.
        action: &'static str,
        /// The folder.
        path: PathBuf,
        /// What the file system said.
        #[source]
        source: std::io::Error,
    },
    /// A plugin given as bytes was refused (not a component, not one of
    /// our worlds, ...).
    #[error("plugin '{name}' (given as bytes) was refused")]
    Plugin {
        /// The name it was given.
        name: String,
        /// Why.
        #[source]
        source: PluginError,
    },
    /// The scheduler could not read the store.
    #[error("starting the scheduler")]
    Scheduler(#[source] crate::scheduler::SchedulerError),
    /// The jobs file (`--config`) could not be parsed or applied.
    #[error(transparent)]
    JobsFile(BoxError),
}

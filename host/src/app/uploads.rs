//! Plugins pushed through the API (issue 11 step 5): checked like a file
//! in the folder, then written into this host's plugins folder, and on a
//! store several hosts share kept in the database by its SHA-256 so every
//! host writes it into its own folder ([`sync_loop`]). Each folder then
//! loads the file as any other (its checks, its compile cache), so
//! nothing about loading is new.

use crate::api::{ApiError, PluginAdmin, Pushed};
use crate::plugin::{Compiler, ContentHash};
use crate::runtime::Runtime;
use crate::store::JobStore;
use axum::http::StatusCode;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How often a host looks for plugins pushed through another host.
const SYNC_EVERY: Duration = Duration::from_secs(1);

/// The app's [`PluginAdmin`].
pub struct Uploads {
    /// This host's plugins folder.
    pub folder: PathBuf,
    /// Compiles uploads in a bounded child, as the folder does.
    pub compiler: Arc<Compiler>,
    /// The engine plugins are checked against.
    pub runtime: Arc<Runtime>,
    /// Where pushed plugins are kept for other hosts.
    pub store: Arc<dyn JobStore>,
}

impl std::fmt::Debug for Uploads {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Uploads")
            .field("folder", &self.folder)
            .finish_non_exhaustive()
    }
}

/// A plugin name as a file stem: 1-128 of `A-Z a-z 0-9 . _ -`, not
/// starting with a dot (which the folder ignores).
fn check_name(name: &str) -> Result<(), ApiError> {
    let ok = (1..=128).contains(&name.len())
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(ApiError::validation(
            "name",
            format!(
                "'{name}' is not a plugin name: use 1-128 of A-Z a-z 0-9 . _ -, not starting \
                 with a dot"
            ),
        ))
    }
}

fn unavailable(what: String) -> ApiError {
    ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", what)
}

/// Writes `bytes` as `folder/NAME.wasm` atomically: a hidden temporary
/// file (the folder ignores it) renamed over the old one, so the folder
/// never reads half a file.
fn write_atomic(folder: &Path, name: &str, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = folder.join(format!(".{name}.wasm.{}.upload", std::process::id()));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, folder.join(format!("{name}.wasm"))).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}

#[async_trait::async_trait]
impl PluginAdmin for Uploads {
    async fn put(&self, name: &str, bytes: Vec<u8>) -> Result<Pushed, ApiError> {
        check_name(name)?;
        let hash = ContentHash::of(&bytes).as_str().to_owned();
        let size = bytes.len() as u64;
        let plugin = self
            .compiler
            .load_bytes(&self.runtime, name.to_owned(), bytes.clone())
            .await
            .map_err(|e| ApiError::validation("body", format!("plugin '{name}' refused: {e}")))?;
        let world = plugin.world_name().to_owned();
        drop(plugin);
        let cluster = self
            .store
            .put_plugin_file(name, &hash, &bytes)
            .await
            .map_err(|e| unavailable(format!("could not keep plugin '{name}': {e}")))?;
        let (folder, file) = (self.folder.clone(), name.to_owned());
        tokio::task::spawn_blocking(move || write_atomic(&folder, &file, &bytes))
            .await
            .map_err(|e| unavailable(format!("writing plugin '{name}': {e}")))?
            .map_err(|e| {
                unavailable(format!(
                    "writing plugin '{name}' into {}: {e}",
                    self.folder.display()
                ))
            })?;
        tracing::info!(plugin = name, hash = %&hash[..12], cluster, "plugin pushed through the API");
        Ok(Pushed {
            name: name.to_owned(),
            hash,
            size,
            world,
            cluster,
        })
    }

    async fn remove(&self, name: &str) -> Result<(), ApiError> {
        check_name(name)?;
        let pushed = self
            .store
            .delete_plugin_file(name)
            .await
            .map_err(|e| unavailable(format!("could not remove plugin '{name}': {e}")))?;
        let path = self.folder.join(format!("{name}.wasm"));
        let removed = match std::fs::remove_file(&path) {
            Ok(()) => true,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
            Err(e) => {
                return Err(unavailable(format!("removing {}: {e}", path.display())));
            }
        };
        if removed || pushed == Some(true) {
            tracing::info!(plugin = name, "plugin removed through the API");
            Ok(())
        } else {
            Err(ApiError::not_found(format!(
                "no plugin file '{name}.wasm' in the plugins folder"
            )))
        }
    }
}

/// On a store several hosts share: every [`SYNC_EVERY`], writes into this
/// host's folder the plugins pushed through any host that it does not
/// have in that version, and removes those deleted, until `stop`.
pub async fn sync_loop(folder: PathBuf, store: Arc<dyn JobStore>, stop: CancellationToken) {
    // The version each pushed plugin was last written or found in, so the
    // folder's files are not hashed every second.
    let mut have: HashMap<String, String> = HashMap::new();
    loop {
        tokio::select! {
            () = tokio::time::sleep(SYNC_EVERY) => {}
            () = stop.cancelled() => return,
        }
        let files = match store.plugin_files().await {
            Ok(f) => f,
            Err(e) => {
                tracing::debug!(error = %e, "could not list the pushed plugins");
                continue;
            }
        };
        for (name, hash, deleted) in files {
            if check_name(&name).is_err() {
                continue;
            }
            let path = folder.join(format!("{name}.wasm"));
            if deleted {
                if have.remove(&name).is_some() || path.exists() {
                    match std::fs::remove_file(&path) {
                        Ok(()) => {
                            tracing::info!(plugin = %name, "plugin removed through another host")
                        }
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                        Err(e) => {
                            tracing::warn!(plugin = %name, error = %e, "could not remove a plugin deleted through another host")
                        }
                    }
                }
                continue;
            }
            if have.get(&name) == Some(&hash) && path.exists() {
                continue;
            }
            let current = std::fs::read(&path).ok().map(|b| ContentHash::of(&b));
            if current.as_ref().map(ContentHash::as_str) == Some(hash.as_str()) {
                have.insert(name, hash);
                continue;
            }
            match store.plugin_file(&name, &hash).await {
                Ok(Some(bytes)) if ContentHash::of(&bytes).as_str() == hash => {
                    match write_atomic(&folder, &name, &bytes) {
                        Ok(()) => {
                            tracing::info!(plugin = %name, hash = %&hash[..hash.len().min(12)], "plugin pushed through another host written into the folder");
                            have.insert(name, hash);
                        }
                        Err(e) => {
                            tracing::warn!(plugin = %name, error = %e, "could not write a pushed plugin into the folder")
                        }
                    }
                }
                Ok(_) => {} // replaced or deleted meanwhile: next round
                Err(e) => {
                    tracing::debug!(plugin = %name, error = %e, "could not read a pushed plugin")
                }
            }
        }
    }
}

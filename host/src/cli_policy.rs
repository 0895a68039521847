//! `wasmcron run`'s grant-policy flags (`--allow-*`), parsed into a
//! [`GrantPolicy`].

use crate::runtime::policy::GrantPolicy;
use std::path::PathBuf;

/// What any job may be granted at most, whoever asks (the API, the jobs
/// file, a sidecar). A kind whose flag is not given is not bounded.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct PolicyArgs {
    /// Directories a job may be granted: a grant must lie inside one of
    /// these (symlinks resolved), e.g. `--allow-dirs /srv/jobs /var/reports`.
    #[arg(long, num_args = 1.., value_name = "PATH")]
    allow_dirs: Vec<PathBuf>,
    /// Host environment variables a job may be passed, by name.
    #[arg(long, num_args = 1.., value_name = "NAME")]
    allow_env: Vec<String>,
    /// Patterns a job's `capabilities.http` entries must fall within, as
    /// the entries are written: `https://*.example.com`, `http://127.0.0.1:*`.
    #[arg(long, num_args = 1.., value_name = "PATTERN")]
    allow_http: Vec<String>,
    /// Secrets a job may be given, by name (the host reads
    /// `WASMCRON_SECRET_NAME`).
    #[arg(long, num_args = 1.., value_name = "NAME")]
    allow_secrets: Vec<String>,
    /// Let allowlisted host *names* reach loopback, link-local and private
    /// addresses. Without it such a name is refused once resolved, unless
    /// the job's allowlist names the address itself (e.g.
    /// `http://127.0.0.1:8080`).
    #[arg(long)]
    allow_private_http: bool,
}

impl PolicyArgs {
    /// The policy the flags describe.
    ///
    /// # Errors
    /// A message naming the bad flag value.
    pub fn into_policy(self) -> Result<GrantPolicy, String> {
        let mut policy = GrantPolicy::new(
            self.allow_dirs,
            self.allow_env,
            self.allow_http,
            self.allow_secrets,
        )?;
        policy.allow_private_http = self.allow_private_http;
        Ok(policy)
    }
}

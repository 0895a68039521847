//! Named API tokens with roles (`--tokens FILE`), and the single
//! `--token`, which is one admin token named `token`.
//!
//! The file holds each token's name, role and the SHA-256 of its secret,
//! never the secret: a leaked file grants nothing. `wasmcron token new`
//! makes a secret and prints the line to add.
//!
//! ```toml
//! [[tokens]]
//! name = "ci-bot"
//! role = "operate"
//! sha256 = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
//! ```

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// What a token may do. Each role includes the ones before it.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// `GET` routes and the event stream (those need a token only with
    /// `--auth-reads`).
    Read,
    /// Reads, plus pause, resume, run now, backfill, replay and stop.
    Operate,
    /// Everything: create, modify, apply and delete jobs; plugins;
    /// calendars.
    Admin,
}

impl Role {
    /// Its name as written in the tokens file and in answers.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Read => "read",
            Role::Operate => "operate",
            Role::Admin => "admin",
        }
    }

    /// Parses `read`, `operate` or `admin`.
    ///
    /// # Errors
    /// A message naming the roles there are.
    pub fn parse(text: &str) -> Result<Self, String> {
        match text {
            "read" => Ok(Role::Read),
            "operate" => Ok(Role::Operate),
            "admin" => Ok(Role::Admin),
            other => Err(format!(
                "unknown role '{other}'; the roles are `read`, `operate` and `admin`"
            )),
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The name the single `--token` goes by (in the audit log, in `/auth`).
pub const SINGLE_TOKEN_NAME: &str = "token";

/// One token the host accepts: its name, role and the SHA-256 of its
/// secret.
#[derive(Clone)]
pub struct Credential {
    name: String,
    role: Role,
    hash: [u8; 32],
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credential")
            .field("name", &self.name)
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

impl Credential {
    /// The token's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The token's role.
    pub fn role(&self) -> Role {
        self.role
    }
}

/// The tokens a host accepts. Its `Debug` shows names and roles only.
#[derive(Debug, Clone, Default)]
pub struct Tokens {
    entries: Vec<Credential>,
}

/// Why a tokens file was refused: the entry and what to fix.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct TokensFileError(String);

/// The tokens file as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    tokens: Vec<RawToken>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawToken {
    name: Option<String>,
    role: Option<String>,
    sha256: Option<String>,
}

/// The SHA-256 of `secret`, as lower-case hex.
///
/// SHA-256 and not a slow password hash: the secrets are 256-bit random
/// strings made by `wasmcron token new`, not passwords a person chose, so
/// no guessing is feasible and a slow KDF would only slow every request.
pub fn hash_secret(secret: &str) -> String {
    hex(&Sha256::digest(secret.as_bytes()))
}

/// A fresh secret: 32 bytes from the operating system's random source,
/// as 64 hex characters.
///
/// # Errors
/// When the operating system gives no random bytes.
pub fn new_secret() -> Result<String, String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| format!("no random bytes from the system: {e}"))?;
    Ok(hex(&bytes))
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

fn unhex(text: &str) -> Option<[u8; 32]> {
    if text.len() != 64 || !text.is_ascii() {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, slot) in out.iter_mut().enumerate() {
        *slot = u8::from_str_radix(text.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

/// Names the audit log gives changes that came through no token (see
/// [`crate::audit`]): a token of that name would make its rows look like
/// theirs.
const RESERVED_NAMES: [&str; 6] = ["anonymous", "config", "sidecar", "cli", "host", "embed"];

const RESERVED_WHY: &str = "anonymous, config, sidecar, cli, host and embed are what the audit log calls \
     changes made without a token; give the token another name";

/// A token name: 1-64 characters of letters, digits, `-`, `_` and `.`
/// (it is shown in the audit log and in error messages).
fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

impl Tokens {
    /// Just the single `--token`, an admin named [`SINGLE_TOKEN_NAME`].
    ///
    /// # Errors
    /// When it is too short to be worth anything (under 16 characters).
    pub fn single(secret: &str) -> Result<Self, String> {
        let mut tokens = Self::default();
        tokens.add_single(secret)?;
        Ok(tokens)
    }

    /// Adds the single `--token` beside a tokens file's.
    ///
    /// # Errors
    /// When it is under 16 characters, or the file names a token `token`.
    pub fn add_single(&mut self, secret: &str) -> Result<(), String> {
        if secret.trim().len() < 16 {
            return Err(
                "the API token must be at least 16 characters; generate one with \
                 `openssl rand -hex 32` or `wasmcron token new NAME --role admin`"
                    .into(),
            );
        }
        if self.entries.iter().any(|e| e.name == SINGLE_TOKEN_NAME) {
            return Err(format!(
                "the tokens file has a token named '{SINGLE_TOKEN_NAME}', the name --token goes by; \
                 rename it or drop --token"
            ));
        }
        self.entries.push(Credential {
            name: SINGLE_TOKEN_NAME.into(),
            role: Role::Admin,
            hash: Sha256::digest(secret.as_bytes()).into(),
        });
        Ok(())
    }

    /// Parses a tokens file (`source` names it in messages).
    ///
    /// # Errors
    /// Malformed TOML, an entry without `name`, `role` or `sha256`, an
    /// unknown role, a hash that is not 64 hex digits, a bad or repeated
    /// name, or no tokens at all: each names the entry and the fix.
    pub fn parse(text: &str, source: &str) -> Result<Self, TokensFileError> {
        let raw: RawFile = toml::from_str(text)
            .map_err(|e| TokensFileError(format!("{source}: not a tokens file: {e}")))?;
        if raw.tokens.is_empty() {
            return Err(TokensFileError(format!(
                "{source}: no [[tokens]] entries; add one with the line `wasmcron token new NAME \
                 --role ROLE` prints"
            )));
        }
        let mut tokens = Self::default();
        for (i, t) in raw.tokens.into_iter().enumerate() {
            let at = |what: &str| format!("{source}: tokens[{i}]: {what}");
            let name = t.name.ok_or_else(|| {
                TokensFileError(at(
                    "no `name`; give each token a name, e.g. name = \"ci-bot\"",
                ))
            })?;
            let at = |what: &str| format!("{source}: tokens[{i}] ('{name}'): {what}");
            if !valid_name(&name) {
                return Err(TokensFileError(at(
                    "a name is 1-64 letters, digits, `-`, `_` or `.`",
                )));
            }
            if RESERVED_NAMES.contains(&name.as_str()) {
                return Err(TokensFileError(at(RESERVED_WHY)));
            }
            if tokens.entries.iter().any(|e| e.name == name) {
                return Err(TokensFileError(at(
                    "the name is used by an earlier token; each token needs its own name",
                )));
            }
            let role = t.role.ok_or_else(|| {
                TokensFileError(at(
                    "no `role`; add role = \"read\", \"operate\" or \"admin\"",
                ))
            })?;
            let role = Role::parse(&role).map_err(|e| TokensFileError(at(&e)))?;
            let hash = t.sha256.ok_or_else(|| {
                TokensFileError(at(
                    "no `sha256`; `wasmcron token new NAME --role ROLE` prints the line to add",
                ))
            })?;
            let hash = unhex(&hash.to_ascii_lowercase()).ok_or_else(|| {
                TokensFileError(at(
                    "`sha256` must be the 64 hex digits of the secret's SHA-256 (never the \
                     secret itself); `wasmcron token new` prints it",
                ))
            })?;
            if let Some(same) = tokens.entries.iter().find(|e| e.hash == hash) {
                // One secret, two names: the first entry would always win
                // and the second's role and name would never apply.
                return Err(TokensFileError(at(&format!(
                    "the same secret (sha256) as token '{}'; each token needs its own secret \
                     (make one with `wasmcron token new {name} --role ROLE`)",
                    same.name
                ))));
            }
            tokens.entries.push(Credential { name, role, hash });
        }
        Ok(tokens)
    }

    /// Reads and parses a tokens file.
    ///
    /// # Errors
    /// As [`Tokens::parse`], or when the file cannot be read.
    pub fn read(path: &std::path::Path) -> Result<Self, TokensFileError> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            TokensFileError(format!("--tokens {}: cannot read it: {e}", path.display()))
        })?;
        Self::parse(&text, &format!("--tokens {}", path.display()))
    }

    /// The token whose secret `presented` is, if any. Every entry is
    /// compared, in constant time, whether or not one matched before, so
    /// the time taken says nothing about which (or whether) one matched.
    pub fn find(&self, presented: &str) -> Option<&Credential> {
        let hash: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        let mut found = None;
        for entry in &self.entries {
            if bool::from(entry.hash.ct_eq(&hash)) && found.is_none() {
                found = Some(entry);
            }
        }
        found
    }

    /// Every token's name, role and hash, one a line by name: what the
    /// hosts of a shared database compare, so that no host is more open
    /// than the others.
    pub fn fingerprint(&self) -> String {
        let mut lines: Vec<String> = self
            .entries
            .iter()
            .map(|e| format!("{} {} {}", e.name, e.role, hex(&e.hash)))
            .collect();
        lines.sort();
        lines.join("\n")
    }

    /// How many tokens.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// The line `wasmcron token new NAME --role ROLE` prints for the tokens
/// file.
pub fn toml_entry(name: &str, role: Role, secret: &str) -> String {
    format!(
        "[[tokens]]\nname = \"{name}\"\nrole = \"{role}\"\nsha256 = \"{}\"\n",
        hash_secret(secret)
    )
}

/// Checks a name for `wasmcron token new`.
///
/// # Errors
/// A message saying what a name may be.
pub fn check_name(name: &str) -> Result<(), String> {
    if RESERVED_NAMES.contains(&name) {
        Err(format!("token name '{name}': {RESERVED_WHY}"))
    } else if valid_name(name) {
        Ok(())
    } else {
        Err(format!(
            "token name '{name}': a name is 1-64 letters, digits, `-`, `_` or `.`"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_written_from_token_new_accepts_its_secret_only() {
        let secret = new_secret().unwrap();
        assert_eq!(secret.len(), 64);
        let text = toml_entry("ci-bot", Role::Operate, &secret);
        let tokens = Tokens::parse(&text, "t").unwrap();
        let found = tokens
            .find(&secret)
            .map(|c| (c.name().to_owned(), c.role()));
        assert_eq!(found, Some(("ci-bot".into(), Role::Operate)));
        assert!(tokens.find("someone-else-entirely").is_none());
        assert_ne!(new_secret().unwrap(), secret);
    }

    #[test]
    fn bad_entries_are_named_with_the_fix() {
        let hash = hash_secret("x");
        let cases = [
            (
                format!("[[tokens]]\nname = \"a\"\nrole = \"boss\"\nsha256 = \"{hash}\""),
                "tokens[0] ('a'): unknown role 'boss'",
            ),
            (
                format!(
                    "[[tokens]]\nname = \"a\"\nrole = \"read\"\nsha256 = \"{hash}\"\n\
                     [[tokens]]\nname = \"a\"\nrole = \"admin\"\nsha256 = \"{hash}\""
                ),
                "tokens[1] ('a'): the name is used by an earlier token",
            ),
            (
                "[[tokens]]\nname = \"a\"\nrole = \"read\"\nsha256 = \"abc\"".into(),
                "tokens[0] ('a'): `sha256` must be the 64 hex digits",
            ),
            (
                "[[tokens]]\nname = \"a\"\nrole = \"read\"".into(),
                "tokens[0] ('a'): no `sha256`",
            ),
            (
                format!("[[tokens]]\nrole = \"read\"\nsha256 = \"{hash}\""),
                "tokens[0]: no `name`",
            ),
            (
                format!("[[tokens]]\nname = \"a\"\nsha256 = \"{hash}\""),
                "tokens[0] ('a'): no `role`",
            ),
            (String::new(), "no [[tokens]] entries"),
            (
                format!("[[tokens]]\nname = \"config\"\nrole = \"read\"\nsha256 = \"{hash}\""),
                "tokens[0] ('config'): anonymous, config, sidecar and cli are what the audit log",
            ),
        ];
        assert!(check_name("sidecar").is_err_and(|e| e.contains("another name")));
        assert!(check_name("ci-bot").is_ok());
        for (text, want) in cases {
            let err = Tokens::parse(&text, "f").map(|_| ()).unwrap_err().0;
            assert!(err.contains(want), "{err} does not say {want}");
        }
    }

    #[test]
    fn the_single_token_is_an_admin_named_token() {
        let tokens = Tokens::single("0123456789abcdef-secret").unwrap();
        let found = tokens.find("0123456789abcdef-secret");
        assert_eq!(
            found.map(|c| (c.name(), c.role())),
            Some((SINGLE_TOKEN_NAME, Role::Admin))
        );
        assert!(Tokens::single("short").is_err());
    }
}

//! What a run may reach beyond its own memory: validated capabilities.
//!
//! The default is nothing. Each grant is checked once when the job is
//! validated ([`crate::job::Capabilities`]), so a run only applies it:
//! directories become WASI preopens (cap-std underneath, so `..`,
//! absolute paths and symlinks cannot leave the granted tree), variables
//! are copied from the host's environment by name, and `wasi:http`
//! requests are matched against the allowlist before any connection is
//! made.

use std::path::PathBuf;

/// Host environment variables holding secret values are named with this
/// prefix, so a job can be granted a secret but never an arbitrary host
/// variable through the secrets list.
pub const SECRET_ENV_PREFIX: &str = "WASMCRON_SECRET_";

/// A validated set of capabilities. `Grants::default()` grants nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Grants {
    /// Preopened directories.
    pub dirs: Vec<DirGrant>,
    /// Host environment variables passed through by name.
    pub env: Vec<String>,
    /// Hosts outbound HTTP may reach.
    pub http: Vec<HttpRule>,
    /// Secrets: the guest sees `NAME`, the host reads
    /// `WASMCRON_SECRET_NAME`; their values are scrubbed from logs and
    /// outputs.
    pub secrets: Vec<String>,
}

impl Grants {
    /// Whether nothing is granted (the fast path: no environment lookups).
    pub fn is_empty(&self) -> bool {
        self.dirs.is_empty()
            && self.env.is_empty()
            && self.http.is_empty()
            && self.secrets.is_empty()
    }

    /// Whether `scheme://host:port` is on the allowlist.
    pub fn allows_http(&self, scheme: &str, host: &str, port: u16) -> bool {
        self.http.iter().any(|r| r.matches(scheme, host, port))
    }
}

/// One preopened directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirGrant {
    /// Absolute host path.
    pub host: PathBuf,
    /// Absolute guest path it appears at.
    pub guest: String,
    /// Whether the guest may create, change and delete files in it.
    pub writable: bool,
}

/// One allowlist entry: `scheme://host[:port]`, where host may start with
/// `*.` (any subdomain) and port may be `*`. Without a port, the scheme's
/// default (80 or 443).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpRule {
    scheme: String,
    host: HostPattern,
    port: Option<u16>,
    text: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum HostPattern {
    Exact(String),
    /// `*.example.com`: subdomains of `example.com`, not the apex.
    Suffix(String),
}

impl HttpRule {
    /// Parses an allowlist entry.
    ///
    /// # Errors
    /// A message saying what is wrong and what a good entry looks like.
    pub fn parse(text: &str) -> Result<Self, String> {
        let hint = "expected scheme://host[:port], e.g. https://api.example.com, \
                    https://*.example.com or http://127.0.0.1:8080 (port may be *)";
        let (scheme, rest) = text
            .split_once("://")
            .ok_or_else(|| format!("'{text}': no scheme; {hint}"))?;
        let scheme = scheme.to_ascii_lowercase();
        if scheme != "http" && scheme != "https" {
            return Err(format!("'{text}': scheme must be http or https; {hint}"));
        }
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.contains(['/', '?', '#', '@']) || rest.is_empty() {
            return Err(format!(
                "'{text}': give only scheme, host and port (no path, query or user); {hint}"
            ));
        }
        let (host, port) = split_port(rest).map_err(|p| format!("'{text}': {p}; {hint}"))?;
        let host = host.to_ascii_lowercase();
        let host = if let Some(suffix) = host.strip_prefix("*.") {
            HostPattern::Suffix(suffix.to_owned())
        } else {
            HostPattern::Exact(host)
        };
        let name = match &host {
            HostPattern::Exact(h) | HostPattern::Suffix(h) => h,
        };
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '[' | ']' | ':'))
        {
            return Err(format!("'{text}': '{name}' is not a host name; {hint}"));
        }
        let port = match port {
            Some("*") => None,
            Some(p) => Some(
                p.parse::<u16>()
                    .map_err(|_| format!("'{text}': port '{p}' is not a number 0-65535"))?,
            ),
            None => Some(if scheme == "https" { 443 } else { 80 }),
        };
        Ok(Self {
            scheme,
            host,
            port,
            text: text.to_owned(),
        })
    }

    /// Whether a request to `scheme://host:port` matches.
    pub fn matches(&self, scheme: &str, host: &str, port: u16) -> bool {
        if !self.scheme.eq_ignore_ascii_case(scheme) {
            return false;
        }
        if self.port.is_some_and(|p| p != port) {
            return false;
        }
        let host = host.to_ascii_lowercase();
        match &self.host {
            HostPattern::Exact(h) => *h == host,
            HostPattern::Suffix(s) => is_subdomain(&host, s),
        }
    }
}

impl HttpRule {
    /// Whether every request this entry lets through, `policy` lets
    /// through too: same scheme, a port the policy allows (an entry for
    /// any port only under a policy for any port), and a host inside the
    /// policy's (`*.b.example.com` and `a.example.com` are inside
    /// `*.example.com`; `example.com` is not).
    pub fn within(&self, policy: &HttpRule) -> bool {
        if self.scheme != policy.scheme {
            return false;
        }
        let port_ok = match (policy.port, self.port) {
            (None, _) => true,
            (Some(p), Some(q)) => p == q,
            (Some(_), None) => false,
        };
        port_ok
            && match (&policy.host, &self.host) {
                (HostPattern::Exact(p), HostPattern::Exact(h)) => p == h,
                (HostPattern::Exact(_), HostPattern::Suffix(_)) => false,
                (HostPattern::Suffix(s), HostPattern::Exact(h)) => is_subdomain(h, s),
                (HostPattern::Suffix(s), HostPattern::Suffix(t)) => t == s || is_subdomain(t, s),
            }
    }
}

/// Whether `host` is a proper subdomain of `apex`.
fn is_subdomain(host: &str, apex: &str) -> bool {
    host.strip_suffix(apex)
        .is_some_and(|sub| sub.len() > 1 && sub.ends_with('.'))
}

impl std::fmt::Display for HttpRule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

/// `host[:port]`, where host may be a bracketed IPv6 address.
fn split_port(s: &str) -> Result<(&str, Option<&str>), String> {
    if let Some(rest) = s.strip_prefix('[') {
        let end = rest.find(']').ok_or("unclosed '[' in an IPv6 address")?;
        let host = &s[..end + 2];
        return match &rest[end + 1..] {
            "" => Ok((host, None)),
            p => p
                .strip_prefix(':')
                .map(|p| (host, Some(p)))
                .ok_or_else(|| "junk after the IPv6 address".to_owned()),
        };
    }
    Ok(match s.rsplit_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (s, None),
    })
}

/// Replaces every secret value in `text` with `[secret NAME]`.
pub(crate) fn redact(text: &mut String, secrets: &[(String, String)]) {
    for (name, value) in secrets {
        if !value.is_empty() && text.contains(value.as_str()) {
            *text = text.replace(value.as_str(), &format!("[secret {name}]"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(s: &str) -> HttpRule {
        HttpRule::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn rules_match_scheme_host_and_port() {
        let r = rule("https://api.example.com");
        assert!(r.matches("https", "api.example.com", 443));
        assert!(r.matches("https", "API.example.com", 443));
        assert!(!r.matches("http", "api.example.com", 80));
        assert!(!r.matches("https", "api.example.com", 8443));
        assert!(!r.matches("https", "evil-api.example.com", 443));
        assert!(!r.matches("https", "api.example.com.evil.org", 443));

        let r = rule("http://127.0.0.1:*");
        assert!(r.matches("http", "127.0.0.1", 1));
        assert!(r.matches("http", "127.0.0.1", 65535));
        assert!(!r.matches("http", "127.0.0.2", 80));

        let r = rule("https://*.example.com");
        assert!(r.matches("https", "a.example.com", 443));
        assert!(r.matches("https", "a.b.example.com", 443));
        assert!(!r.matches("https", "example.com", 443));
        assert!(!r.matches("https", "badexample.com", 443));

        let r = rule("http://[::1]:8080");
        assert!(r.matches("http", "[::1]", 8080));
    }

    #[test]
    fn bad_rules_say_why() {
        for (bad, says) in [
            ("example.com", "no scheme"),
            ("ftp://example.com", "http or https"),
            ("https://example.com/path", "no path"),
            ("https://user@example.com", "no path, query or user"),
            ("https://example.com:99999", "port"),
            ("https://exa mple.com", "not a host name"),
            ("https://", "no path"),
        ] {
            let err = HttpRule::parse(bad).expect_err(bad);
            assert!(err.contains(says), "{bad}: {err}");
        }
    }

    #[test]
    fn secrets_are_redacted() {
        let mut s = "token=hunter2 and hunter2 again".to_owned();
        redact(&mut s, &[("PING_TOKEN".into(), "hunter2".into())]);
        assert_eq!(s, "token=[secret PING_TOKEN] and [secret PING_TOKEN] again");
    }
}

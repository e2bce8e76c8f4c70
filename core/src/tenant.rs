//! Tenants (SPEC §9): which token opens which tenant.
//!
//! Every configured token, admin or tenant, plain or `sha256:<hex>`, is kept as a SHA-256
//! digest; a presented token is hashed once and compared with every digest in constant time,
//! so neither the position of a difference nor which entry matched shows in the timing.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::config::ServerConfig;
use crate::scope::{check_id, DEFAULT_ID};
use crate::{Error, Result};

/// One `[[server.tenants]]` table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantConfig {
    /// The tenant's id, in scope-id syntax (1–128 bytes of `[A-Za-z0-9._:@-]`).
    pub id: String,
    /// Tokens that open this tenant (and only it): plain, or `sha256:<64 hex>` of the token.
    #[serde(default)]
    pub tokens: Vec<String>,
    /// Most memories the tenant may hold (over it: 422 `quota_exceeded`); 0 means unlimited.
    #[serde(default)]
    pub max_memories: u64,
    /// Requests per second of its tokens (token bucket, burst = 2 × rate); 0 means unlimited.
    #[serde(default)]
    pub rate_per_s: u64,
}

/// The prefix of a configured token given as its SHA-256.
pub const SHA256_PREFIX: &str = "sha256:";

/// A token as it is compared: its SHA-256.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenDigest([u8; 32]);

impl TokenDigest {
    /// The digest of a presented token.
    pub fn of(token: &str) -> TokenDigest {
        TokenDigest(Sha256::digest(token.as_bytes()).into())
    }

    /// The digest a configured entry stands for: `sha256:<64 hex>` as given, else the plain
    /// token's. The error says what is wrong, without echoing the token.
    pub fn configured(entry: &str) -> std::result::Result<TokenDigest, String> {
        if entry.is_empty() {
            return Err("a token must not be empty".to_owned());
        }
        let Some(hex) = entry.strip_prefix(SHA256_PREFIX) else {
            return Ok(TokenDigest::of(entry));
        };
        let bytes = hex.as_bytes();
        if bytes.len() != 64 {
            return Err(format!(
                "a `{SHA256_PREFIX}` token needs 64 hex digits; got {}",
                bytes.len()
            ));
        }
        let mut out = [0u8; 32];
        for (i, pair) in bytes.chunks(2).enumerate() {
            let digit = |b: u8| (b as char).to_digit(16);
            match (digit(pair[0]), digit(pair[1])) {
                (Some(hi), Some(lo)) => out[i] = (hi * 16 + lo) as u8,
                _ => {
                    return Err(format!(
                        "a `{SHA256_PREFIX}` token may hold only hex digits"
                    ))
                }
            }
        }
        Ok(TokenDigest(out))
    }

    /// `sha256:<hex>` of this digest: how `coda config check` shows a token.
    pub fn display(&self) -> String {
        let mut out = String::with_capacity(SHA256_PREFIX.len() + 64);
        out.push_str(SHA256_PREFIX);
        for b in self.0 {
            out.push_str(&format!("{b:02x}"));
        }
        out
    }

    fn ct_eq(&self, other: &TokenDigest) -> bool {
        bool::from(self.0.ct_eq(&other.0))
    }
}

/// Who a request comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// An admin token (`server.tokens`), or anyone when no token is configured: any tenant.
    Admin,
    /// A tenant token: this tenant only.
    Tenant(String),
}

/// Why a request cannot work on the tenant it asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TenantDenied {
    /// The named tenant is not one this principal may see (unknown, or another tenant's: the
    /// two are indistinguishable on purpose).
    NotFound,
    /// The named id is not a scope id (admins only: a tenant naming anything but its own
    /// tenant gets [`TenantDenied::NotFound`]); what is wrong with it.
    Invalid(String),
}

/// The configured tokens, as digests, and the tenant ids.
#[derive(Debug, Clone, Default)]
pub struct Authenticator {
    admin: Vec<TokenDigest>,
    tenants: Vec<(TokenDigest, String)>,
    ids: Vec<String>,
}

impl Authenticator {
    /// The tokens of a validated `[server]` (entries that fail to parse are skipped: validation
    /// already refused them).
    pub fn new(server: &ServerConfig) -> Authenticator {
        let admin = server
            .tokens
            .iter()
            .filter_map(|t| TokenDigest::configured(t).ok())
            .collect();
        let mut tenants = Vec::new();
        for tenant in &server.tenants {
            for token in &tenant.tokens {
                if let Ok(digest) = TokenDigest::configured(token) {
                    tenants.push((digest, tenant.id.clone()));
                }
            }
        }
        let ids = server.tenants.iter().map(|t| t.id.clone()).collect();
        Authenticator {
            admin,
            tenants,
            ids,
        }
    }

    /// Whether neither a token nor a tenant is configured: everything is tenant `default`,
    /// unauthenticated, as before tenants. (Tenants without any token deny everyone.)
    pub fn is_open(&self) -> bool {
        self.admin.is_empty() && self.tenants.is_empty() && self.ids.is_empty()
    }

    /// Whether any tenant is configured.
    pub fn has_tenants(&self) -> bool {
        !self.ids.is_empty()
    }

    /// Every tenant id: `default` first, then the configured ones in order.
    pub fn tenant_ids(&self) -> Vec<String> {
        let mut out = vec![DEFAULT_ID.to_owned()];
        out.extend(self.ids.iter().filter(|id| *id != DEFAULT_ID).cloned());
        out
    }

    /// Who presents `token`: `None` when it matches no configured token (or is missing while
    /// tokens are configured). Compares against every entry, without stopping early.
    pub fn authenticate(&self, token: Option<&str>) -> Option<Principal> {
        if self.is_open() {
            return Some(Principal::Admin);
        }
        let presented = TokenDigest::of(token?);
        let mut admin = false;
        for digest in &self.admin {
            admin |= digest.ct_eq(&presented);
        }
        let mut tenant: Option<&str> = None;
        for (digest, id) in &self.tenants {
            if digest.ct_eq(&presented) {
                tenant = Some(id);
            }
        }
        // Validation makes the two sets disjoint; an admin match wins regardless.
        if admin {
            Some(Principal::Admin)
        } else {
            tenant.map(|id| Principal::Tenant(id.to_owned()))
        }
    }

    /// The tenant a request works on: a tenant token's own (naming another is not found, never
    /// a way in); for an admin, `requested` (validated, and configured) or `default`.
    pub fn tenant_for(
        &self,
        principal: &Principal,
        requested: Option<&str>,
    ) -> std::result::Result<String, TenantDenied> {
        match (principal, requested) {
            (Principal::Tenant(own), None) => Ok(own.clone()),
            (Principal::Tenant(own), Some(asked)) if asked == own => Ok(own.clone()),
            (Principal::Tenant(_), Some(_)) => Err(TenantDenied::NotFound),
            (Principal::Admin, None) => Ok(DEFAULT_ID.to_owned()),
            (Principal::Admin, Some(asked)) => {
                check_id("tenant", asked).map_err(|e| TenantDenied::Invalid(reason(e)))?;
                if asked == DEFAULT_ID || self.ids.iter().any(|id| id == asked) {
                    Ok(asked.to_owned())
                } else {
                    Err(TenantDenied::NotFound)
                }
            }
        }
    }
}

/// What is wrong, without the field name the caller puts in its own message.
fn reason(error: Error) -> String {
    match error {
        Error::Invalid { reason, .. } => reason,
        other => other.to_string(),
    }
}

/// Checks `server.tenants` and every token: ids in scope-id syntax and unique, tokens well
/// formed and unique across all tenants and `server.tokens`. Errors name the key path.
pub fn validate(server: &ServerConfig) -> Result<()> {
    let mut seen: Vec<(TokenDigest, String)> = Vec::new();
    let mut remember = |digest: TokenDigest, path: String| -> Result<()> {
        if let Some((_, first)) = seen.iter().find(|(d, _)| *d == digest) {
            return Err(Error::config(
                path,
                format!("the same token as `{first}`; a token opens one thing"),
            ));
        }
        seen.push((digest, path));
        Ok(())
    };
    for (i, token) in server.tokens.iter().enumerate() {
        let path = format!("server.tokens[{i}]");
        let digest = TokenDigest::configured(token).map_err(|e| Error::config(&path, e))?;
        remember(digest, path)?;
    }
    for (i, tenant) in server.tenants.iter().enumerate() {
        let id_path = format!("server.tenants[{i}].id");
        check_id("id", &tenant.id).map_err(|e| Error::config(&id_path, reason(e)))?;
        // A tenant's snapshots live in a directory named by its id.
        if tenant.id == "." || tenant.id == ".." {
            return Err(Error::config(id_path, "`.` and `..` cannot name a tenant"));
        }
        if let Some(j) = server.tenants[..i].iter().position(|t| t.id == tenant.id) {
            return Err(Error::config(
                id_path,
                format!("`{}` is also server.tenants[{j}].id", tenant.id),
            ));
        }
        for (k, token) in tenant.tokens.iter().enumerate() {
            let path = format!("server.tenants[{i}].tokens[{k}]");
            let digest = TokenDigest::configured(token).map_err(|e| Error::config(&path, e))?;
            remember(digest, path)?;
        }
    }
    if !server.tenants.is_empty() && seen.is_empty() {
        return Err(Error::config(
            "server.tokens",
            "tenants are configured but no token is, so no request could authenticate; \
             give server.tokens (admin) or a tenant's tokens",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(toml: &str) -> Result<ServerConfig> {
        crate::Config::from_toml_str(toml).map(|c| c.server)
    }

    const ACME: &str = "[[server.tenants]]\nid = \"acme\"\ntokens = [\"acme-token\"]\n";

    #[test]
    fn tenants_parse_with_defaults() {
        let s = server(ACME).expect("valid");
        assert_eq!(s.tenants.len(), 1);
        assert_eq!(s.tenants[0].max_memories, 0);
        assert_eq!(s.tenants[0].rate_per_s, 0);
    }

    #[test]
    fn errors_name_the_key_path() {
        for (toml, path) in [
            (
                format!("{ACME}[[server.tenants]]\nid = \"acme\"\n"),
                "`server.tenants[1].id`",
            ),
            (
                "[[server.tenants]]\nid = \"a b\"\n".to_owned(),
                "`server.tenants[0].id`",
            ),
            (
                "[[server.tenants]]\nid = \"..\"\n".to_owned(),
                "`server.tenants[0].id`",
            ),
            (
                format!("[server]\ntokens = [\"acme-token\"]\n{ACME}"),
                "`server.tenants[0].tokens[0]`",
            ),
            (
                format!(
                    "{ACME}[[server.tenants]]\nid = \"beta\"\ntokens = [\"b\", \"sha256:{}\"]\n",
                    TokenDigest::of("acme-token")
                        .display()
                        .trim_start_matches(SHA256_PREFIX)
                ),
                "`server.tenants[1].tokens[1]`",
            ),
            (
                "[[server.tenants]]\nid = \"a\"\ntokens = [\"sha256:abc\"]\n".to_owned(),
                "`server.tenants[0].tokens[0]`",
            ),
            (
                "[[server.tenants]]\nid = \"a\"\ntokens = [\"\"]\n".to_owned(),
                "`server.tenants[0].tokens[0]`",
            ),
            (
                "[[server.tenants]]\nid = \"a\"\ncolour = 1\n".to_owned(),
                "server.tenants",
            ),
            (
                "[[server.tenants]]\nid = \"a\"\n".to_owned(),
                "`server.tokens`",
            ),
        ] {
            let err = server(&toml).expect_err(&toml).to_string();
            assert!(err.contains(path), "{toml}: {err}");
            assert!(
                !err.contains("acme-token"),
                "a token is never echoed: {err}"
            );
        }
    }

    #[test]
    fn plain_and_hashed_tokens_authenticate() {
        let hashed = TokenDigest::of("beta-secret").display();
        let s = server(&format!(
            "[server]\ntokens = [\"root\"]\n{ACME}[[server.tenants]]\nid = \"beta\"\ntokens = [\"{hashed}\"]\n"
        ))
        .expect("valid");
        let auth = Authenticator::new(&s);
        assert!(!auth.is_open());
        assert_eq!(auth.authenticate(Some("root")), Some(Principal::Admin));
        assert_eq!(
            auth.authenticate(Some("acme-token")),
            Some(Principal::Tenant("acme".into()))
        );
        assert_eq!(
            auth.authenticate(Some("beta-secret")),
            Some(Principal::Tenant("beta".into()))
        );
        assert_eq!(
            auth.authenticate(Some(&hashed)),
            None,
            "the digest is not the token"
        );
        assert_eq!(auth.authenticate(Some("acme-toke")), None);
        assert_eq!(auth.authenticate(None), None);
        assert_eq!(auth.tenant_ids(), ["default", "acme", "beta"]);
    }

    #[test]
    fn a_tenant_never_reaches_another_and_an_admin_names_one() {
        let auth = Authenticator::new(&server(ACME).expect("valid"));
        let acme = Principal::Tenant("acme".into());
        assert_eq!(auth.tenant_for(&acme, None), Ok("acme".into()));
        assert_eq!(auth.tenant_for(&acme, Some("acme")), Ok("acme".into()));
        assert_eq!(
            auth.tenant_for(&acme, Some("default")),
            Err(TenantDenied::NotFound)
        );
        assert_eq!(
            auth.tenant_for(&acme, Some("a b")),
            Err(TenantDenied::NotFound)
        );
        let admin = Principal::Admin;
        assert_eq!(auth.tenant_for(&admin, None), Ok("default".into()));
        assert_eq!(auth.tenant_for(&admin, Some("acme")), Ok("acme".into()));
        assert_eq!(
            auth.tenant_for(&admin, Some("nobody")),
            Err(TenantDenied::NotFound)
        );
        assert!(matches!(
            auth.tenant_for(&admin, Some("a b")),
            Err(TenantDenied::Invalid(_))
        ));
        assert_eq!(
            Authenticator::default().authenticate(None),
            Some(Principal::Admin),
            "without tokens everyone is let in, as before"
        );
    }
}

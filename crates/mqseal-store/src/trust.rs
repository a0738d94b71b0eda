//! Public identities as text, and the `trusted` file (like `known_hosts`): one peer per line.
//!
//! ```text
//! # comment
//! sensor-7  mqseal-pub1:<128 hex digits: Ed25519 key || X25519 key> sender
//! admin     mqseal-pub1:<128 hex digits> issuer
//! lab-admin mqseal-pub1:<128 hex digits> issuer scope=lab/#
//! sensor-3  mqseal-pub1:<128 hex digits> sender group-mac=plant/3/#
//! ```

use std::fmt;
use std::path::Path;

use mqseal::{Fingerprint, Issuer, KeyFilter, PUBLIC_IDENTITY_LEN, PublicIdentity};

use crate::error::{Result, StoreError};
use crate::text::{decode_filter, encode_filter, from_hex, to_hex, valid_name};

/// Prefix of a public identity token.
pub const PUBLIC_PREFIX: &str = "mqseal-pub1:";

/// `mqseal-pub1:<128 lowercase hex>` of a public identity.
pub fn public_token(public: &PublicIdentity) -> String {
    format!("{PUBLIC_PREFIX}{}", to_hex(&public.to_bytes()))
}

/// Parses a `mqseal-pub1:` token (hex in either case). Invalid keys (weak or low-order) are
/// refused with the core error `InvalidKey`.
pub fn parse_public_token(token: &str) -> std::result::Result<PublicIdentity, TokenError> {
    let hex = token
        .strip_prefix(PUBLIC_PREFIX)
        .ok_or(TokenError::Prefix)?;
    let bytes: [u8; PUBLIC_IDENTITY_LEN] = from_hex(hex).ok_or(TokenError::Hex)?;
    PublicIdentity::from_bytes(&bytes).map_err(|_| TokenError::InvalidKey)
}

/// Why a public identity token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenError {
    /// It does not start with `mqseal-pub1:`.
    Prefix,
    /// It is not exactly 128 hex digits after the prefix.
    Hex,
    /// The bytes are not a valid public identity.
    InvalidKey,
}

impl fmt::Display for TokenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TokenError::Prefix => "public key does not start with \"mqseal-pub1:\"",
            TokenError::Hex => "public key is not 128 hex digits after \"mqseal-pub1:\"",
            TokenError::InvalidKey => "public key bytes are not a valid Ed25519/X25519 identity",
        })
    }
}

/// What a trusted peer is trusted for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Roles {
    /// Accept messages signed by this peer.
    pub sender: bool,
    /// Accept grants (keys) issued by this peer. Only trust administrators as issuers: an issuer
    /// can hand you the key you will seal with.
    pub issuer: bool,
}

impl Roles {
    /// Trusted as a message sender only (the default).
    pub const SENDER: Roles = Roles {
        sender: true,
        issuer: false,
    };
    /// Trusted as a grant issuer only.
    pub const ISSUER: Roles = Roles {
        sender: false,
        issuer: true,
    };
    /// Trusted as both.
    pub const BOTH: Roles = Roles {
        sender: true,
        issuer: true,
    };

    /// The roles token: `sender`, `issuer` or `sender,issuer`.
    pub fn token(self) -> &'static str {
        match (self.sender, self.issuer) {
            (true, true) => "sender,issuer",
            (false, true) => "issuer",
            _ => "sender",
        }
    }

    /// Parses a roles token (comma-separated `sender` / `issuer`, each at most once).
    pub fn parse(token: &str) -> Option<Roles> {
        let mut roles = Roles {
            sender: false,
            issuer: false,
        };
        for part in token.split(',') {
            let slot = match part {
                "sender" => &mut roles.sender,
                "issuer" => &mut roles.issuer,
                _ => return None,
            };
            if *slot {
                return None;
            }
            *slot = true;
        }
        Some(roles)
    }
}

impl Default for Roles {
    fn default() -> Roles {
        Roles::SENDER
    }
}

/// One line of the `trusted` file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustedPeer {
    /// Local name (unique in the file).
    pub name: String,
    /// The peer's public identity.
    pub public: PublicIdentity,
    /// What it is trusted for.
    pub roles: Roles,
    /// As an issuer, the filters its grants may be for (empty: the whole tree, `#`); only with
    /// the issuer role (`scope=`, keystore spec section 4).
    pub scope: Vec<String>,
    /// As a sender, the filters on whose topics its `group-mac` messages are accepted (empty:
    /// signed messages only); only with the sender role (`group-mac=`).
    pub group_mac: Vec<String>,
}

impl TrustedPeer {
    /// A peer trusted for `roles`, with no scope (an issuer for the whole tree) and no
    /// group-mac filter (signed messages only).
    pub fn new(name: &str, public: PublicIdentity, roles: Roles) -> TrustedPeer {
        TrustedPeer {
            name: name.to_string(),
            public,
            roles,
            scope: Vec::new(),
            group_mac: Vec::new(),
        }
    }

    /// The peer's fingerprint.
    pub fn fingerprint(&self) -> Fingerprint {
        self.public.fingerprint()
    }

    /// The line for the `trusted` file (without newline):
    /// `name mqseal-pub1:<hex> roles [scope=<filter>]... [group-mac=<filter>]...`.
    pub fn line(&self) -> String {
        let mut line = format!(
            "{} {} {}",
            self.name,
            public_token(&self.public),
            self.roles.token()
        );
        for f in &self.scope {
            line.push_str(" scope=");
            line.push_str(&encode_filter(f));
        }
        for f in &self.group_mac {
            line.push_str(" group-mac=");
            line.push_str(&encode_filter(f));
        }
        line
    }

    /// The peer as an issuer of grants: scoped to [`TrustedPeer::scope`], or for the whole tree
    /// if it has none. Fails with `InvalidFilter` on a scope filter that is not one.
    pub fn issuer(&self) -> mqseal::Result<Issuer> {
        if self.scope.is_empty() {
            return Ok(Issuer::unscoped(self.public.clone()));
        }
        let scope: Vec<&str> = self.scope.iter().map(String::as_str).collect();
        Issuer::new(self.public.clone(), &scope)
    }

    /// Checks the attributes against the roles and the filter syntax (what parsing a line
    /// checks); filters are canonicalized in place.
    pub fn check(&mut self) -> std::result::Result<(), String> {
        let name = &self.name;
        if !self.scope.is_empty() && !self.roles.issuer {
            return Err(format!("peer {name:?}: scope= is only for issuers"));
        }
        if !self.group_mac.is_empty() && !self.roles.sender {
            return Err(format!("peer {name:?}: group-mac= is only for senders"));
        }
        for (attr, filters) in [
            ("scope", &mut self.scope),
            ("group-mac", &mut self.group_mac),
        ] {
            let mut seen: Vec<String> = Vec::with_capacity(filters.len());
            for f in filters.iter() {
                let canonical = KeyFilter::parse(f)
                    .map_err(|e| format!("peer {name:?}: {attr}={f:?}: {e}"))?
                    .as_str()
                    .to_string();
                if seen.contains(&canonical) {
                    return Err(format!("peer {name:?}: {attr}={f:?} given twice"));
                }
                seen.push(canonical);
            }
            *filters = seen;
        }
        Ok(())
    }
}

/// A trusted sender as an opener needs it: its identity and where its `group-mac` messages are
/// accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustedSender {
    /// The sender's public identity.
    pub public: PublicIdentity,
    /// Filters on which its `group-mac` messages are accepted (empty: signed only).
    pub group_mac: Vec<String>,
}

/// Parses one non-comment line `name mqseal-pub1:<hex> [roles] [attribute]...` (roles default
/// to `sender`; attributes `scope=<filter>` and `group-mac=<filter>`, keystore spec section 4).
pub fn parse_peer_line(line: &str) -> std::result::Result<TrustedPeer, String> {
    let mut fields = line.split_whitespace();
    let name = fields.next().ok_or("empty line")?;
    if !valid_name(name) {
        return Err(format!(
            "invalid peer name {name:?} (1 to 64 of A-Z a-z 0-9 . _ - @)"
        ));
    }
    let token = fields
        .next()
        .ok_or_else(|| format!("peer {name:?} has no public key"))?;
    let public = parse_public_token(token).map_err(|e| format!("peer {name:?}: {e}"))?;
    let mut fields = fields.peekable();
    let roles = match fields.next_if(|t| !t.contains('=')) {
        None => Roles::SENDER,
        Some(t) => Roles::parse(t).ok_or_else(|| {
            format!("peer {name:?}: unknown roles {t:?} (expected sender, issuer or sender,issuer)")
        })?,
    };
    let mut peer = TrustedPeer::new(name, public, roles);
    for attr in fields {
        let (list, value) = if let Some(v) = attr.strip_prefix("scope=") {
            (&mut peer.scope, v)
        } else if let Some(v) = attr.strip_prefix("group-mac=") {
            (&mut peer.group_mac, v)
        } else if attr.contains('=') {
            let key = attr.split_once('=').map_or(attr, |(k, _)| k);
            return Err(format!("peer {name:?}: unknown attribute {key:?}"));
        } else {
            return Err(format!("peer {name:?}: unexpected field {attr:?}"));
        };
        let filter = decode_filter(value)
            .ok_or_else(|| format!("peer {name:?}: bad filter {value:?} in {attr:?}"))?;
        list.push(filter);
    }
    peer.check()?;
    Ok(peer)
}

/// Parses a whole `trusted` file: `#` comments and blank lines are ignored; names and public
/// keys must be unique.
pub fn parse_trusted(path: &Path, bytes: &[u8]) -> Result<Vec<TrustedPeer>> {
    let text = std::str::from_utf8(bytes)
        .map_err(|_| StoreError::corrupt(path, None, "not UTF-8 text"))?;
    let mut peers: Vec<TrustedPeer> = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let peer = parse_peer_line(line).map_err(|r| StoreError::corrupt(path, Some(i + 1), r))?;
        if let Some(dup) = peers
            .iter()
            .find(|p| p.name == peer.name || p.public == peer.public)
        {
            return Err(StoreError::corrupt(
                path,
                Some(i + 1),
                format!(
                    "peer {:?} duplicates the name or key of {:?}",
                    peer.name, dup.name
                ),
            ));
        }
        peers.push(peer);
    }
    Ok(peers)
}

/// Header comment written at the top of a new `trusted` file.
pub const TRUSTED_HEADER: &str = "# mqseal trusted peers: <name> mqseal-pub1:<ed25519||x25519 hex> [sender|issuer|sender,issuer] [scope=<filter>]... [group-mac=<filter>]...\n";

/// Formats a whole `trusted` file (header comment, one line per peer).
pub fn format_trusted(peers: &[TrustedPeer]) -> String {
    let mut out = String::from(TRUSTED_HEADER);
    for p in peers {
        out.push_str(&p.line());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use mqseal::Identity;

    #[test]
    fn lines_round_trip_and_errors_are_specific() {
        let id = Identity::from_seed([7; 32]);
        let mut peer = TrustedPeer::new("bob", id.public(), Roles::BOTH);
        assert_eq!(parse_peer_line(&peer.line()).unwrap(), peer);
        peer.scope = vec!["lab/#".into(), "my room/lamp".into()];
        peer.group_mac = vec!["plant/3/#".into()];
        assert!(
            peer.line()
                .contains(" scope=lab/# scope=my%20room/lamp group-mac=plant/3/#")
        );
        assert_eq!(parse_peer_line(&peer.line()).unwrap(), peer);
        let token = public_token(&id.public());
        let bare = parse_peer_line(&format!("bob {token}")).unwrap();
        assert_eq!(bare.roles, Roles::SENDER);
        let upper = format!(
            "bob {}{}",
            PUBLIC_PREFIX,
            token[PUBLIC_PREFIX.len()..].to_uppercase()
        );
        assert_eq!(parse_peer_line(&upper).unwrap().public, id.public());
        assert!(
            parse_peer_line("b^d x")
                .unwrap_err()
                .contains("invalid peer name")
        );
        assert!(
            parse_peer_line("bob")
                .unwrap_err()
                .contains("no public key")
        );
        assert!(
            parse_peer_line(&format!("bob {}", &token[..100]))
                .unwrap_err()
                .contains("128 hex")
        );
        assert!(
            parse_peer_line(&format!("bob {token} admin"))
                .unwrap_err()
                .contains("unknown roles")
        );
        assert!(parse_peer_line(&format!("bob {token} sender,sender")).is_err());
        assert!(
            parse_peer_line(&format!("bob {token} sender x"))
                .unwrap_err()
                .contains("unexpected")
        );
        // Attributes: roles they need, valid filters, each filter once, known names.
        let g = parse_peer_line(&format!("bob {token} group-mac=a/#")).unwrap();
        assert_eq!(
            (g.roles, g.group_mac),
            (Roles::SENDER, vec!["a/#".to_string()])
        );
        for (line, why) in [
            (format!("bob {token} sender scope=a/#"), "only for issuers"),
            (
                format!("bob {token} issuer group-mac=a/#"),
                "only for senders",
            ),
            (format!("bob {token} issuer scope=a/#/b"), "scope="),
            (format!("bob {token} issuer scope=a/# scope=a/#"), "twice"),
            (format!("bob {token} issuer color=red"), "unknown attribute"),
            (format!("bob {token} issuer scope=a/# sender"), "unexpected"),
        ] {
            let err = parse_peer_line(&line).unwrap_err();
            assert!(err.contains(why), "{line}: {err}");
        }
        let zero = format!("bob {PUBLIC_PREFIX}{}", "00".repeat(64));
        assert!(parse_peer_line(&zero).unwrap_err().contains("not a valid"));
    }

    #[test]
    fn file_rejects_duplicates_with_line_numbers() {
        let a = Identity::from_seed([1; 32]).public();
        let b = Identity::from_seed([2; 32]).public();
        let text = format!(
            "# c\n\nalice {}\nbob {}\nalice2 {}\n",
            public_token(&a),
            public_token(&b),
            public_token(&a)
        );
        let err = parse_trusted(Path::new("trusted"), text.as_bytes()).unwrap_err();
        assert!(err.to_string().contains("trusted:5:"), "{err}");
        let ok = format!(
            "alice {}\n  bob {} issuer  \n",
            public_token(&a),
            public_token(&b)
        );
        let peers = parse_trusted(Path::new("t"), ok.as_bytes()).unwrap();
        assert_eq!(peers.len(), 2);
        assert_eq!(
            parse_trusted(Path::new("t"), format_trusted(&peers).as_bytes()).unwrap(),
            peers
        );
    }
}

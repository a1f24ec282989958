//! Bearer tokens and roles. The config file holds only SHA-256 hashes of the tokens, so a leaked
//! config file does not leak a token; a presented token is hashed and compared with every
//! configured hash in constant time, so the time taken says nothing about how close it came.

use serde::Deserialize;
use sha2::{Digest, Sha256};

/// One `[[http.tokens]]` entry of the config file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenConfig {
    /// Hex SHA-256 of the token: `printf %s TOKEN | sha256sum`.
    pub sha256: String,
    /// `admin`, `auditor`, `manager:<id>` or `publisher`.
    pub role: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Role {
    /// Reads everything and publishes events.
    Admin,
    /// Reads everything.
    Auditor,
    /// Reads only this manager's statements and entries.
    Manager(String),
    /// Publishes events (`POST /v1/events`); reads nothing.
    Publisher,
}

impl Role {
    pub fn parse(text: &str) -> Option<Role> {
        match text {
            "admin" => Some(Role::Admin),
            "auditor" => Some(Role::Auditor),
            "publisher" => Some(Role::Publisher),
            _ => match text.strip_prefix("manager:") {
                Some(id) if !id.is_empty() => Some(Role::Manager(id.to_string())),
                _ => None,
            },
        }
    }

    /// Whether this role reads what concerns every manager (the all-managers statement,
    /// rejections, parked events, metrics).
    pub fn reads_everything(&self) -> bool {
        matches!(self, Role::Admin | Role::Auditor)
    }

    /// Whether this role may post events (`POST /v1/events`).
    pub fn publishes(&self) -> bool {
        matches!(self, Role::Admin | Role::Publisher)
    }

    /// Whether this role reads one manager's statements and entries.
    pub fn reads_manager(&self, manager: &str) -> bool {
        match self {
            Role::Admin | Role::Auditor => true,
            Role::Manager(own) => own == manager,
            Role::Publisher => false,
        }
    }
}

/// The configured tokens, as hashes with their roles.
#[derive(Debug, Clone, Default)]
pub struct Tokens {
    hashes: Vec<([u8; 32], Role)>,
}

/// The hex SHA-256 of a token: what `[[http.tokens]] sha256` holds.
pub fn token_sha256(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

impl Tokens {
    /// Checks every entry; the error names the entry and what to write instead.
    pub fn from_config(entries: &[TokenConfig]) -> Result<Tokens, String> {
        let mut hashes = Vec::with_capacity(entries.len());
        for (i, entry) in entries.iter().enumerate() {
            let n = i + 1;
            let mut hash = [0u8; 32];
            hex::decode_to_slice(entry.sha256.trim(), &mut hash).map_err(|_| {
                format!(
                    "http.tokens entry {n}: sha256 must be 64 hex digits, the SHA-256 of the token; \
                     compute it with `printf %s TOKEN | sha256sum`"
                )
            })?;
            let role = Role::parse(&entry.role).ok_or_else(|| {
                format!(
                    "http.tokens entry {n}: role {:?} is not one of admin, auditor, manager:<id>, publisher",
                    entry.role
                )
            })?;
            hashes.push((hash, role));
        }
        Ok(Tokens { hashes })
    }

    pub fn is_empty(&self) -> bool {
        self.hashes.is_empty()
    }

    /// The role of a presented token, if it is one of the configured ones. Every configured
    /// hash is compared in full whatever matches, so the time does not depend on which matched.
    pub fn role_of(&self, token: &str) -> Option<&Role> {
        self.find(token).map(|(_, role)| role)
    }

    /// The configured entry a presented token matches: its place in `[[http.tokens]]` (which
    /// names the token without keeping it, for the per-token feed limit) and its role.
    pub fn find(&self, token: &str) -> Option<(usize, &Role)> {
        let presented: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let mut found = None;
        for (index, (hash, role)) in self.hashes.iter().enumerate() {
            let difference = hash.iter().zip(presented.iter()).fold(0u8, |acc, (a, b)| acc | (a ^ b));
            if std::hint::black_box(difference) == 0 && found.is_none() {
                found = Some((index, role));
            }
        }
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(token: &str, role: &str) -> TokenConfig {
        TokenConfig { sha256: token_sha256(token), role: role.into() }
    }

    #[test]
    fn the_hash_is_sha256_in_hex() {
        // printf %s abc | sha256sum
        assert_eq!(token_sha256("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }

    #[test]
    fn a_token_is_known_by_its_hash() {
        let tokens = Tokens::from_config(&[entry("a-secret", "auditor"), entry("m2", "manager:M-2")]).unwrap();
        assert_eq!(tokens.role_of("a-secret"), Some(&Role::Auditor));
        assert_eq!(tokens.role_of("m2"), Some(&Role::Manager("M-2".into())));
        assert_eq!(tokens.role_of("a-secre"), None);
        assert_eq!(tokens.find("m2"), Some((1, &Role::Manager("M-2".into()))));
        assert_eq!(tokens.role_of(""), None);
    }

    #[test]
    fn roles_read_what_they_should() {
        let m2 = Role::Manager("M-2".into());
        assert!(m2.reads_manager("M-2") && !m2.reads_manager("M-3") && !m2.reads_everything());
        assert!(!Role::Publisher.reads_manager("M-2") && !Role::Publisher.reads_everything());
        assert!(Role::Auditor.reads_everything() && Role::Admin.reads_manager("M-9"));
        assert!(Role::Admin.publishes() && Role::Publisher.publishes());
        assert!(!Role::Auditor.publishes() && !m2.publishes());
    }

    #[test]
    fn bad_entries_are_refused_with_a_hint() {
        let bad_hash = Tokens::from_config(&[TokenConfig { sha256: "abc".into(), role: "admin".into() }]);
        assert!(bad_hash.unwrap_err().contains("sha256sum"));
        let bad_role = Tokens::from_config(&[entry("x", "manager:")]);
        assert!(bad_role.unwrap_err().contains("manager:<id>"));
    }
}

//! Bearer-token authentication: a token maps to an actor `{id, role}`.
//!
//! The token file holds only SHA-256 hashes of tokens (a Kubernetes Secret in a cluster):
//! `{"tokens": [{"sha256": "<hex>", "actor": {"id": "op-1", "role": "operator"}}]}`.

use std::{collections::BTreeMap, path::Path};

use serde::{Deserialize, Serialize};

use crate::{
    crypto::sha256,
    registry::{Actor, RoleSpec},
};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenEntry {
    /// Hex SHA-256 of the token.
    pub sha256: String,
    pub actor: Actor,
}

impl TokenEntry {
    pub fn for_token(token: &str, actor: Actor) -> Self {
        Self { sha256: hex::encode(sha256(token.as_bytes())), actor }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenFile {
    pub tokens: Vec<TokenEntry>,
}

#[derive(Debug, thiserror::Error)]
pub enum AuthConfigError {
    #[error("cannot read token file {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("token file {path} is not valid: {message}")]
    Invalid { path: String, message: String },
}

/// Resolves bearer tokens to actors.
#[derive(Debug, Clone)]
pub struct Authenticator {
    by_hash: BTreeMap<[u8; 32], Actor>,
}

impl Authenticator {
    /// Loads a token file whose roles must be among `roles` (the service's).
    pub fn from_file(path: &Path, roles: &[RoleSpec]) -> Result<Self, AuthConfigError> {
        let shown = path.display().to_string();
        let text =
            std::fs::read_to_string(path).map_err(|source| AuthConfigError::Read { path: shown.clone(), source })?;
        let file: TokenFile = serde_json::from_str(&text)
            .map_err(|e| AuthConfigError::Invalid { path: shown.clone(), message: e.to_string() })?;
        Self::new(&file, roles).map_err(|message| AuthConfigError::Invalid { path: shown, message })
    }

    /// An authenticator for the tokens of `file`, whose roles must be among `roles`.
    pub fn new(file: &TokenFile, roles: &[RoleSpec]) -> Result<Self, String> {
        let mut by_hash = BTreeMap::new();
        for (i, entry) in file.tokens.iter().enumerate() {
            let hash: [u8; 32] = hex::decode(&entry.sha256)
                .ok()
                .and_then(|b| b.try_into().ok())
                .ok_or_else(|| format!("tokens[{i}].sha256 must be 64 hex characters"))?;
            if entry.actor.role.is_node() {
                return Err(format!("tokens[{i}]: the 'node' role cannot be given to a token"));
            }
            if !roles.iter().any(|role| entry.actor.role.is(role.name)) {
                let known: Vec<&str> = roles.iter().map(|role| role.name).collect();
                return Err(format!(
                    "tokens[{i}]: role '{}' is not one of the service's roles ({})",
                    entry.actor.role.as_str(),
                    known.join(", ")
                ));
            }
            if entry.actor.id.is_empty() {
                return Err(format!("tokens[{i}]: actor id is empty"));
            }
            if by_hash.insert(hash, entry.actor.clone()).is_some() {
                return Err(format!("tokens[{i}]: the same token appears twice"));
            }
        }
        Ok(Self { by_hash })
    }

    /// The actor of a bearer token, if it is known.
    pub fn authenticate(&self, token: &str) -> Option<&Actor> {
        self.by_hash.get(&sha256(token.as_bytes()))
    }
}

/// What a look at the token file found (see [`TokenFileWatch`]).
#[derive(Debug)]
pub enum TokenFileChange {
    /// The same content as last time.
    Unchanged,
    /// New content, valid: use these tokens from now on.
    Reloaded(Authenticator),
    /// New content that cannot be used (unreadable or invalid): keep the tokens in use.
    Refused(AuthConfigError),
}

/// Watches a token file for new content, so a node picks up tokens added to or removed from
/// its Secret without a restart (Kubernetes swaps a mounted Secret's files in place).
#[derive(Debug)]
pub struct TokenFileWatch {
    path: std::path::PathBuf,
    roles: Vec<RoleSpec>,
    /// The content last looked at, valid or not: each new content is reported once.
    seen: Option<String>,
}

impl TokenFileWatch {
    /// Loads the file now (a node does not start without valid tokens) and watches it.
    pub fn start(path: &Path, roles: &[RoleSpec]) -> Result<(Self, Authenticator), AuthConfigError> {
        let auth = Authenticator::from_file(path, roles)?;
        let seen = std::fs::read_to_string(path).ok();
        Ok((Self { path: path.to_owned(), roles: roles.to_vec(), seen }, auth))
    }

    /// Reads the file again and says what changed.
    pub fn poll(&mut self) -> TokenFileChange {
        let shown = self.path.display().to_string();
        let text = match std::fs::read_to_string(&self.path) {
            Ok(text) => text,
            // A Secret being swapped can be missing for an instant; a later look sees it.
            Err(source) => return TokenFileChange::Refused(AuthConfigError::Read { path: shown, source }),
        };
        if self.seen.as_deref() == Some(text.as_str()) {
            return TokenFileChange::Unchanged;
        }
        self.seen = Some(text.clone());
        let parsed = serde_json::from_str::<TokenFile>(&text)
            .map_err(|e| e.to_string())
            .and_then(|file| Authenticator::new(&file, &self.roles));
        match parsed {
            Ok(auth) => TokenFileChange::Reloaded(auth),
            Err(message) => TokenFileChange::Refused(AuthConfigError::Invalid { path: shown, message }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::Role;

    #[test]
    fn a_watched_token_file_reloads_new_valid_content_once_and_refuses_invalid_content() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens.json");
        let op = |id: &str| Actor { id: id.into(), role: Role::new("operator") };
        let write = |file: &TokenFile| std::fs::write(&path, serde_json::to_vec(file).unwrap()).unwrap();
        write(&TokenFile { tokens: vec![TokenEntry::for_token("first", op("op-1"))] });
        let (mut watch, auth) = TokenFileWatch::start(&path, ROLES).unwrap();
        assert_eq!(auth.authenticate("first"), Some(&op("op-1")));
        assert!(matches!(watch.poll(), TokenFileChange::Unchanged));

        write(&TokenFile { tokens: vec![TokenEntry::for_token("second", op("op-2"))] });
        let TokenFileChange::Reloaded(auth) = watch.poll() else { panic!("new tokens are reloaded") };
        assert_eq!((auth.authenticate("second"), auth.authenticate("first")), (Some(&op("op-2")), None));
        assert!(matches!(watch.poll(), TokenFileChange::Unchanged), "reported once");

        std::fs::write(&path, "{not json").unwrap();
        assert!(matches!(watch.poll(), TokenFileChange::Refused(AuthConfigError::Invalid { .. })));
        assert!(matches!(watch.poll(), TokenFileChange::Unchanged), "an invalid file is reported once");
        std::fs::remove_file(&path).unwrap();
        assert!(matches!(watch.poll(), TokenFileChange::Refused(AuthConfigError::Read { .. })));
    }

    const ROLES: &[RoleSpec] = &[RoleSpec { name: "operator", reads_all_sessions: false }];

    #[test]
    fn tokens_resolve_by_hash_and_node_or_unknown_roles_are_refused() {
        let actor = Actor { id: "op-1".into(), role: Role::new("operator") };
        let file = TokenFile { tokens: vec![TokenEntry::for_token("secret", actor.clone())] };
        let auth = Authenticator::new(&file, ROLES).unwrap();
        assert_eq!(auth.authenticate("secret"), Some(&actor));
        assert_eq!(auth.authenticate("Secret"), None);
        let node = TokenFile { tokens: vec![TokenEntry::for_token("x", Actor { id: "n".into(), role: Role::node() })] };
        assert!(Authenticator::new(&node, ROLES).unwrap_err().contains("node"));
        let pirate = Actor { id: "p".into(), role: Role::new("pirate") };
        let unknown = TokenFile { tokens: vec![TokenEntry::for_token("y", pirate)] };
        assert!(Authenticator::new(&unknown, ROLES).unwrap_err().contains("'pirate' is not one of"));
    }
}

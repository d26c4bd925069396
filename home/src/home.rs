//! The files of one CometBFT home, and writing them to a directory.
//!
//! [`HomeFiles`] is plain data: the operator turns its [`HomeFile`] entries
//! into Secrets and ConfigMaps, the devnet passes it to [`write_home`]. Only
//! [`write_home`] touches the filesystem.
//!
//! `data/priv_validator_state.json` is special: it records the last height,
//! round and step this validator signed, which is what stops it from double
//! signing after a restart. It is therefore created when missing and never
//! overwritten, whatever else is rewritten.

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use crate::keys::initial_priv_validator_state_json;
use crate::{HomeError, NodeConfig, NodeKey, ValidatorKey};

/// Paths inside a home directory (CometBFT's defaults, which the rendered
/// `config.toml` names explicitly).
pub const CONFIG_TOML_PATH: &str = "config/config.toml";
pub const GENESIS_JSON_PATH: &str = "config/genesis.json";
pub const NODE_KEY_JSON_PATH: &str = "config/node_key.json";
pub const PRIV_VALIDATOR_KEY_JSON_PATH: &str = "config/priv_validator_key.json";
pub const PRIV_VALIDATOR_STATE_JSON_PATH: &str = "data/priv_validator_state.json";

/// Contents of every file of one node's home.
#[derive(Clone, PartialEq, Eq)]
pub struct HomeFiles {
    pub config_toml: String,
    pub genesis_json: String,
    pub node_key_json: String,
    pub priv_validator_key_json: String,
    /// Only written when the file does not exist yet.
    pub initial_priv_validator_state_json: String,
}

/// One entry of [`HomeFiles::entries`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HomeFile<'a> {
    /// Relative to the home directory, `/`-separated.
    pub relative_path: &'static str,
    pub contents: &'a str,
    /// Holds private key material: store in a Secret, write with mode 0600.
    pub secret: bool,
    /// Must be created once and never replaced (double-sign protection).
    pub create_only: bool,
}

impl HomeFiles {
    /// Renders all files of a node. Full nodes need a validator key too
    /// (CometBFT always loads one); they are simply not in the genesis.
    pub fn new(
        config: &NodeConfig,
        genesis_json: &str,
        node_key: &NodeKey,
        validator_key: &ValidatorKey,
    ) -> Result<Self, HomeError> {
        Ok(Self {
            config_toml: config.to_toml()?,
            genesis_json: genesis_json.to_owned(),
            node_key_json: node_key.node_key_json(),
            priv_validator_key_json: validator_key.priv_validator_key_json(),
            initial_priv_validator_state_json: initial_priv_validator_state_json(),
        })
    }

    /// Every file with its path and how it must be stored.
    pub fn entries(&self) -> [HomeFile<'_>; 5] {
        let file =
            |relative_path, contents, secret, create_only| HomeFile { relative_path, contents, secret, create_only };
        [
            file(CONFIG_TOML_PATH, self.config_toml.as_str(), false, false),
            file(GENESIS_JSON_PATH, self.genesis_json.as_str(), false, false),
            file(NODE_KEY_JSON_PATH, self.node_key_json.as_str(), true, false),
            file(PRIV_VALIDATOR_KEY_JSON_PATH, self.priv_validator_key_json.as_str(), true, false),
            file(PRIV_VALIDATOR_STATE_JSON_PATH, self.initial_priv_validator_state_json.as_str(), true, true),
        ]
    }
}

impl std::fmt::Debug for HomeFiles {
    // Key files are secrets: show only their paths.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let paths: Vec<&str> = self.entries().iter().map(|e| e.relative_path).collect();
        f.debug_struct("HomeFiles").field("files", &paths).finish_non_exhaustive()
    }
}

/// Writes a home directory: `config/` files are (re)written atomically, key
/// files with mode 0600, `data/` is created, and
/// `data/priv_validator_state.json` is created only if it does not exist.
///
/// Idempotent: running it again with the same files changes nothing.
pub fn write_home(dir: &Path, files: &HomeFiles) -> Result<(), HomeError> {
    for sub in ["config", "data"] {
        create_private_dir(&dir.join(sub))?;
    }
    for entry in files.entries() {
        let path = dir.join(entry.relative_path);
        let mode = if entry.secret { 0o600 } else { 0o644 };
        if entry.create_only {
            create_if_missing(&path, entry.contents, mode)?;
        } else {
            replace_atomically(&path, entry.contents, mode)?;
        }
    }
    Ok(())
}

fn io_error(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> HomeError {
    let path = path.to_path_buf();
    move |source| HomeError::Io { action, path, source }
}

/// CometBFT creates its home subdirectories with mode 0700; do the same.
fn create_private_dir(path: &Path) -> Result<(), HomeError> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(path).map_err(io_error("creating directory", path))
}

fn open_options(mode: u32) -> fs::OpenOptions {
    let mut options = fs::OpenOptions::new();
    options.write(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, mode);
    #[cfg(not(unix))]
    let _ = mode;
    options
}

/// `create_new` makes the existence check and the creation one atomic step,
/// so a concurrently started node can never have its state clobbered.
fn create_if_missing(path: &Path, contents: &str, mode: u32) -> Result<(), HomeError> {
    let mut file = match open_options(mode).create_new(true).open(path) {
        Ok(file) => file,
        Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => return Ok(()),
        Err(err) => return Err(io_error("creating", path)(err)),
    };
    file.write_all(contents.as_bytes()).and_then(|()| file.sync_all()).map_err(io_error("writing", path))
}

/// Writes a sibling temporary file and renames it over `path`, so a reader
/// (or a crash) never sees a half-written config or key.
fn replace_atomically(path: &Path, contents: &str, mode: u32) -> Result<(), HomeError> {
    let temp_path = temp_sibling(path);
    let result = (|| {
        let mut file = open_options(mode)
            .create(true)
            .truncate(true)
            .open(&temp_path)
            .map_err(io_error("creating", &temp_path))?;
        // The mode given to open() only applies to new files; enforce it on
        // a leftover temporary too.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            file.set_permissions(fs::Permissions::from_mode(mode))
                .map_err(io_error("setting permissions of", &temp_path))?;
        }
        file.write_all(contents.as_bytes()).and_then(|()| file.sync_all()).map_err(io_error("writing", &temp_path))?;
        fs::rename(&temp_path, path).map_err(io_error("renaming into place", path))
    })();
    if result.is_err() {
        let _ = fs::remove_file(&temp_path);
    }
    result
}

fn temp_sibling(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".bftws-tmp");
    path.with_file_name(name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{GenesisSpec, GenesisValidator, Timing};

    fn sample_files() -> HomeFiles {
        let node_key = NodeKey::from_seed([1; 32]);
        let validator_key = ValidatorKey::from_seed([2; 32]);
        let genesis = GenesisSpec::new(
            "bftws-test",
            "2025-01-01T00:00:00Z",
            vec![GenesisValidator { name: "node0".to_owned(), pub_key: validator_key.public_key(), power: 10 }],
            serde_json::json!({}),
        )
        .to_json()
        .unwrap();
        let config = NodeConfig::new("node0", "unix:///tmp/abci.sock", Timing::l2());
        HomeFiles::new(&config, &genesis, &node_key, &validator_key).unwrap()
    }

    fn read(dir: &Path, relative: &str) -> String {
        fs::read_to_string(dir.join(relative)).unwrap()
    }

    #[test]
    fn writes_every_file() {
        let dir = tempfile::tempdir().unwrap();
        let files = sample_files();
        write_home(dir.path(), &files).unwrap();
        for entry in files.entries() {
            assert_eq!(read(dir.path(), entry.relative_path), entry.contents);
        }
        assert!(dir.path().join("data").is_dir());
    }

    #[cfg(unix)]
    #[test]
    fn key_files_are_private() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        write_home(dir.path(), &sample_files()).unwrap();
        let mode = |relative: &str| fs::metadata(dir.path().join(relative)).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(NODE_KEY_JSON_PATH), 0o600);
        assert_eq!(mode(PRIV_VALIDATOR_KEY_JSON_PATH), 0o600);
        assert_eq!(mode(PRIV_VALIDATOR_STATE_JSON_PATH), 0o600);
        assert_eq!(mode(CONFIG_TOML_PATH), 0o644);
    }

    #[test]
    fn priv_validator_state_is_never_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let files = sample_files();
        write_home(dir.path(), &files).unwrap();
        let signed = r#"{"height":"42","round":0,"step":3}"#;
        fs::write(dir.path().join(PRIV_VALIDATOR_STATE_JSON_PATH), signed).unwrap();

        write_home(dir.path(), &files).unwrap();
        assert_eq!(read(dir.path(), PRIV_VALIDATOR_STATE_JSON_PATH), signed);
    }

    #[test]
    fn rewriting_is_idempotent_and_updates_config() {
        let dir = tempfile::tempdir().unwrap();
        let mut files = sample_files();
        write_home(dir.path(), &files).unwrap();
        write_home(dir.path(), &files).unwrap();
        assert_eq!(read(dir.path(), CONFIG_TOML_PATH), files.config_toml);

        files.config_toml.push_str("\n# changed\n");
        write_home(dir.path(), &files).unwrap();
        assert_eq!(read(dir.path(), CONFIG_TOML_PATH), files.config_toml);
        let leftovers: Vec<_> = fs::read_dir(dir.path().join("config"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .filter(|name| name.to_string_lossy().ends_with(".bftws-tmp"))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
    }

    #[test]
    fn io_errors_name_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let blocker = dir.path().join("not-a-dir");
        fs::write(&blocker, "file").unwrap();
        let err = write_home(&blocker, &sample_files()).unwrap_err();
        assert!(matches!(err, HomeError::Io { .. }));
        assert!(err.to_string().contains("not-a-dir"), "{err}");
    }

    #[test]
    fn debug_hides_key_material() {
        let files = sample_files();
        let debug = format!("{files:?}");
        assert!(!debug.contains("PrivKeyEd25519"), "{debug}");
    }
}

//! The optional config file (`--config FILE` or `PREMIA_CONFIG`): NATS connection settings for
//! `premia serve` and `premia publish`, and the HTTP API's address and tokens. Flags and environment variables win over it.

use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::Deserialize;

pub const DEFAULT_NATS_URL: &str = "nats://127.0.0.1:4222";

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    #[serde(default)]
    pub nats: NatsConfig,
    /// The HTTP API of `premia serve`: `listen` and `[[http.tokens]]`.
    #[serde(default)]
    pub http: premia_http::HttpConfig,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NatsConfig {
    pub url: Option<String>,
    pub user: Option<String>,
    pub password: Option<String>,
    pub token: Option<String>,
    pub nkey_seed: Option<String>,
    pub creds: Option<PathBuf>,
    pub tls_ca: Option<PathBuf>,
    #[serde(default)]
    pub tls_required: bool,
    pub stream: Option<String>,
    pub consumer: Option<String>,
}

/// The config file's settings, or none when no file is given.
pub fn load(path: Option<&Path>) -> anyhow::Result<ConfigFile> {
    let Some(path) = path else { return Ok(ConfigFile::default()) };
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read the config file {}", path.display()))?;
    toml::from_str(&text).with_context(|| format!("the config file {} is not valid", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sample_config_is_valid() {
        let sample = include_str!("../../../deploy/premia.toml");
        let config: ConfigFile = toml::from_str(sample).unwrap();
        assert_eq!(config.nats.url.as_deref(), Some("nats://127.0.0.1:4222"));
        assert_eq!(config.nats.stream.as_deref(), Some("PREMIA_EVENTS"));
        // The sample's tokens must be accepted as they are written.
        let tokens = premia_http::Tokens::from_config(&config.http.tokens).unwrap();
        assert!(!tokens.is_empty());
    }

    #[test]
    fn unknown_keys_are_refused() {
        assert!(toml::from_str::<ConfigFile>("[nats]\nurl = \"x\"\nuser_name = \"y\"\n").is_err());
    }
}

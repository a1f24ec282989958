//! The optional config file (`--config FILE` or `PREMIA_CONFIG`): NATS connection settings for
//! `premia serve` and `premia publish`, and the HTTP API's address and tokens. Flags and
//! environment variables win over it; defaults apply to what none of them gives.

use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::Deserialize;

pub const DEFAULT_NATS_URL: &str = "nats://127.0.0.1:4222";

/// Where `premia serve` listens for HTTP when nothing says otherwise: loopback only, so a
/// default install exposes nothing beyond the machine.
pub const DEFAULT_HTTP_LISTEN: &str = "127.0.0.1:8080";

/// What turns the API off wherever an address may be given.
const HTTP_OFF: &str = "off";

/// Where `premia serve` serves its HTTP API, or `None` when it is turned off. The first found
/// wins: `--no-http`, `--http` (clap fills it from PREMIA_HTTP when the flag is absent), the
/// config file's `[http] listen`, then [`DEFAULT_HTTP_LISTEN`]. `off` (any case) turns the API
/// off wherever it is given. An address must be HOST:PORT; the host is resolved when binding.
pub fn http_listen(flag: Option<&str>, no_http: bool, file: Option<&str>) -> anyhow::Result<Option<String>> {
    if no_http {
        return Ok(None);
    }
    let (given, source) = match (flag, file) {
        (Some(flag), _) => (flag, "--http (or PREMIA_HTTP)"),
        (None, Some(file)) => (file, "the config file's [http] listen"),
        (None, None) => (DEFAULT_HTTP_LISTEN, "the default"),
    };
    let given = given.trim();
    if given.eq_ignore_ascii_case(HTTP_OFF) {
        return Ok(None);
    }
    let port = given.rsplit_once(':').map(|(host, port)| (host, port.parse::<u16>()));
    match port {
        Some((host, Ok(_))) if !host.is_empty() => Ok(Some(given.to_string())),
        _ => anyhow::bail!(
            "{source} gives {given:?}, which is not an address to serve HTTP on: give HOST:PORT such as \
             127.0.0.1:8080 (or [::1]:8080), or \"off\" to serve no HTTP"
        ),
    }
}

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
    /// One server, or a cluster's seed servers: a list, or one string separated by commas.
    #[serde(default, deserialize_with = "url_list")]
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
    /// Replicas of a missing events stream when premia creates it (`--stream-replicas` wins).
    pub stream_replicas: Option<usize>,
}

/// `url = "nats://h1:4222"`, `url = "nats://h1:4222,nats://h2:4222"` or
/// `url = ["nats://h1:4222", "nats://h2:4222"]`, as the one comma-separated list NATS clients take.
fn url_list<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Urls {
        One(String),
        Many(Vec<String>),
    }
    Ok(Option::<Urls>::deserialize(deserializer)?.map(|urls| match urls {
        Urls::One(url) => url,
        Urls::Many(urls) => urls.join(","),
    }))
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
        // The sample leaves the address to the default.
        assert_eq!(http_listen(None, false, config.http.listen.as_deref()).unwrap().as_deref(), Some("127.0.0.1:8080"));
    }

    #[test]
    fn the_nats_url_may_be_a_list_of_seed_servers() {
        let one: ConfigFile = toml::from_str("[nats]\nurl = \"nats://h1:4222,nats://h2:4222\"").unwrap();
        assert_eq!(one.nats.url.as_deref(), Some("nats://h1:4222,nats://h2:4222"));
        let list: ConfigFile = toml::from_str("[nats]\nurl = [\"nats://h1:4222\", \"nats://h2:4222\"]").unwrap();
        assert_eq!(list.nats.url.as_deref(), Some("nats://h1:4222,nats://h2:4222"));
        let none: ConfigFile = toml::from_str("[nats]\nstream = \"S\"").unwrap();
        assert_eq!(none.nats.url, None);
    }

    #[test]
    fn the_http_address_is_the_flag_or_env_then_the_file_then_the_default_and_off_turns_it_off() {
        let listen = |flag: Option<&str>, no_http: bool, file: Option<&str>| http_listen(flag, no_http, file).unwrap();
        let at = |a: &str| Some(a.to_string());
        // Nothing given: loopback port 8080.
        assert_eq!(listen(None, false, None), at("127.0.0.1:8080"));
        // The file, then the flag (clap puts PREMIA_HTTP there when the flag is absent).
        assert_eq!(listen(None, false, Some("127.0.0.1:9001")), at("127.0.0.1:9001"));
        assert_eq!(listen(Some("0.0.0.0:9002"), false, Some("127.0.0.1:9001")), at("0.0.0.0:9002"));
        assert_eq!(listen(Some(" localhost:9003 "), false, None), at("localhost:9003"));
        assert_eq!(listen(Some("[::1]:9004"), false, None), at("[::1]:9004"));
        // Off, wherever it is said; --no-http over everything.
        assert_eq!(listen(Some("off"), false, Some("127.0.0.1:9001")), None);
        assert_eq!(listen(Some("OFF"), false, None), None);
        assert_eq!(listen(None, false, Some("off")), None);
        assert_eq!(listen(Some("127.0.0.1:9002"), false, Some("off")), at("127.0.0.1:9002"));
        assert_eq!(listen(Some("127.0.0.1:9002"), true, Some("127.0.0.1:9001")), None);
        assert_eq!(listen(None, true, None), None);
        // Not an address: refused with what to write, naming where it came from.
        for bad in ["8080", "127.0.0.1", "127.0.0.1:http", ":8080", "127.0.0.1:70000", "", "no"] {
            let e = http_listen(Some(bad), false, None).unwrap_err().to_string();
            assert!(e.contains("--http") && e.contains("HOST:PORT") && e.contains("\"off\""), "{bad:?}: {e}");
        }
        let e = http_listen(None, false, Some("nowhere")).unwrap_err().to_string();
        assert!(e.contains("[http] listen"), "{e}");
    }

    #[test]
    fn a_file_may_turn_the_api_off() {
        let config: ConfigFile = toml::from_str("[http]\nlisten = \"off\"\n").unwrap();
        assert_eq!(http_listen(None, false, config.http.listen.as_deref()).unwrap(), None);
    }

    #[test]
    fn unknown_keys_are_refused() {
        assert!(toml::from_str::<ConfigFile>("[nats]\nurl = \"x\"\nuser_name = \"y\"\n").is_err());
    }
}

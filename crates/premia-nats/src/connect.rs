//! Reaching NATS: the settings NATS users expect (URL, user/password, token, NKey seed, `.creds`
//! file, TLS with a custom CA), the client, and the crate's error type.

use std::path::PathBuf;

use premia_ledger::LedgerError;

/// How to reach NATS. Every field can come from a flag, an environment variable or the config file.
#[derive(Debug, Clone, Default)]
pub struct NatsSettings {
    /// One server, or a cluster's seed servers separated by commas (the NATS convention:
    /// `nats://h1:4222,nats://h2:4222`); the client learns the rest of the cluster from them.
    pub url: String,
    pub user: Option<String>,
    pub password: Option<String>,
    pub token: Option<String>,
    /// An NKey seed (`SU...`).
    pub nkey_seed: Option<String>,
    /// A `.creds` file (JWT and NKey seed), as `nsc` writes them.
    pub creds_file: Option<PathBuf>,
    /// A PEM file of CA certificates to trust, for a server with a private CA.
    pub tls_ca_file: Option<PathBuf>,
    /// Refuse to talk to the server without TLS.
    pub tls_required: bool,
    /// Keep trying when no server answers yet (serve, which rides out NATS being away; a
    /// one-shot command fails at once instead).
    pub retry_initial_connect: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum NatsError {
    #[error("cannot connect to NATS at {url}: {reason}. Is nats-server running there (with -js)? Check --nats-url and the credentials")]
    Connect { url: String, reason: String },
    #[error("cannot read {what} {path}: {reason}")]
    Credentials { what: &'static str, path: PathBuf, reason: String },
    #[error("JetStream refused to {action}: {reason}. Check that JetStream is enabled on the server (nats-server -js) and that no other stream claims the same subjects")]
    JetStream { action: String, reason: String },
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error("cannot read the input: {0}")]
    Read(std::io::Error),
    #[error(
        "a message delivered on {subject} has no JetStream metadata premia can read (reply subject {reply:?}: \
         {reason}), so its place in the stream is unknown; premia serve stopped before it, with every message \
         before it stored and acknowledged. Check that only JetStream delivers to premia's consumer (no other \
         client publishes to its inbox) and that nats-server is a release this premia supports, then start \
         premia serve again: it resumes after the last stored message"
    )]
    Metadata { subject: String, reply: Option<String>, reason: String },
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_url_list_names_every_seed_server() {
        let servers = super::servers("nats://h1:4222, nats://h2:4223,nats://h3:4224").unwrap();
        assert_eq!(servers.len(), 3);
        assert_eq!(servers[1].port(), 4223);
        let err = super::servers("nats://h1:4222,nats://h2:port").unwrap_err().to_string();
        assert!(err.contains("\"nats://h2:port\" is not a server URL"), "{err}");
        assert!(super::servers(" , ").is_err());
    }
}

pub(crate) fn js_error(action: impl Into<String>) -> impl FnOnce(String) -> NatsError {
    let action = action.into();
    move |reason| NatsError::JetStream { action, reason }
}

pub async fn connect(settings: &NatsSettings) -> Result<async_nats::Client, NatsError> {
    let mut options = async_nats::ConnectOptions::new().name("premia");
    if let (Some(user), Some(password)) = (&settings.user, &settings.password) {
        options = options.user_and_password(user.clone(), password.clone());
    }
    if let Some(token) = &settings.token {
        options = options.token(token.clone());
    }
    if let Some(seed) = &settings.nkey_seed {
        options = options.nkey(seed.clone());
    }
    if let Some(path) = &settings.creds_file {
        options = options.credentials_file(path).await.map_err(|e| NatsError::Credentials {
            what: "the credentials file",
            path: path.clone(),
            reason: e.to_string(),
        })?;
    }
    if let Some(path) = &settings.tls_ca_file {
        options = options.add_root_certificates(path.clone());
    }
    if settings.tls_required {
        options = options.require_tls(true);
    }
    if settings.retry_initial_connect {
        options = options.retry_on_initial_connect();
    }
    let servers = servers(&settings.url)?;
    options.connect(servers).await.map_err(|e| NatsError::Connect { url: settings.url.clone(), reason: e.to_string() })
}

/// The servers of a URL list (`nats://h1:4222,nats://h2:4222`), each checked.
pub fn servers(list: &str) -> Result<Vec<async_nats::ServerAddr>, NatsError> {
    let servers: Vec<&str> = list.split(',').map(str::trim).filter(|s| !s.is_empty()).collect();
    if servers.is_empty() {
        return Err(NatsError::Connect { url: list.to_string(), reason: "no server is named".into() });
    }
    servers
        .into_iter()
        .map(|server| {
            server.parse::<async_nats::ServerAddr>().map_err(|e| NatsError::Connect {
                url: list.to_string(),
                reason: format!(
                    "{server:?} is not a server URL ({e}); give nats://HOST:PORT, several separated by commas"
                ),
            })
        })
        .collect()
}

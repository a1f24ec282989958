//! Reaching NATS: the settings NATS users expect (URL, user/password, token, NKey seed, `.creds`
//! file, TLS with a custom CA), the client, and the crate's error type.

use std::path::PathBuf;

use premia_ledger::LedgerError;

/// How to reach NATS. Every field can come from a flag, an environment variable or the config file.
#[derive(Debug, Clone, Default)]
pub struct NatsSettings {
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
    options
        .connect(settings.url.as_str())
        .await
        .map_err(|e| NatsError::Connect { url: settings.url.clone(), reason: e.to_string() })
}

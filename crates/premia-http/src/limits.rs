//! What the API allows a client: how long it may take to send a request's head and its body,
//! how many connections are open at once and how many feeds one token holds open. Set in the
//! config file's `[http]` section; docs/HTTP.md ("Hostile clients") says why these defaults.

use std::time::Duration;

use crate::HttpConfig;

/// The limits the server applies, with [`HttpConfig`]'s defaults filled in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// How long a client has to send a request's line and headers, counted from when it
    /// connects or its previous answer ends: so also how long an idle keep-alive connection
    /// stays open.
    pub header_timeout: Duration,
    /// How long a client has to send a whole request body; 408 after it.
    pub body_timeout: Duration,
    /// Connections open at once; beyond it the oldest idle one is closed, or, with none idle,
    /// the new one is refused.
    pub max_connections: usize,
    /// Server-Sent Events feeds one token holds open at once; the next one gets 429.
    pub feeds_per_token: usize,
}

pub const DEFAULT_HEADER_TIMEOUT_SECS: u64 = 10;
pub const DEFAULT_BODY_TIMEOUT_SECS: u64 = 30;
pub const DEFAULT_MAX_CONNECTIONS: usize = 1024;
pub const DEFAULT_FEEDS_PER_TOKEN: usize = 8;

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            header_timeout: Duration::from_secs(DEFAULT_HEADER_TIMEOUT_SECS),
            body_timeout: Duration::from_secs(DEFAULT_BODY_TIMEOUT_SECS),
            max_connections: DEFAULT_MAX_CONNECTIONS,
            feeds_per_token: DEFAULT_FEEDS_PER_TOKEN,
        }
    }
}

/// A setting given as 0, which would refuse everything, said as what to write instead.
fn positive<T: PartialEq + Default + Copy>(value: Option<T>, key: &str, default: T) -> Result<T, String> {
    match value {
        Some(v) if v == T::default() => Err(format!(
            "[http] {key} is 0, which would refuse every client; give a positive number, or leave it out for the default"
        )),
        Some(v) => Ok(v),
        None => Ok(default),
    }
}

impl HttpConfig {
    /// The limits this section sets, defaults for what it leaves out; an error names the key.
    pub fn limits(&self) -> Result<Limits, String> {
        let defaults = Limits::default();
        Ok(Limits {
            header_timeout: Duration::from_secs(positive(
                self.header_timeout_secs,
                "header_timeout_secs",
                DEFAULT_HEADER_TIMEOUT_SECS,
            )?),
            body_timeout: Duration::from_secs(positive(
                self.body_timeout_secs,
                "body_timeout_secs",
                DEFAULT_BODY_TIMEOUT_SECS,
            )?),
            max_connections: positive(self.max_connections, "max_connections", defaults.max_connections)?,
            feeds_per_token: positive(self.max_feeds_per_token, "max_feeds_per_token", defaults.feeds_per_token)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_the_section_leaves_out_is_the_default_and_zero_is_refused() {
        assert_eq!(HttpConfig::default().limits(), Ok(Limits::default()));
        let set = HttpConfig {
            header_timeout_secs: Some(2),
            body_timeout_secs: Some(3),
            max_connections: Some(40),
            max_feeds_per_token: Some(1),
            ..HttpConfig::default()
        };
        assert_eq!(
            set.limits(),
            Ok(Limits {
                header_timeout: Duration::from_secs(2),
                body_timeout: Duration::from_secs(3),
                max_connections: 40,
                feeds_per_token: 1,
            })
        );
        let zero = HttpConfig { max_connections: Some(0), ..HttpConfig::default() };
        let e = zero.limits().unwrap_err();
        assert!(e.contains("max_connections") && e.contains("positive"), "{e}");
    }
}

//! `premia serve` and `premia publish`: the NATS commands, on a tokio runtime of their own.

use std::io::{self, BufRead, BufReader, Write};
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use premia_ledger::{Ledger, LedgerOptions};
use premia_nats::{NatsSettings, ServeOptions, StreamSettings};

use crate::cli::{Format, NatsArgs, PublishArgs, ServeArgs};
use crate::config::{ConfigFile, DEFAULT_NATS_URL};
use crate::support::{counts_text, progress_bar};

/// Flags and environment variables first, then the config file, then the defaults.
pub(crate) fn settings(args: &NatsArgs, config: &ConfigFile) -> NatsSettings {
    let file = &config.nats;
    NatsSettings {
        url: args.nats_url.clone().or(file.url.clone()).unwrap_or_else(|| DEFAULT_NATS_URL.to_string()),
        user: args.nats_user.clone().or(file.user.clone()),
        password: args.nats_password.clone().or(file.password.clone()),
        token: args.nats_token.clone().or(file.token.clone()),
        nkey_seed: args.nats_nkey_seed.clone().or(file.nkey_seed.clone()),
        creds_file: args.nats_creds.clone().or(file.creds.clone()),
        tls_ca_file: args.nats_tls_ca.clone().or(file.tls_ca.clone()),
        tls_required: args.nats_tls_required || file.tls_required,
        retry_initial_connect: false,
    }
}

pub(crate) fn stream_name(args: &NatsArgs, config: &ConfigFile) -> String {
    args.stream.clone().or(config.nats.stream.clone()).unwrap_or_else(|| StreamSettings::default().stream)
}

/// The events stream as the flags, then the config file, say.
pub(crate) fn stream_settings(args: &NatsArgs, config: &ConfigFile) -> StreamSettings {
    StreamSettings {
        stream: stream_name(args, config),
        replicas: args.stream_replicas.map(|n| n as usize).or(config.nats.stream_replicas).unwrap_or(1),
        ..StreamSettings::default()
    }
}

pub(crate) fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => return std::future::pending().await,
        };
        tokio::select! {
            _ = interrupt => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
    tracing::info!("shutting down after the batch in hand");
}

pub fn serve(data_dir: &Path, args: &ServeArgs, config: &ConfigFile) -> anyhow::Result<ExitCode> {
    let http = crate::config::http_listen(args.http.as_deref(), args.no_http, config.http.listen.as_deref())?;
    let tokens = premia_http::Tokens::from_config(&config.http.tokens)
        .map_err(|e| anyhow::anyhow!("the config file's [http] section is not valid: {e}"))?;
    let limits =
        config.http.limits().map_err(|e| anyhow::anyhow!("the config file's [http] section is not valid: {e}"))?;
    // The address is taken first: one in use stops serve at once, before the ledger is folded
    // and NATS dialled, rather than after a long start (or never, while NATS is down).
    let listener = http.as_deref().map(bind_http).transpose()?;
    let mut ledger = Ledger::open(data_dir, &LedgerOptions::default(), "serve")?;
    let stream = StreamSettings {
        consumer: args
            .consumer
            .clone()
            .or(config.nats.consumer.clone())
            .unwrap_or_else(|| StreamSettings::default().consumer),
        ..stream_settings(&args.nats, config)
    };
    let options =
        ServeOptions { batch: args.batch as usize, drain: args.drain, feed: !args.no_feed, ..ServeOptions::default() };
    let report = runtime()?.block_on(async {
        // serve rides out a NATS that is not up yet, as it rides out one that goes away.
        let nats = premia_nats::NatsSettings { retry_initial_connect: true, ..settings(&args.nats, config) };
        let client = premia_nats::connect(&nats).await?;
        let readers = match listener {
            Some(listener) => {
                let backup_dir = args.backup_dir.clone().or(config.http.backup_dir.clone());
                let api = Api { tokens, limits, backup_dir, statement_periods: args.statement_periods as usize };
                Some(start_http(listener, api, &client, &stream)?)
            }
            None => None,
        };
        premia_nats::serve(&mut ledger, &client, &stream, &options, shutdown_signal(), readers)
            .await
            .map_err(anyhow::Error::from)
    })?;
    let mut out = io::stdout().lock();
    match args.format {
        Format::Json => writeln!(out, "{}", serde_json::to_string(&report.counts)?)?,
        Format::Text => {
            counts_text(&report.counts, &mut out)?;
            writeln!(
                out,
                "({} batches committed and acked; {} redelivered messages skipped)",
                report.batches, report.skipped
            )?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Takes the HTTP API's address, or says what to do instead.
fn bind_http(address: &str) -> anyhow::Result<std::net::TcpListener> {
    let listener = std::net::TcpListener::bind(address).map_err(|e| {
        let why = if e.kind() == io::ErrorKind::AddrInUse {
            "the address is already in use (by another premia serve, or another program)".to_string()
        } else {
            e.to_string()
        };
        anyhow::anyhow!(
            "cannot serve HTTP on {address}: {why}. Pick another address with --http HOST:PORT (or PREMIA_HTTP, \
             or listen in the config file's [http] section), or turn the API off with --http off"
        )
    })?;
    // tokio takes the socket over as it is: it must not block.
    listener.set_nonblocking(true).with_context(|| format!("cannot set up the HTTP socket on {address}"))?;
    Ok(listener)
}

/// What the HTTP API is set up with, from the flags and the config file.
struct Api {
    tokens: premia_http::Tokens,
    limits: premia_http::Limits,
    backup_dir: Option<std::path::PathBuf>,
    /// The periods whose entries the statements' read model holds at most.
    statement_periods: usize,
}

/// Serves the HTTP API on threads of its own; the returned readers go to the serving loop,
/// which answers the API's queries and publishes its statements' read model.
fn start_http(
    listener: std::net::TcpListener,
    api: Api,
    client: &async_nats::Client,
    stream: &StreamSettings,
) -> anyhow::Result<premia_nats::Readers> {
    let Api { tokens, limits, backup_dir, statement_periods } = api;
    if tokens.is_empty() {
        tracing::warn!(
            "no [[http.tokens]] in the config file: every /v1 and /metrics request (and the dashboard's sign-in) will be refused with 401; make a token with `premia token --role ROLE`"
        );
    }
    let (sender, receiver) = tokio::sync::mpsc::channel(premia_http::QUERY_QUEUE);
    let statements = std::sync::Arc::new(premia_ledger::ReadModel::new(statement_periods));
    let state = premia_http::ApiState::new(sender, statements.clone(), tokens, Some(client.clone()), stream.clone())
        .with_backup_dir(backup_dir)
        .with_limits(limits);
    tracing::info!(address = %listener.local_addr().map(|a| a.to_string()).unwrap_or_default(), "HTTP API listening");
    // A runtime of its own: the serving loop holds its worker thread for each step (a chunk
    // folded, a period's entries loaded: milliseconds, more), and a request queued on that
    // worker would wait for the step. On threads of their own, requests are scheduled by the
    // OS beside the fold, which lets a thread that mostly waits run as soon as it wakes.
    let (started, start) = std::sync::mpsc::sync_channel(1);
    std::thread::Builder::new()
        .name("premia-http".into())
        .spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .thread_name("premia-http")
                .enable_all()
                .build();
            let runtime = match runtime {
                Ok(runtime) => runtime,
                Err(e) => {
                    let _ = started.send(Err(e));
                    return;
                }
            };
            let listener = match runtime.block_on(async { tokio::net::TcpListener::from_std(listener) }) {
                Ok(listener) => listener,
                Err(e) => {
                    let _ = started.send(Err(e));
                    return;
                }
            };
            let _ = started.send(Ok(()));
            if let Err(e) = runtime.block_on(premia_http::run(listener, state)) {
                tracing::error!(error = %e, "the HTTP API stopped");
            }
        })
        .context("cannot start the HTTP API's thread")?;
    start
        .recv()
        .map_err(|_| anyhow::anyhow!("the HTTP API's thread ended before it started"))?
        .context("cannot start the HTTP API's runtime")?;
    Ok(premia_nats::Readers { queries: receiver, statements })
}

/// The exit status of `publish` when some lines were never acknowledged.
pub const PUBLISH_UNCONFIRMED: u8 = 5;

pub fn publish(args: &PublishArgs, config: &ConfigFile) -> anyhow::Result<ExitCode> {
    let reader: Box<dyn BufRead + Send> = if args.input == "-" {
        Box::new(BufReader::with_capacity(1 << 20, io::stdin()))
    } else {
        let file =
            std::fs::File::open(&args.input).with_context(|| format!("cannot open {}; check the path", args.input))?;
        Box::new(BufReader::with_capacity(1 << 20, file))
    };
    let stream = stream_settings(&args.nats, config);
    let bar = progress_bar(None, "publishing");
    let report = runtime()?.block_on(async {
        let client = premia_nats::connect(&settings(&args.nats, config)).await?;
        let lines = reader.split(b'\n');
        let report = premia_nats::publish_lines(&client, &stream, lines, args.in_flight.max(1), |r| {
            bar.set_position(r.published)
        })
        .await?;
        client.flush().await.ok();
        Ok::<_, premia_nats::NatsError>(report)
    })?;
    bar.finish_and_clear();
    match args.format {
        Format::Json => println!("{}", serde_json::to_string(&report)?),
        Format::Text => {
            println!("published   {:>10}", report.published);
            println!("duplicates  {:>10}   (JetStream had these message ids already)", report.duplicates);
            if report.not_events > 0 {
                println!(
                    "not events  {:>10}   (named by the hash of their bytes; the ledger will reject them)",
                    report.not_events
                );
            }
            if report.resent > 0 {
                println!(
                    "resent      {:>10}   (not acknowledged at first; sent again with the same message id)",
                    report.resent
                );
            }
        }
    }
    if !report.unconfirmed.is_empty() {
        let lines: Vec<String> = report.unconfirmed.iter().map(u64::to_string).collect();
        eprintln!(
            "error: JetStream never acknowledged {} line(s) of {} within {} s: line {}. They may or may not be in the stream: publish the file again once NATS answers (events carry a message id, so what is stored already is a duplicate)",
            lines.len(),
            args.input,
            premia_nats::RETRY_FOR.as_secs(),
            lines.join(", ")
        );
        return Ok(ExitCode::from(PUBLISH_UNCONFIRMED));
    }
    Ok(ExitCode::SUCCESS)
}

/// A nats-server started for a scratch run (the demo, a benchmark): a free loopback port, a
/// temporary store, stopped when dropped.
pub struct ScratchServer {
    child: std::process::Child,
    _store: tempfile::TempDir,
}

impl Drop for ScratchServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn find_nats_server() -> Option<std::path::PathBuf> {
    let on_path = std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).map(|p| p.join("nats-server")).collect::<Vec<_>>())
        .unwrap_or_default();
    on_path.into_iter().chain(["/usr/sbin/nats-server".into(), "/usr/bin/nats-server".into()]).find(|p| p.is_file())
}

/// Starts nats-server from the PATH with JetStream on a free loopback port; returns its URL.
pub fn start_scratch_server() -> anyhow::Result<(ScratchServer, String)> {
    let Some(binary) = find_nats_server() else {
        anyhow::bail!(
            "no NATS server answers at the default URL and nats-server is not installed. Install it \
             (Debian/Ubuntu: apt-get install nats-server), point --nats-url at a server with JetStream, \
             or run `premia demo --offline`"
        );
    };
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let store = tempfile::tempdir()?;
    let child = std::process::Command::new(&binary)
        .args(["-a", "127.0.0.1", "-p", &port.to_string(), "-js", "-sd"])
        .arg(store.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .with_context(|| format!("cannot start {}", binary.display()))?;
    let server = ScratchServer { child, _store: store };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        anyhow::ensure!(
            std::time::Instant::now() < deadline,
            "{} did not start listening on port {port}",
            binary.display()
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    Ok((server, format!("nats://127.0.0.1:{port}")))
}

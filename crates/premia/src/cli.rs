//! The command-line surface. Integrators and auditors script it, so names and formats are stable.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

const ABOUT: &str = "premia: an event-sourced commission ledger for account managers.";

const LONG_ABOUT: &str = "\
premia: an event-sourced commission ledger for account managers.

CRM events (deal.created, payment.received, payment.late, deal.cancelled, payment.refunded,
plan.assigned, period.closed) are folded, in the order received, into an append-only ledger.
Every amount on a statement is a replayable consequence of that log: commission on margin at a
rate set by how fast the client paid, fines for deals lost through the manager's fault, and the
plan bonus of a closed period.

A first tour:
  premia demo                                   the worked month, end to end, in a scratch dir
  premia ingest events.jsonl                    fold JSON Lines into ./premia-data
  premia statement --period 2026-11             what every manager has earned in November
  premia close 2026-11                          close November: plan bonuses are booked
  premia rejected                               what was refused, and why
  premia replay --period 2026-11 --as-of 40     November as the ledger knew it at log seq 40
  premia verify                                 check that nobody edited history
  premia serve                                  consume the NATS stream, publish the accrual feed,
                                                serve the HTTP API on 127.0.0.1:8080

The rules are the active scheme: `premia scheme show` prints it.";

#[derive(Debug, Parser)]
#[command(name = "premia", version, about = ABOUT, long_about = LONG_ABOUT, propagate_version = true)]
pub struct Cli {
    /// Where the ledger lives. Created on first use; one process at a time may hold it.
    #[arg(long, global = true, env = "PREMIA_DATA_DIR", default_value = "./premia-data", value_name = "DIR")]
    pub data_dir: PathBuf,

    /// A TOML config file (see deploy/premia.toml). Flags and environment variables win over it.
    #[arg(long, global = true, env = "PREMIA_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Log lines on standard error: `human` or `json`. The level comes from RUST_LOG (default: warn).
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Human)]
    pub log_format: LogFormat,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Human,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Aligned text for people.
    Text,
    /// JSON for programs.
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StatementFormat {
    /// Aligned text for people, with a one-line reason per entry.
    Text,
    /// The statement contract: amounts as strings with two decimals.
    Json,
    /// One row per manager, ready for payroll import.
    Csv,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the worked example month end to end in a scratch data dir and print every statement.
    ///
    /// The example month is embedded. The demo publishes it to NATS (the server at --nats-url,
    /// or a nats-server it starts itself from the PATH), serves until the stream is drained, and
    /// prints every manager's statement. It uses a stream of its own (deleted afterwards) and a
    /// temporary data dir unless --keep is given, so nothing of yours is touched. --offline
    /// folds the month without NATS.
    Demo(DemoArgs),

    /// Fold events from a JSON Lines file (or - for standard input) into the ledger.
    ///
    /// Lines are read in order. Each non-blank line ends up applied, a duplicate (same source, id
    /// and content as an earlier event), rejected (with the raw bytes kept; see `premia rejected`)
    /// or parked (waiting for the deal or payment it refers to; see `premia pending`).
    /// Ingesting the same file again changes nothing: its events are duplicates, and lines that
    /// fail validation are rejected again. Every batch is flushed to disk before the next is read.
    ///
    /// A file written by `premia export` (its first line begins with {"premia_export") is not
    /// folded as new events: its log records are re-logged with their original seq, arrival time
    /// and origin, so the hash chain and the seals come out the same, or refused when they do not
    /// continue this ledger's log (docs/AUDIT.md).
    ///
    /// Exit status: 0 when the file was read to the end, even when lines were rejected; 1 when
    /// the ledger cannot work (unreadable input, store error, data dir in use) or an export is
    /// refused.
    Ingest(IngestArgs),

    /// Print a period's statement: per manager, commission, clawback, fines, plan bonus and total,
    /// the plan's progress, and every entry with the event that caused it.
    Statement(StatementArgs),

    /// Close a period: append a period.closed event. Plan bonuses are booked; facts dated in the
    /// period that arrive later are booked in the next open period as adjustments.
    Close(CloseArgs),

    /// List what was rejected, why (a reason code and a sentence), and the raw bytes received.
    Rejected(RejectedArgs),

    /// List parked events: facts waiting for the deal or payment they refer to.
    Pending(FormatArgs),

    /// Fold the whole log again from nothing, check the hash chain, and compare with the stored
    /// state. Exit status 3 when they differ (the rebuilt state then replaces the stored one).
    Rebuild(FormatArgs),

    /// Check that nobody edited history, writing nothing: every link of the hash chain, then a
    /// fold of the whole log from nothing compared with every stored entry, the snapshot and the
    /// seal of every closed period.
    ///
    /// Exit status: 0 when everything matches; 4 when something does not (the report names the
    /// first bad ledger sequence number and each problem); 1 when the ledger cannot be read.
    Verify(VerifyArgs),

    /// Write log records as JSON Lines, as received, with their ledger seq, arrival time, origin
    /// and chain hash. `premia ingest` of an export into an empty data dir rebuilds the same log:
    /// the same statements, entries and seals (docs/AUDIT.md).
    Export(ExportArgs),

    /// Show, check or activate the commission scheme (rates, grace days, fine, plan tiers, calendar).
    #[command(subcommand)]
    Scheme(SchemeCommand),

    /// The article's figures per manager for a period: deals won, distinct and repeat clients,
    /// average deal amount, money and margin received, cancellations by the manager's fault,
    /// overdue deals and receivables at the period's end, and plan achievement.
    ///
    /// Definitions: docs/RULES-CHOICES.md ("Figures"). CSV is one row per manager.
    Figures(StatementArgs),

    /// Plans: suggest next period's targets from this period's actuals.
    #[command(subcommand)]
    Plan(PlanCommand),

    /// Make a new bearer token for the HTTP API and print it with the lines to add to the config
    /// file. The config keeps only the token's SHA-256, so give the token to its holder now:
    /// premia cannot show it again. Roles: admin (everything), auditor (reads everything),
    /// manager:<id> (that manager's statements, entries, feed and dashboard), publisher
    /// (POST /v1/events only).
    Token(TokenArgs),

    /// Write a synthetic but realistic event stream (for benchmarks and trials) to standard output.
    Generate(GenerateArgs),

    /// Write the JSON Schemas of the event contract into a directory (the repo keeps them in schemas/).
    Schemas(SchemasArgs),

    /// Re-fold a period from the raw log (never from stored state) and print its statement.
    ///
    /// The output has the shape of `premia statement` (the same statement function and renderer
    /// build it). Only the records the period depends on are folded, chosen by an index kept in
    /// DIR/replay-index (a cache, built on first use). --as-of shows the period as the ledger
    /// knew it then, --diff-as-of what changed since a moment, --scheme what it would be under
    /// another scheme (nothing is written). See docs/REPLAY.md.
    Replay(ReplayArgs),

    /// Show the arithmetic behind an entry, a payment or a deal: the real numbers, the rule that
    /// applied, the events and ledger seqs it depends on, and the scheme in force.
    Explain(ExplainArgs),

    /// Consume the JetStream events stream into the ledger, acking each batch once it is on disk.
    ///
    /// Creates the stream (file-backed) and premia's durable pull consumer when missing. Each
    /// fetched batch is folded, written as one sled batch with the stream position, flushed, and
    /// only then acked; a restart after a crash neither loses nor double-counts anything.
    /// Rejections are stored and also published to premia.rejected.<reason>. Stops on SIGINT or
    /// SIGTERM after finishing the batch in hand.
    ///
    /// It also serves the ledger over HTTP, on 127.0.0.1:8080 unless told otherwise (--http ADDR,
    /// or --http off for no HTTP at all), to the bearer tokens of the config file's
    /// [[http.tokens]] (see deploy/premia.toml). When the address is taken, serve stops at once
    /// and says so: pick another address, or turn the API off.
    Serve(ServeArgs),

    /// Publish JSON Lines to the events stream with Nats-Msg-Id set from each event's source and
    /// id, many acks in flight. Lines that are not events are published as they are, without the
    /// header, so the ledger records why it refuses them.
    Publish(PublishArgs),

    /// Build a new data dir from a source that still holds every event, after the data dir was
    /// damaged or lost: the JetStream stream from its first message, or an export file (`premia
    /// export --from-seq 1` of an intact copy). Says how far the new log reaches (last seq, chain
    /// hash, kept rejections) and whether that equals the committed head of the damaged data dir
    /// (--data-dir), when that can still be read. The damaged data dir is only read. See
    /// docs/OPERATIONS.md.
    Recover(RecoverArgs),

    /// Copy the ledger into a new directory, consistent as of its last durable batch. While
    /// `premia serve` runs, ask it instead: POST /v1/admin/backup (docs/OPERATIONS.md).
    Backup(BackupArgs),
}

#[derive(Debug, Args)]
pub struct RecoverArgs {
    /// The new data dir to build: it must not exist, or be empty.
    #[arg(long, value_name = "DIR")]
    pub into: PathBuf,
    /// Rebuild from an export file (JSON Lines from `premia export --from-seq 1`).
    #[arg(long, value_name = "FILE", required_unless_present = "from_stream", conflicts_with = "from_stream")]
    pub from_export: Option<PathBuf>,
    /// Rebuild from the JetStream events stream, from its first message.
    #[arg(long)]
    pub from_stream: bool,
    #[command(flatten)]
    pub nats: NatsArgs,
    /// The durable consumer the rebuild reads with, deleted when it is done [default:
    /// premia-recover]. Give another name when two rebuilds run at once.
    #[arg(long, value_name = "NAME")]
    pub consumer: Option<String>,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

#[derive(Debug, Args)]
pub struct BackupArgs {
    /// The directory to copy the ledger into: it must not exist, or be empty.
    #[arg(long, value_name = "DIR")]
    pub to: PathBuf,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

#[derive(Debug, Args)]
pub struct NatsArgs {
    /// The NATS server, or a cluster's seed servers separated by commas
    /// (nats://h1:4222,nats://h2:4222) [default: nats://127.0.0.1:4222, or the config file's
    /// nats.url].
    #[arg(long, env = "PREMIA_NATS_URL", value_name = "URL")]
    pub nats_url: Option<String>,
    #[arg(long, env = "PREMIA_NATS_USER", value_name = "USER", requires = "nats_password")]
    pub nats_user: Option<String>,
    #[arg(long, env = "PREMIA_NATS_PASSWORD", value_name = "PASSWORD", hide_env_values = true)]
    pub nats_password: Option<String>,
    #[arg(long, env = "PREMIA_NATS_TOKEN", value_name = "TOKEN", hide_env_values = true)]
    pub nats_token: Option<String>,
    /// An NKey seed (SU...).
    #[arg(long, env = "PREMIA_NATS_NKEY_SEED", value_name = "SEED", hide_env_values = true)]
    pub nats_nkey_seed: Option<String>,
    /// A .creds file (JWT and NKey seed) as nsc writes them.
    #[arg(long, env = "PREMIA_NATS_CREDS", value_name = "FILE")]
    pub nats_creds: Option<PathBuf>,
    /// PEM file of CA certificates to trust (a server with a private CA).
    #[arg(long, env = "PREMIA_NATS_TLS_CA", value_name = "FILE")]
    pub nats_tls_ca: Option<PathBuf>,
    /// Refuse a connection without TLS.
    #[arg(long, env = "PREMIA_NATS_TLS_REQUIRED")]
    pub nats_tls_required: bool,
    /// The JetStream stream of CRM events [default: PREMIA_EVENTS].
    #[arg(long, env = "PREMIA_STREAM")]
    pub stream: Option<String>,
    /// Create a missing events stream with this many replicas (3 on a three-node cluster);
    /// an existing stream with fewer is used as it is, with a warning [default: the config
    /// file's stream_replicas, else 1].
    #[arg(long, env = "PREMIA_STREAM_REPLICAS", value_name = "N", value_parser = clap::value_parser!(u64).range(1..=5))]
    pub stream_replicas: Option<u64>,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub nats: NatsArgs,
    /// premia's durable consumer on the stream [default: premia].
    #[arg(long, env = "PREMIA_CONSUMER")]
    pub consumer: Option<String>,
    /// The most messages per durable batch and per ack. Under load batches fill up; when
    /// messages trickle in, whatever has arrived is committed at once.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    pub batch: u64,
    /// Consume until nothing is pending for premia, then exit 0 (for batch jobs and tests).
    #[arg(long)]
    pub drain: bool,
    /// Do not publish the accrual feed (for a backfill nobody watches live; the ledger is the
    /// same either way).
    #[arg(long)]
    pub no_feed: bool,
    /// Where to serve the HTTP API (statements, entries, explain, rejected, pending, the feed,
    /// POST /v1/events, /healthz, /readyz, /metrics, /openapi.json): HOST:PORT, such as
    /// 127.0.0.1:9090 (or 0.0.0.0:8080 for every interface), or `off` for no HTTP. First found
    /// wins: this flag, PREMIA_HTTP, the config file's [http] listen (which may also say "off"),
    /// then 127.0.0.1:8080. Requests need a bearer token from [[http.tokens]]; /healthz,
    /// /readyz and /openapi.json need none.
    #[arg(long, env = "PREMIA_HTTP", value_name = "ADDR|off")]
    pub http: Option<String>,
    /// No HTTP API: the same as --http off; it wins over --http, PREMIA_HTTP and the config file.
    #[arg(long)]
    pub no_http: bool,
    /// How many periods' entries the HTTP API keeps in memory to serve statements from (about
    /// 350 bytes an entry, 100,000 entries a period at 1,000,000 events a year); reading
    /// another period drops the one read least recently.
    #[arg(long, default_value_t = 3, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=1000))]
    pub statement_periods: u64,
    /// Where an admin's POST /v1/admin/backup puts consistent backups of the ledger, taken while
    /// serve goes on [default: the config file's [http] backup_dir; without one, none].
    #[arg(long, env = "PREMIA_BACKUP_DIR", value_name = "DIR")]
    pub backup_dir: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

#[derive(Debug, Args)]
pub struct PublishArgs {
    /// A JSON Lines file, or - for standard input.
    #[arg(value_name = "FILE|-")]
    pub input: String,
    #[command(flatten)]
    pub nats: NatsArgs,
    /// Publish acks awaited at most at once.
    #[arg(long, default_value_t = 4096)]
    pub in_flight: usize,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Keep the demo's data dir at this path instead of a temporary one.
    #[arg(long, value_name = "DIR")]
    pub keep: Option<PathBuf>,
    /// Where to look for a NATS server first. Without one there, the demo starts nats-server
    /// from the PATH on a free loopback port with a temporary store.
    #[arg(long, env = "PREMIA_NATS_URL", default_value = "nats://127.0.0.1:4222", value_name = "URL")]
    pub nats_url: String,
    /// Skip NATS: fold the example month straight from the embedded file.
    #[arg(long)]
    pub offline: bool,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

#[derive(Debug, Args)]
pub struct IngestArgs {
    /// A JSON Lines file, or - for standard input.
    #[arg(value_name = "FILE|-")]
    pub input: String,
    /// `json` prints exactly one JSON object as the last line:
    /// {"applied":N,"duplicates":N,"rejected":N,"parked":N}
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Lines per durable batch: larger is faster, smaller loses less work to a crash.
    #[arg(long, default_value_t = 8192, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub batch_lines: u64,
}

#[derive(Debug, Args)]
pub struct StatementArgs {
    /// The period, a calendar month: YYYY-MM.
    #[arg(long, value_name = "YYYY-MM")]
    pub period: String,
    /// Only this account manager.
    #[arg(long, value_name = "ID")]
    pub manager: Option<String>,
    #[arg(long, value_enum, default_value_t = StatementFormat::Text)]
    pub format: StatementFormat,
}

#[derive(Debug, Args)]
pub struct CloseArgs {
    /// The period to close: YYYY-MM.
    #[arg(value_name = "YYYY-MM")]
    pub period: String,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

#[derive(Debug, Args)]
pub struct RejectedArgs {
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Write the exact bytes received for one rejection (a ref from the listing, such as
    /// rej:3 or seq:17) to standard output, and nothing else.
    #[arg(long, value_name = "REF")]
    pub raw: Option<String>,
}

#[derive(Debug, Args)]
pub struct FormatArgs {
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

#[derive(Debug, Args)]
pub struct TokenArgs {
    /// admin, auditor, manager:<id> or publisher.
    #[arg(long, value_name = "ROLE")]
    pub role: String,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

#[derive(Debug, Subcommand)]
pub enum PlanCommand {
    /// Print next period's plan.assigned events (JSON Lines, ready for `premia publish -` or
    /// `premia ingest -`): each manager's actual in --period (the scheme's plan metric) raised
    /// by --growth and rounded to 0.01. The article sets plans 5-20 % above what was achieved.
    /// Managers with nothing achieved get no suggestion (named on standard error).
    Suggest(PlanSuggestArgs),
}

#[derive(Debug, Args)]
pub struct PlanSuggestArgs {
    /// The period whose actuals the targets are based on; targets are for the month after it.
    #[arg(long, value_name = "YYYY-MM")]
    pub period: String,
    /// How far above the actual: `10%`, `12.5%` or `10`.
    #[arg(long, default_value = "10%")]
    pub growth: String,
}

#[derive(Debug, Subcommand)]
pub enum SchemeCommand {
    /// Print the active scheme as TOML (the built-in default until one is activated).
    Show {
        /// Print the built-in default scheme instead of the active one.
        #[arg(long)]
        default: bool,
    },
    /// Check a scheme file and name every problem; exit status 1 when it is invalid.
    Check {
        #[arg(value_name = "FILE")]
        file: PathBuf,
    },
    /// Make a scheme apply to every event folded from now on (it is logged as scheme.activated).
    Activate {
        #[arg(value_name = "FILE")]
        file: PathBuf,
    },
}

#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// How many lines to write.
    #[arg(long, default_value_t = 10_000, value_name = "N")]
    pub events: u64,
    /// The same seed always gives the same stream.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// How many account managers.
    #[arg(long, default_value_t = 100)]
    pub managers: u32,
    /// Mix in duplicates, invalid lines and events that arrive before their deal.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub noise: bool,
    /// Events per simulated day: 3000 spans about a year per million events; fewer spread a
    /// short stream over several months, each closed a few days after it ends.
    #[arg(long, default_value_t = 3000, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub events_per_day: u64,
}

#[derive(Debug, Args)]
pub struct SchemasArgs {
    /// The directory to write into.
    #[arg(value_name = "DIR", default_value = "schemas")]
    pub dir: PathBuf,
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("range").required(true).args(["period", "from_seq"])))]
pub struct ExportArgs {
    /// Everything a re-ingest needs to reproduce this period's statement and seal: the log from
    /// seq 1 up to the record that closed it (to the end of the log while it is open).
    #[arg(long, value_name = "YYYY-MM", conflicts_with_all = ["from_seq", "to_seq"])]
    pub period: Option<String>,
    /// The first ledger seq to export. Only an export from seq 1 can be ingested into an empty
    /// data dir.
    #[arg(long, value_name = "SEQ")]
    pub from_seq: Option<u64>,
    /// The last ledger seq to export (default: the end of the log).
    #[arg(long, value_name = "SEQ", requires = "from_seq")]
    pub to_seq: Option<u64>,
    /// Write to this file instead of standard output.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// A seal from a statement on paper, PERIOD=DIGEST (repeatable): it must equal the seal
    /// recomputed from the log. As a seal includes the chain hash at the close, this also
    /// catches a log rewritten with freshly computed hashes.
    #[arg(long, value_name = "YYYY-MM=DIGEST")]
    pub seal: Vec<String>,
}

#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// The period, a calendar month: YYYY-MM.
    #[arg(long, value_name = "YYYY-MM", required_unless_present = "from", conflicts_with_all = ["from", "to"])]
    pub period: Option<String>,
    /// With --to: every period (calendar month) the dates from..=to overlap, one statement each.
    #[arg(long, value_name = "YYYY-MM-DD", requires = "to")]
    pub from: Option<String>,
    /// The last date of the range (with --from), inclusive.
    #[arg(long, value_name = "YYYY-MM-DD", requires = "from")]
    pub to: Option<String>,
    /// Only this account manager (fewer records are folded, too).
    #[arg(long, value_name = "ID")]
    pub manager: Option<String>,
    /// Only the records the ledger had received by then: a log seq, or an RFC 3339 time
    /// compared with the arrival time recorded in each log record.
    #[arg(long, value_name = "SEQ|RFC3339")]
    pub as_of: Option<String>,
    /// Show what changed in the period between this moment and the end of the log (or --as-of).
    #[arg(long, value_name = "SEQ|RFC3339", conflicts_with = "scheme")]
    pub diff_as_of: Option<String>,
    /// What-if: fold the same history under this scheme (TOML, as `premia scheme show` prints),
    /// in place of every scheme.activated in the log. Nothing is written.
    #[arg(long, value_name = "FILE")]
    pub scheme: Option<PathBuf>,
    /// With --scheme: both side by side, with the difference per manager and the entries that change.
    #[arg(long, requires = "scheme")]
    pub compare: bool,
    /// Fold every record of the log instead of the indexed ones (slower; a cross-check).
    #[arg(long)]
    pub full: bool,
    /// Print how many records were folded and how long it took, as one JSON line on stderr.
    #[arg(long)]
    pub stats: bool,
    #[arg(long, value_enum, default_value_t = StatementFormat::Text)]
    pub format: StatementFormat,
}

#[derive(Debug, Args)]
pub struct ExplainArgs {
    /// An entry's ref as statements show it: the seq of the event that booked it (123 or seq:123).
    #[arg(value_name = "SEQ", required_unless_present_any = ["payment", "deal"], conflicts_with_all = ["payment", "deal"])]
    pub entry: Option<String>,
    /// Every entry of this payment (its commission and the clawbacks of its refunds).
    #[arg(long, value_name = "ID", conflicts_with = "deal")]
    pub payment: Option<String>,
    /// Every entry of this deal (commissions, clawbacks, fine).
    #[arg(long, value_name = "ID")]
    pub deal: Option<String>,
    /// Only this manager's entry (a close books one plan bonus per manager).
    #[arg(long, value_name = "ID")]
    pub manager: Option<String>,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

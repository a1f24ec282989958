//! One function per subcommand that reads or writes the ledger directly: ingest, statement,
//! close, rejected, pending, rebuild, scheme; and generate, schemas and token, which need no
//! ledger.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::ExitCode;

use anyhow::{bail, Context};
use premia_core::fold::{scheme_activation_record, Admitted, Outcome};
use premia_core::{Admission, Scheme};
use premia_ledger::export::is_export_line;
use premia_ledger::ingest::{ingest_reader, now_ms, IngestOptions};
use premia_ledger::{Ledger, Origin};
use serde_json::json;

use crate::cli::{
    CloseArgs, Format, GenerateArgs, IngestArgs, RejectedArgs, SchemasArgs, SchemeCommand, StatementArgs,
    StatementFormat,
};
use crate::render;
use crate::support::{open, parse_period, print_counts, progress_bar, read_period};
use crate::verify_export::{first_line, ingest_export};

pub fn ingest(data_dir: &Path, args: &IngestArgs) -> anyhow::Result<ExitCode> {
    let (reader, len): (Box<dyn BufRead + Send>, Option<u64>) = if args.input == "-" {
        (Box::new(BufReader::with_capacity(1 << 20, io::stdin())), None)
    } else {
        let file = File::open(&args.input)
            .with_context(|| format!("cannot open {}; check the path and that it is readable", args.input))?;
        let len = file.metadata().ok().map(|m| m.len());
        (Box::new(BufReader::with_capacity(1 << 20, file)), len)
    };
    let mut ledger = open(data_dir, "ingest")?;
    // An export (from `premia export`) is re-logged record by record, not ingested as events.
    // Peeked only once the ledger is held: reading may wait on a pipe.
    let (first, reader) = first_line(reader)?;
    if is_export_line(&first) {
        return ingest_export(ledger, first, reader, len, args);
    }
    let reader: Box<dyn BufRead + Send> = Box::new(io::Cursor::new(first).chain(reader));
    let bar = progress_bar(len, "ingesting");
    let options = IngestOptions { batch_lines: args.batch_lines as usize, ..IngestOptions::default() };
    let counts = ingest_reader(&mut ledger, reader, &options, |bytes| bar.set_position(bytes))?;
    bar.finish_and_clear();
    let snapshot_started = std::time::Instant::now();
    ledger.snapshot_and_project()?;
    tracing::info!(snapshot_ms = snapshot_started.elapsed().as_millis() as u64, "snapshot stored");
    print_counts(&counts, args.format)?;
    Ok(ExitCode::SUCCESS)
}

pub fn statement(data_dir: &Path, args: &StatementArgs) -> anyhow::Result<ExitCode> {
    let period = parse_period(&args.period)?;
    let statement = match read_period(data_dir, period, "statement")? {
        Some(read) => read.statement(args.manager.as_deref()),
        None => open(data_dir, "statement")?.statement(period, args.manager.as_deref())?,
    };
    let mut out = io::stdout().lock();
    match args.format {
        StatementFormat::Json => writeln!(out, "{}", serde_json::to_string_pretty(&statement)?)?,
        StatementFormat::Csv => render::statement_csv(&statement, &mut out)?,
        StatementFormat::Text => render::statement_text(&statement, &mut out)?,
    }
    Ok(ExitCode::SUCCESS)
}

/// Appends one event that premia itself writes (a close, a scheme activation) and commits it.
fn append_own(ledger: &mut Ledger, raw: &[u8]) -> anyhow::Result<Admitted> {
    let admitted = ledger.offer(raw, Origin::Ledger, Admission::Operator, now_ms());
    ledger.snapshot_and_project()?;
    Ok(admitted)
}

pub fn close(data_dir: &Path, args: &CloseArgs) -> anyhow::Result<ExitCode> {
    let period = parse_period(&args.period)?;
    let mut ledger = open(data_dir, "close")?;
    let raw = serde_json::to_vec(&json!({
        "specversion": "1.0",
        "id": format!("close-{period}-{}", ledger.state().next_seq()),
        "source": "premia/cli",
        "type": "period.closed",
        "time": render::rfc3339(now_ms()),
        "data": { "period": period.to_string() },
    }))?;
    let admitted = append_own(&mut ledger, &raw)?;
    let Admitted::Logged { seq, folded, .. } = admitted else {
        bail!("the close event was not logged: {admitted:?}");
    };
    match &folded[0].outcome {
        Outcome::Applied { entries } => {
            match args.format {
                Format::Json => println!(
                    "{}",
                    json!({"period": period.to_string(), "closed": true, "seq": seq,
                           "plan_bonuses": entries.iter().map(|e| json!({"manager_id": &*e.manager_id, "amount": premia_core::money::money_text(e.amount)})).collect::<Vec<_>>()})
                ),
                Format::Text => {
                    println!("Period {period} is closed (ledger seq {seq}).");
                    for e in entries {
                        println!("  plan bonus {:>14}  {}", premia_core::money::money_text(e.amount), e.manager_id);
                    }
                    if entries.is_empty() {
                        println!("  No plan bonus was booked (no manager reached the first paying tier, or none had a plan).");
                    }
                    println!("Facts dated {period} that arrive from now on are booked in the next open period.");
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Outcome::Rejected(rejection) => {
            match args.format {
                Format::Json => println!(
                    "{}",
                    json!({"period": period.to_string(), "closed": false, "reason": rejection.reason.code(), "message": rejection.message})
                ),
                Format::Text => eprintln!("Not closed: {}", rejection.message),
            }
            Ok(ExitCode::FAILURE)
        }
        Outcome::Parked { .. } => bail!("a close never waits for anything"),
    }
}

pub fn rejected(data_dir: &Path, args: &RejectedArgs) -> anyhow::Result<ExitCode> {
    let ledger = open(data_dir, "rejected")?;
    if let Some(wanted) = &args.raw {
        let raw = raw_of(&ledger, wanted)?.with_context(|| {
            format!("no rejection {wanted:?}; `premia rejected` lists the refs (rej:N for refused lines, seq:N for logged events a rule refused)")
        })?;
        io::stdout().lock().write_all(&raw)?;
        return Ok(ExitCode::SUCCESS);
    }
    let items = render::rejections(&ledger)?;
    let mut out = io::stdout().lock();
    match args.format {
        Format::Json => writeln!(
            out,
            "{}",
            serde_json::to_string_pretty(&items.iter().map(render::RejectionItem::to_json).collect::<Vec<_>>())?
        )?,
        Format::Text => render::rejections_text(&items, &mut out)?,
    }
    Ok(ExitCode::SUCCESS)
}

/// The bytes received for a rejection ref: `rej:N` (refused before the log) or `seq:N` (a logged
/// event a rule refused).
fn raw_of(ledger: &Ledger, reference: &str) -> anyhow::Result<Option<Vec<u8>>> {
    if let Some(id) = reference.strip_prefix("rej:").and_then(|n| n.parse::<u64>().ok()) {
        return Ok(ledger.rejection(id)?.map(|r| r.raw));
    }
    if let Some(seq) = reference.strip_prefix("seq:").and_then(|n| n.parse::<u64>().ok()) {
        if ledger.state().rejected_by_rule().contains_key(&seq) {
            return Ok(ledger.record(seq)?.map(|r| r.raw));
        }
        return Ok(None);
    }
    Ok(None)
}

pub fn pending(data_dir: &Path, format: Format) -> anyhow::Result<ExitCode> {
    let ledger = open(data_dir, "pending")?;
    let mut out = io::stdout().lock();
    render::pending(&ledger, format, &mut out)?;
    Ok(ExitCode::SUCCESS)
}

pub fn rebuild(data_dir: &Path, format: Format) -> anyhow::Result<ExitCode> {
    let mut ledger = open(data_dir, "rebuild")?;
    let bar = progress_bar(None, "folding the log");
    let report = ledger.rebuild(|n| bar.set_position(n))?;
    ledger.snapshot_and_project()?;
    bar.finish_and_clear();
    match format {
        Format::Json => {
            println!("{}", json!({"records": report.records, "identical": report.identical, "chain": "intact"}))
        }
        Format::Text => {
            println!("Folded {} log records from nothing; the hash chain is intact.", report.records);
            if report.identical {
                println!("The rebuilt state is identical to the stored one.");
            } else {
                println!("The rebuilt state DIFFERS from the stored one; the rebuilt state now replaces it. Please report this: it is a bug.");
            }
        }
    }
    Ok(if report.identical { ExitCode::SUCCESS } else { ExitCode::from(3) })
}

pub fn scheme(data_dir: &Path, command: SchemeCommand) -> anyhow::Result<ExitCode> {
    match command {
        SchemeCommand::Show { default } => {
            if default {
                print!("{}", premia_core::scheme::DEFAULT_SCHEME_TOML);
                return Ok(ExitCode::SUCCESS);
            }
            let ledger = open(data_dir, "scheme show")?;
            match ledger.state().scheme_seq() {
                Some(seq) => println!("# The active scheme, in force since ledger seq {seq}."),
                None => println!(
                    "# The built-in default scheme: the ledger is empty, and it will be logged before the first event."
                ),
            }
            print!("{}", ledger.state().scheme().to_toml());
            Ok(ExitCode::SUCCESS)
        }
        SchemeCommand::Check { file } => {
            let text = std::fs::read_to_string(&file).with_context(|| format!("cannot read {}", file.display()))?;
            match Scheme::from_toml(&text) {
                Ok(s) => {
                    println!("{} is a valid scheme ({:?}, currency {}).", file.display(), s.name, s.currency);
                    Ok(ExitCode::SUCCESS)
                }
                Err(problems) => {
                    eprintln!("{} is not a valid scheme:", file.display());
                    for p in &problems.0 {
                        eprintln!("  - {p}");
                    }
                    Ok(ExitCode::FAILURE)
                }
            }
        }
        SchemeCommand::Activate { file } => {
            let text = std::fs::read_to_string(&file).with_context(|| format!("cannot read {}", file.display()))?;
            let scheme = Scheme::from_toml(&text).map_err(|p| {
                anyhow::anyhow!("{} is not a valid scheme:\n  - {}", file.display(), p.0.join("\n  - "))
            })?;
            let mut ledger = open(data_dir, "scheme activate")?;
            let raw = scheme_activation_record(&scheme, ledger.state().next_seq());
            match append_own(&mut ledger, &raw)? {
                Admitted::Logged { seq, .. } => {
                    println!(
                        "Scheme {:?} is active from ledger seq {seq}: it applies to every event folded from now on.",
                        scheme.name
                    );
                    Ok(ExitCode::SUCCESS)
                }
                other => bail!("the scheme was not activated: {other:?}"),
            }
        }
    }
}

pub fn generate(args: &GenerateArgs) -> anyhow::Result<ExitCode> {
    let mut out = io::BufWriter::with_capacity(1 << 20, io::stdout().lock());
    let options = crate::synth::SynthOptions {
        managers: args.managers.max(1),
        noise: args.noise,
        events_per_day: args.events_per_day,
        ..crate::synth::SynthOptions::default()
    };
    for line in crate::synth::Synth::new(args.seed, options).take(args.events as usize) {
        out.write_all(line.as_bytes())?;
        out.write_all(b"\n")?;
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

pub fn schemas(args: &SchemasArgs) -> anyhow::Result<ExitCode> {
    let mut files = premia_core::schema::all_schema_files();
    files.push(("feed/accrual.json".to_string(), premia_core::schema::pretty(&premia_nats::feed_schema())));
    files
        .push(("export/record.json".to_string(), premia_core::schema::pretty(&premia_ledger::export::export_schema())));
    files.push(("openapi.json".to_string(), premia_core::schema::pretty(&premia_http::openapi::document())));
    for (name, text) in files {
        let path = args.dir.join(&name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
        println!("wrote {}", path.display());
    }
    Ok(ExitCode::SUCCESS)
}

/// `premia token`: 32 random bytes from the operating system, as 64 hex digits, and the config
/// lines holding only its SHA-256.
pub fn token(args: &crate::cli::TokenArgs) -> anyhow::Result<ExitCode> {
    use rand::RngCore;
    if premia_http::Role::parse(&args.role).is_none() {
        anyhow::bail!(
            "{:?} is not a role; give one of admin, auditor, manager:<id> (such as manager:M-4) or publisher",
            args.role
        );
    }
    let mut secret = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut secret);
    let token: String = secret.iter().map(|b| format!("{b:02x}")).collect();
    let sha256 = premia_http::auth::token_sha256(&token);
    match args.format {
        crate::cli::Format::Json => {
            println!("{}", serde_json::json!({ "token": token, "sha256": sha256, "role": args.role }));
        }
        crate::cli::Format::Text => {
            println!("token: {token}");
            println!();
            println!("Add to the config file (it keeps only the hash):");
            println!();
            println!("[[http.tokens]]");
            println!("sha256 = \"{sha256}\"");
            println!("role = \"{}\"", args.role);
            println!();
            println!("Give the token to its holder now: premia cannot show it again.");
        }
    }
    Ok(ExitCode::SUCCESS)
}

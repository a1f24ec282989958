//! The premia binary's commands. Each is a thin edge: it opens the ledger, hands bytes to the
//! core through `premia-ledger`, and renders what comes back.

pub mod audit;
pub mod cli;
pub mod commands;
pub mod config;
pub mod figures;
pub mod nats;
pub mod render;
pub mod replay;
pub mod synth;

use std::process::ExitCode;

use cli::{Cli, Command, LogFormat};

/// The worked example month, embedded so `premia demo` needs nothing beside the binary.
pub const SEED_MONTH: &str = include_str!("../../../tests/data/seed-month.jsonl");

pub fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Human => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let data_dir = cli.data_dir.as_path();
    match cli.command {
        Command::Demo(args) => commands::demo(&args),
        Command::Ingest(args) => commands::ingest(data_dir, &args),
        Command::Statement(args) => commands::statement(data_dir, &args),
        Command::Close(args) => commands::close(data_dir, &args),
        Command::Rejected(args) => commands::rejected(data_dir, &args),
        Command::Pending(args) => commands::pending(data_dir, args.format),
        Command::Rebuild(args) => commands::rebuild(data_dir, args.format),
        Command::Verify(args) => audit::verify(data_dir, &args),
        Command::Export(args) => audit::export(data_dir, &args),
        Command::Scheme(cmd) => commands::scheme(data_dir, cmd),
        Command::Generate(args) => commands::generate(&args),
        Command::Token(args) => commands::token(&args),
        Command::Figures(args) => figures::figures(data_dir, &args),
        Command::Plan(cli::PlanCommand::Suggest(args)) => figures::plan_suggest(data_dir, &args),
        Command::Schemas(args) => commands::schemas(&args),
        Command::Replay(args) => replay::replay(data_dir, &args),
        Command::Explain(args) => replay::explain(data_dir, &args),
        Command::Serve(args) => nats::serve(data_dir, &args, &config::load(cli.config.as_deref())?),
        Command::Publish(args) => nats::publish(&args, &config::load(cli.config.as_deref())?),
    }
}

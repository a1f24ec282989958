//! The premia binary's commands. Each is a thin edge: it opens the ledger, hands bytes to the
//! core through `premia-ledger`, and renders what comes back.

pub mod cli;
pub mod commands;
pub mod config;
pub mod demo;
pub mod explain_command;
pub mod figures_command;
pub mod nats;
pub mod recover;
pub mod render;
pub mod replay_command;
pub mod support;
pub mod synth;
pub mod verify_export;

use std::process::ExitCode;

use cli::{Cli, Command, LogFormat};

pub use demo::SEED_MONTH;

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
        Command::Demo(args) => demo::demo(&args),
        Command::Ingest(args) => commands::ingest(data_dir, &args),
        Command::Statement(args) => commands::statement(data_dir, &args),
        Command::Close(args) => commands::close(data_dir, &args),
        Command::Rejected(args) => commands::rejected(data_dir, &args),
        Command::Pending(args) => commands::pending(data_dir, args.format),
        Command::Rebuild(args) => commands::rebuild(data_dir, args.format),
        Command::Verify(args) => verify_export::verify(data_dir, &args),
        Command::Export(args) => verify_export::export(data_dir, &args),
        Command::Scheme(cmd) => commands::scheme(data_dir, cmd),
        Command::Generate(args) => commands::generate(&args),
        Command::Token(args) => commands::token(&args),
        Command::Figures(args) => figures_command::figures(data_dir, &args),
        Command::Plan(cli::PlanCommand::Suggest(args)) => figures_command::plan_suggest(data_dir, &args),
        Command::Schemas(args) => commands::schemas(&args),
        Command::Replay(args) => replay_command::replay(data_dir, &args),
        Command::Explain(args) => explain_command::explain(data_dir, &args),
        Command::Serve(args) => nats::serve(data_dir, &args, &config::load(cli.config.as_deref())?),
        Command::Publish(args) => nats::publish(&args, &config::load(cli.config.as_deref())?),
        Command::Recover(args) => recover::recover(data_dir, &args, &config::load(cli.config.as_deref())?),
        Command::Backup(args) => recover::backup(data_dir, &args),
    }
}

//! The premia binary: parses the command line and runs the command it names.

use std::process::ExitCode;

use clap::Parser;

/// mimalloc copes far better than the system allocator with memory allocated on one thread
/// (the parser's events) and freed on another (the fold): ingest runs markedly faster.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = premia::cli::Cli::parse();
    premia::init_logging(cli.log_format);
    match premia::run(cli) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

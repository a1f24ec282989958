use std::process::ExitCode;

use clap::Parser;

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

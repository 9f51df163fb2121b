//! Entry point: parse the command line, run it, turn any error into one line.

use clap::Parser;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = guildops::cli::Cli::parse();
    match cli.execute(std::env::vars().collect()).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("guildops: error: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

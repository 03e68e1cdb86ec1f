//! `slogate describe`: print a result document as text, markdown, json or html.

use std::io::IsTerminal as _;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::anyhow;
use slogate_report::Format;

use crate::exit::{CmdResult, Failure};
use crate::source::{SourceArgs, load_result, run_notes};

/// Flags of `slogate describe`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub source: SourceArgs,
    /// Output format: text, markdown, json or html.
    #[arg(short = 'o', long, default_value = "text", value_parser = parse_format)]
    pub output: Format,
    /// Print again every few seconds while the experiment is running.
    #[arg(short = 'w', long)]
    pub watch: bool,
    /// Time between two prints with --watch.
    #[arg(long, default_value = "3s", value_parser = parse_interval, requires = "watch")]
    pub interval: Duration,
}

fn parse_format(text: &str) -> Result<Format, String> {
    text.parse::<Format>().map_err(|err| err.to_string())
}

fn parse_interval(text: &str) -> Result<Duration, String> {
    match slogate_core::spec::parse_duration(text) {
        Ok(d) if !d.is_zero() => Ok(d),
        Ok(_) => Err("must be longer than 0s".to_owned()),
        Err(err) => Err(err.to_string()),
    }
}

/// Runs `slogate describe`.
pub async fn run(args: Args) -> CmdResult {
    let source = args.source.source();
    let clear = args.watch && std::io::stdout().is_terminal();
    loop {
        let result = load_result(&source).await?;
        let notes = run_notes(&source, &result).await;
        let context = slogate_report::Context {
            // Staleness is already in the notes.
            now: None,
            notes: notes.clone(),
        };
        let text = slogate_report::render_in(&result, args.output, &context)
            .map_err(|err| Failure::Runtime(anyhow!("cannot render {source}: {err}")))?;
        if clear {
            // Clear the screen and go home, like `watch`.
            print!("\x1b[2J\x1b[H");
        }
        print!("{text}");
        if !text.ends_with('\n') {
            println!();
        }
        if args.output == Format::Json {
            // The document stays the document; the warnings go beside it.
            for note in &notes {
                eprintln!("warning: {source}: {note}");
            }
        }
        if !args.watch || result.is_done() {
            return Ok(ExitCode::SUCCESS);
        }
        if !notes.is_empty() {
            // Its run is gone: watching would never end.
            return Err(Failure::Runtime(anyhow!(
                "experiment {source} will not finish: {}",
                notes.join("; ")
            )));
        }
        if !clear {
            println!("---");
        }
        tokio::time::sleep(args.interval).await;
    }
}

//! Exit codes and the error type every command returns.

use std::process::ExitCode;

/// An `assert` condition is false.
pub const CONDITION_FALSE: u8 = 1;
/// A runtime failure: I/O, an API, the target.
pub const RUNTIME_FAILURE: u8 = 2;
/// Invalid input: a bad flag, spec or value (BSD `EX_USAGE`).
pub const INVALID_INPUT: u8 = 64;

/// Why a command stopped without finishing its job.
#[derive(Debug)]
pub enum Failure {
    /// Bad input; the message names the field and the reason.
    Invalid(anyhow::Error),
    /// Something failed at run time.
    Runtime(anyhow::Error),
}

impl Failure {
    /// Prints the error to stderr and returns the matching exit code.
    pub fn report(self) -> ExitCode {
        match self {
            Failure::Invalid(err) => {
                eprintln!("error: {err:#}");
                ExitCode::from(INVALID_INPUT)
            }
            Failure::Runtime(err) => {
                eprintln!("error: {err:#}");
                ExitCode::from(RUNTIME_FAILURE)
            }
        }
    }
}

impl From<anyhow::Error> for Failure {
    fn from(err: anyhow::Error) -> Self {
        Failure::Runtime(err)
    }
}

/// clap's message for a bad command line, with no value quoted whole: clap echoes a bad
/// value in full, so a value-parser error is told with the parser's own (short) message, and
/// any other line is cut to a length that cannot flood a terminal.
pub fn clap_message(err: &clap::Error) -> String {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    if err.kind() == ErrorKind::ValueValidation
        && let Some(ContextValue::String(arg)) = err.get(ContextKind::InvalidArg)
        && let Some(reason) = std::error::Error::source(err)
    {
        return format!(
            "error: invalid value for '{arg}': {}\n\nFor more information, try '--help'.\n",
            slogate_core::quote::clip_message(&reason.to_string())
        );
    }
    err.render()
        .to_string()
        .split_inclusive('\n')
        .map(|line| match line.strip_suffix('\n') {
            Some(body) => format!("{}\n", slogate_core::quote::clip_message(body)),
            None => slogate_core::quote::clip_message(line),
        })
        .collect()
}

/// What every command returns: an exit code, or a failure to report.
pub type CmdResult = Result<ExitCode, Failure>;

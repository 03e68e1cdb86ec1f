//! One module per subcommand; each has clap `Args` and an async `run`.

pub mod assert;
pub mod demo;
pub mod describe;
pub mod load;
pub mod merge;
pub mod run;

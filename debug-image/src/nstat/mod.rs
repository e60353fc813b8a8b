//! `nstat`: protocol counters (being written).
use std::ffi::OsString;
use std::process::ExitCode;
pub fn main(_args: Vec<OsString>) -> ExitCode { crate::cli::finish("nstat", Err(crate::cli::Failure::msg("not built yet"))) }

//! `kubectl-netdiag`: the kubectl plugin. Reads top-down in [`session`]:
//! resolve the target → check permissions → inject the agent → wait →
//! stream → exit with the tool's code. Builds on Linux, macOS and Windows.

mod args;
mod cluster;
mod error;
mod inject;
mod preflight;
mod progress;
mod session;
mod stream;
mod target;
mod tools;

use std::process::ExitCode;

use args::Invocation;

fn main() -> ExitCode {
    let invocation = match args::parse(std::env::args_os().collect()) {
        Ok(i) => i,
        Err(message) => {
            eprintln!("kubectl-netdiag: {message}");
            return ExitCode::from(netdiag_wire::exit::FAILURE);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("kubectl-netdiag: cannot start the async runtime: {e}");
            return ExitCode::from(netdiag_wire::exit::FAILURE);
        }
    };
    let code = match invocation {
        Invocation::Done => 0,
        Invocation::Completion(shell) => {
            args::print_completion(shell);
            0
        }
        Invocation::Version {
            kubeconfig,
            context,
        } => runtime.block_on(session::version(kubeconfig.as_deref(), context.as_deref())),
        Invocation::Run(args) => match runtime.block_on(session::run(*args)) {
            Ok(code) => code,
            Err(e) => {
                eprintln!("kubectl-netdiag: {}", e.message);
                if let Some(detail) = &e.detail {
                    eprintln!("{detail}");
                }
                e.code
            }
        },
    };
    progress::trace("exit");
    // Leave at once: background tasks (a blocked stdin read) must not
    // hold the process open.
    runtime.shutdown_timeout(std::time::Duration::from_millis(100));
    ExitCode::from(code)
}

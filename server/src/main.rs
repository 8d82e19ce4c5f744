use std::process::ExitCode;

/// Rendering pages is allocation-heavy (a profile of the overview's SSR showed a third of the
/// time in glibc's malloc and free); mimalloc is faster at many small, short-lived allocations
/// across threads.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use server::cli::{admin, agent, bench, change, demo, probes, seed, serve, telemetry};
use server::config::{self, ChangeCommand, Command, ProbesCommand};

/// Stack of each runtime worker thread (see `main`).
const WORKER_STACK_BYTES: usize = 8 * 1024 * 1024;

fn main() -> ExitCode {
    let cli = match config::parse_args(std::env::args_os()) {
        Ok(cli) => cli,
        Err(e) => {
            eprintln!("triage: {e}");
            return ExitCode::from(2);
        }
    };
    let output_is_product = matches!(
        cli.command,
        Some(
            Command::Probes(_)
                | Command::Import(_)
                | Command::Bench(_)
                | Command::Seed(_)
                | Command::User(_)
                | Command::Token(_)
                | Command::Change(_)
        )
    );
    if let Err(e) = telemetry::init(&cli.log, output_is_product) {
        eprintln!("triage: {e}");
        return ExitCode::from(2);
    }
    // Rendering a page on the server recurses through its whole view tree; the larger forms
    // overflowed tokio's default 2 MiB worker stack in debug builds. 8 MiB is reserved address
    // space, touched only when used.
    let runtime =
        match tokio::runtime::Builder::new_multi_thread().enable_all().thread_stack_size(WORKER_STACK_BYTES).build() {
            Ok(rt) => rt,
            Err(e) => {
                eprintln!("triage: cannot start the async runtime: {e}");
                return ExitCode::from(1);
            }
        };
    let result = match &cli.command {
        None | Some(Command::Serve(_)) => runtime.block_on(serve::serve(&cli)),
        Some(Command::DemoTarget(args)) => runtime.block_on(demo::run(args.clone())),
        Some(Command::Agent(args)) => runtime.block_on(agent::run(args)),
        Some(Command::Bench(args)) => runtime.block_on(bench::run(args)),
        Some(Command::Seed(args)) => runtime.block_on(seed::seed_command(&cli, args)),
        Some(Command::TrivialHttp { addr }) => runtime.block_on(bench::trivial_http(*addr)),
        Some(Command::User(cmd)) => runtime.block_on(admin::user_command(&cli, cmd)),
        Some(Command::Token(cmd)) => runtime.block_on(admin::token_command(&cli, cmd)),
        Some(Command::Probes(ProbesCommand::Export { output })) => {
            runtime.block_on(probes::export_command(&cli, output.clone()))
        }
        Some(Command::Probes(ProbesCommand::Apply { file, dry_run })) => {
            runtime.block_on(probes::apply_command(&cli, file, *dry_run))
        }
        Some(Command::Import(args)) => runtime.block_on(probes::import_command(&cli, args)),
        Some(Command::Change(ChangeCommand::Add(args))) => runtime.block_on(change::add(args)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("triage: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

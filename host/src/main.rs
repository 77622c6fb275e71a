//! The `micro` command.

fn main() -> std::process::ExitCode {
    micro_host::cli::main()
}

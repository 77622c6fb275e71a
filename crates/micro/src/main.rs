//! The `micro` command: the CLI, and `micro server`, the composition root that builds a node's
//! layers (core, peer layer, gateway) and hands each the handles it needs.

mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}

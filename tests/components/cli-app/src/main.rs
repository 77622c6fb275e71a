//! A plain command-line program; built for wasm32-wasip2 it is a `wasi:cli/command` component.

fn main() {
    println!("I am a command, not a service");
}

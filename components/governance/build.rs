//! The bindings are generated from `wit/` at compile time; rebuild them when it changes.
fn main() {
    println!("cargo:rerun-if-changed=../../wit");
}

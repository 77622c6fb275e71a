//! The bindings are generated from `wit/` at compile time; rebuild them when it changes (the
//! macro alone does not tell cargo).
fn main() {
    println!("cargo:rerun-if-changed=../../wit");
}

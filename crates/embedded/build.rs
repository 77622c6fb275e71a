//! Builds the node's default system components — the builders (`components/builder-*`), the
//! governance (`components/governance`) and the ledger (`components/ledger`) — for
//! wasm32-wasip2 so the binary can embed them: a node builds services from source and governs
//! itself with nothing beside it.
//!
//! They are built by a nested cargo in a target directory of their own (the outer build holds
//! the lock on its own), from the same workspace and lock file.

#![allow(
    clippy::expect_used,
    clippy::panic,
    reason = "a build script fails by panicking: cargo shows its message"
)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// The default builders, in the order they are asked.
const BUILDERS: [&str; 5] = ["rust", "python", "js", "wat", "wasm"];

fn main() {
    let manifest_dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let root = manifest_dir
        .ancestors()
        .nth(2)
        .expect("crates/embedded/ is inside the workspace")
        .to_owned();
    let out_dir = PathBuf::from(std::env::var_os("OUT_DIR").expect("set by cargo"));
    println!("cargo:rerun-if-changed=../../components");
    println!("cargo:rerun-if-changed=../../wit");
    println!("cargo:rerun-if-env-changed=MICRO_BUILDERS_TARGET_DIR");
    // <target>/<profile>/build/micro-embedded-<hash>/out: keep the nested build beside the outer
    // one so it stays warm across changes of the host's own build hash.
    let target_dir = std::env::var_os("MICRO_BUILDERS_TARGET_DIR")
        .map(PathBuf::from)
        .or_else(|| out_dir.ancestors().nth(4).map(|t| t.join("micro-builders")))
        .unwrap_or_else(|| out_dir.join("micro-builders"));
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .current_dir(&root)
        .args([
            "build",
            "--release",
            "--locked",
            "--target",
            "wasm32-wasip2",
        ])
        .arg("--target-dir")
        .arg(&target_dir);
    for b in BUILDERS {
        command.args(["-p", &format!("micro-builder-{b}")]);
    }
    command.args(["-p", "micro-governance", "-p", "micro-ledger"]);
    // What the outer cargo tells build scripts is not meant for this build.
    for var in [
        "RUSTC_WRAPPER",
        "RUSTC_WORKSPACE_WRAPPER",
        "CARGO_ENCODED_RUSTFLAGS",
        "RUSTFLAGS",
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_TARGET",
        "CARGO_MAKEFLAGS",
        "MAKEFLAGS",
        "MFLAGS",
    ] {
        command.env_remove(var);
    }
    let status = command
        .status()
        .expect("running cargo for the system components");
    if !status.success() {
        panic!(
            "building the system components failed ({status}); is the wasm32-wasip2 target \
             installed? (`rustup target add wasm32-wasip2`, or run ./scripts/serve)"
        );
    }
    let release = target_dir.join("wasm32-wasip2").join("release");
    let mut list = String::from(
        "/// The default builders: (name, component bytes), in the order they are asked.\n",
    );
    list.push_str(&format!(
        "pub const DEFAULT_BUILDERS: [(&str, &[u8]); {}] = [\n",
        BUILDERS.len()
    ));
    for b in BUILDERS {
        let wasm = release.join(format!("micro_builder_{b}.wasm"));
        let copy = out_dir.join(format!("builder-{b}.wasm"));
        copy_file(&wasm, &copy);
        list.push_str(&format!(
            "    ({b:?}, include_bytes!(concat!(env!(\"OUT_DIR\"), \"/builder-{b}.wasm\"))),\n"
        ));
    }
    list.push_str("];\n");
    std::fs::write(out_dir.join("builders.rs"), list).expect("writing builders.rs");
    copy_file(
        &release.join("micro_governance.wasm"),
        &out_dir.join("governance.wasm"),
    );
    std::fs::write(
        out_dir.join("governance.rs"),
        "/// The default governance component.\n\
         pub const DEFAULT_GOVERNANCE: &[u8] = \
         include_bytes!(concat!(env!(\"OUT_DIR\"), \"/governance.wasm\"));\n",
    )
    .expect("writing governance.rs");
    copy_file(
        &release.join("micro_ledger.wasm"),
        &out_dir.join("ledger.wasm"),
    );
    std::fs::write(
        out_dir.join("ledger.rs"),
        "/// The default ledger component.\n\
         pub const DEFAULT_LEDGER: &[u8] = \
         include_bytes!(concat!(env!(\"OUT_DIR\"), \"/ledger.wasm\"));\n",
    )
    .expect("writing ledger.rs");
}

fn copy_file(from: &Path, to: &Path) {
    std::fs::copy(from, to)
        .unwrap_or_else(|e| panic!("copying {} to {}: {e}", from.display(), to.display()));
}

# Shared by the scripts: prerequisites every build needs. Sourced, not run.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"

step() { printf '\n==> %s\n' "$*" >&2; }

need_rust() {
  if ! command -v cargo >/dev/null 2>&1; then
    echo "error: cargo is not installed; install Rust with rustup (https://rustup.rs) first" >&2
    exit 1
  fi
  # RUSTUP_AUTO_INSTALL may be off: add the components' target explicitly.
  if ! rustup target list --installed 2>/dev/null | grep -qx wasm32-wasip2; then
    step "adding the wasm32-wasip2 target"
    rustup target add wasm32-wasip2
  fi
}

# The components built from this repository: examples, and the ones the tests misbehave with.
build_components() {
  step "building components for wasm32-wasip2"
  cargo build --release --target wasm32-wasip2 \
    -p hello -p counter -p chat -p frontend -p http-hello \
    -p hostile -p cli-app -p unlinkable -p bench-caller
}

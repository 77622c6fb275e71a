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

# The components the tests deploy as built .wasm files: examples, and the ones the tests
# misbehave with. Serving needs none of them (the node builds services from source, and its
# system components are built into the binary).
build_components() {
  step "building components for wasm32-wasip2"
  cargo build --release --target wasm32-wasip2 \
    -p hello -p counter -p chat -p frontend -p http-hello \
    -p hostile -p cli-app -p unlinkable -p bench-caller -p builder-hostile -p kv-counter \
    -p governance-test -p micro-governance -p ledger-test -p micro-ledger
}

target_dir() {
  cargo metadata --format-version 1 --no-deps \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])'
}

# True when $1 is missing or older than any of the other files.
stale() {
  local out="$1"; shift
  [ -e "$out" ] || return 0
  local f
  for f in "$@"; do [ "$f" -nt "$out" ] && return 0; done
  return 1
}

# The tools the node's Python and JavaScript builders run: componentize-py in a venv, and
# componentize-js with esbuild in an npm project (sdk/js/package.json and its lock), both under
# ~/.cache/micro where the node looks for them.
install_build_tools() {
  local venv="$HOME/.cache/micro/venv"
  if [ ! -x "$venv/bin/componentize-py" ] || [ "$("$venv/bin/componentize-py" --version 2>/dev/null)" != "componentize-py 0.25.1" ]; then
    step "installing componentize-py 0.25.1"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet componentize-py==0.25.1
  fi
  local js="$HOME/.cache/micro/js"
  if ! cmp -s sdk/js/package-lock.json "$js/package-lock.json" || [ ! -d "$js/node_modules/esbuild" ]; then
    # `npm install` follows package-lock.json like `npm ci`, but tolerates the other platforms'
    # optional binaries that a registry mirror may not serve (`npm ci` refuses the lock then).
    step "installing componentize-js and esbuild (npm, pinned in sdk/js/package-lock.json)"
    mkdir -p "$js"
    cp sdk/js/package.json sdk/js/package-lock.json "$js/"
    (cd "$js" && npm install --no-audit --no-fund)
  fi
}

# Components the tests build with other languages' own tools, against the same WIT:
# componentize-py (pip, pinned) and componentize-js (npm, pinned in package-lock.json).
build_foreign_components() {
  local out; out="$(target_dir)/wasm32-wasip2/release"
  mkdir -p "$out"
  install_build_tools
  local venv="$HOME/.cache/micro/venv"
  if stale "$out/py_hello.wasm" tests/components/py-hello/app.py wit/*.wit; then
    step "building tests/components/py-hello with componentize-py"
    (cd tests/components/py-hello && "$venv/bin/componentize-py" -d ../../../wit -w service componentize app -o "$out/py_hello.wasm")
  fi
  if stale "$out/py_http.wasm" tests/components/py-http/app.py tests/components/py-http/wit/*.wit; then
    step "building tests/components/py-http (a stock wasi:http component) with componentize-py"
    (cd tests/components/py-http && "$venv/bin/componentize-py" -d wit -w proxy componentize app -o "$out/py_http.wasm")
  fi
  if [ ! -d tests/components/js-hello/node_modules/@bytecodealliance/componentize-js ]; then
    # `npm install` follows package-lock.json like `npm ci`, but tolerates the other platforms'
    # optional binaries that a registry mirror may not serve (`npm ci` refuses the lock then).
    step "installing componentize-js (npm install, from package-lock.json)"
    (cd tests/components/js-hello && npm install --no-audit --no-fund)
  fi
  if stale "$out/js_hello.wasm" tests/components/js-hello/hello.js tests/components/js-hello/build.mjs wit/*.wit; then
    step "building tests/components/js-hello with componentize-js"
    (cd tests/components/js-hello && node build.mjs hello.js ../../../wit "$out/js_hello.wasm")
  fi
}

# The dashboard's browser tests: Debian's Chromium, and playwright-core to drive it (npm,
# pinned in tests/browser/package-lock.json; it never downloads a browser of its own).
install_browser_tools() {
  if [ ! -x "${MICRO_CHROMIUM:-/usr/bin/chromium}" ]; then
    step "installing Chromium (Debian's chromium package) for the dashboard's browser tests"
    local sudo=""
    [ "$(id -u)" = 0 ] || sudo="sudo"
    export DEBIAN_FRONTEND=noninteractive
    $sudo apt-get install -y chromium || { $sudo apt-get update && $sudo apt-get install -y chromium; }
  fi
  local want have
  want="$(python3 -c 'import json; print(json.load(open("tests/browser/package.json"))["dependencies"]["playwright-core"])')"
  have="$(node -p 'require("./tests/browser/node_modules/playwright-core/package.json").version' 2>/dev/null || true)"
  if [ "$want" != "$have" ]; then
    step "installing playwright-core $want (npm install, from tests/browser/package-lock.json)"
    (cd tests/browser && npm install --no-audit --no-fund)
  fi
}

# The last commit of the previous peer protocol (micro/rpc/1, node records): the upgrade test
# runs a node built from it beside this build's nodes.
PREVIOUS_PROTOCOL_COMMIT=37c6b8d021b273d7c043c53d8edeaadfc30b3242

# The last commit of the design before the overlay and the DHT (every node's record on every
# node, anti-entropy, pings to every node): the scale benchmark measures it beside this build.
OLD_DESIGN_COMMIT=9349a0312534422d0ca7b10a1672a6c8184d0deb

# Builds the previous protocol's node into <target>/previous/micro, for the upgrade test.
build_previous_node() {
  build_node_at "$PREVIOUS_PROTOCOL_COMMIT" debug previous "the upgrade test"
}

# Builds the node of commit $1 in profile $2 (debug or release) into <target>/$3/micro, once
# per commit: a work tree of that commit, built in the same target directory (the
# dependencies are shared, only micro's own crates build again), its system components in a
# directory of their own. $4 says what it is for.
build_node_at() {
  local commit="$1" profile="$2" name="$3" why="$4" target out src flag=""
  target="$(target_dir)"
  out="$target/$name"
  [ "$profile" = release ] && flag="--release"
  if [ -x "$out/micro" ] && [ "$(cat "$out/commit" 2>/dev/null)" = "$commit" ]; then
    return
  fi
  step "building the node of commit ${commit:0:12} ($profile) for $why"
  if ! git cat-file -e "$commit^{commit}" 2>/dev/null; then
    # A shallow clone may still reach it from where it was cloned.
    git fetch --quiet origin "$commit" 2>/dev/null || true
  fi
  if ! git cat-file -e "$commit^{commit}" 2>/dev/null; then
    echo "error: commit $commit is not in this clone (a shallow clone?): $why needs it; clone the whole history" >&2
    exit 1
  fi
  src="$out/src"
  rm -rf "$src"
  mkdir -p "$out"
  git worktree prune
  git worktree add --detach --force "$src" "$commit" >/dev/null
  (cd "$src" && CARGO_TARGET_DIR="$target" MICRO_BUILDERS_TARGET_DIR="$out/builders" cargo build $flag -p micro)
  cp "$target/$profile/micro" "$out/micro"
  # That path is this build's node: never leave the other one there.
  rm -f "$target/$profile/micro"
  echo "$commit" > "$out/commit"
  git worktree remove --force "$src"
}

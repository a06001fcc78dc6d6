#!/usr/bin/env bash
# Checks what the Makefile targets need from the machine before they start, so a missing tool is
# one clear line saying what is missing and how to get it, not a failure deep inside a target.
#
#   tools/prereq.sh CHECK...
#     rust          cargo and rustup (https://rustup.rs)
#     node          Node.js: the Wasm test lane runs wasm-bindgen-test under it
#     python-venv   python3 with venv and ensurepip: the pinned Envoy wheel goes into .venv
#     go            Go: tools installed from the Go module proxy (func-e, envoyproxy/ratelimit)
#     pkg:PKG[:CMD] the Debian package PKG, which provides the command CMD (default: PKG); when
#                   CMD is missing, PKG is installed with apt-get as root or through sudo, else
#                   the message says what to install
#
# Exit status: 0 when every check passes (after any install), 1 otherwise.
set -uo pipefail

missing=0
fail() {
  printf 'missing: %s\n' "$1" >&2
  missing=1
}

# apt_install PKG...: apt-get as root, through sudo when that works without a password prompt
# we cannot answer, else nothing (the caller says what to install).
apt_install() {
  local run=()
  if [[ $(id -u) -ne 0 ]]; then
    command -v sudo >/dev/null && sudo -n true 2>/dev/null || return 1
    run=(sudo -n)
  fi
  command -v apt-get >/dev/null || return 1
  echo "==> installing $* with apt-get (once, well under a minute)" >&2
  "${run[@]}" apt-get update -qq && "${run[@]}" apt-get install -y -qq "$@" >/dev/null
}

for check in "$@"; do
  case "$check" in
    rust)
      if ! command -v cargo >/dev/null || ! command -v rustup >/dev/null; then
        fail "Rust (cargo and rustup): install it with https://rustup.rs, then open a new shell"
      fi
      ;;
    node)
      command -v node >/dev/null ||
        fail "Node.js, which runs the Wasm test lane (make test-wasm): 'sudo apt-get install nodejs' or https://nodejs.org"
      ;;
    python-venv)
      if ! command -v python3 >/dev/null; then
        fail "python3, which holds the pinned Envoy wheel in .venv: 'sudo apt-get install python3 python3-venv'"
      elif ! python3 -c 'import venv, ensurepip' 2>/dev/null; then
        fail "python3's venv module (python3 -m venv): 'sudo apt-get install python3-venv' on Debian and Ubuntu"
      fi
      ;;
    go)
      command -v go >/dev/null ||
        fail "Go, which builds the tools that come from the Go module proxy: https://go.dev/dl or 'sudo apt-get install golang-go'"
      ;;
    pkg:*)
      IFS=: read -r _ pkg cmd <<<"$check"
      cmd="${cmd:-$pkg}"
      command -v "$cmd" >/dev/null && continue
      apt_install "$pkg" && command -v "$cmd" >/dev/null && continue
      fail "$cmd: install the Debian package with 'sudo apt-get install $pkg' (or your system's $pkg package); this needs root or sudo"
      ;;
    *)
      echo "tools/prereq.sh: unknown check \"$check\"" >&2
      exit 2
      ;;
  esac
done
exit "$missing"

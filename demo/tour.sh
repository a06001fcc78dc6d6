#!/usr/bin/env bash
# The demo tour: each step is a command line against the demo gateway with the answer it must get.
#   demo/tour.sh --print   show the steps as lines to type by hand, in order, from the repository root
#   demo/tour.sh --check   run those same lines and check status and content; non-zero exit on any surprise
#
# One text per step: --check runs exactly the line --print shows (with `bash -c`, curl given a
# timeout), so a printed line, typed in order, gives what its comment says.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1

MODE="${1:---print}"
# GW, ADMIN and APIM are used by the tour.d parts. GW and ADMIN may be given (the e2e tests move
# the ports); the defaults are the demo's.
# shellcheck disable=SC2034
GW="${GW:-http://127.0.0.1:10000}"
ADMIN="${ADMIN:-http://127.0.0.1:9901}"
# Prometheus names: a Wasm filter's counters are apim_<filter>_*; a native module's keep the same
# /stats names in the `wasmcustom` namespace, which Prometheus shows as envoy_wasmcustom_apim_*.
# demo/run.sh sets it for a gateway of native modules.
STATS_PREFIX="${STATS_PREFIX:-}"
# --check needs curl (the func-e e2e test runs the tour before anything else installs it).
[[ "$MODE" == --print ]] || tools/prereq.sh pkg:curl || exit 1
# The CLI (token mint) the tour's lines call; `make demo` / `make smoke` build it before the tour.
# shellcheck disable=SC2034
APIM=target/debug/apim
failures=0
pending_cmd=""
pending_titles=()

# quote ARG: ARG as a person would type it. Plain words stay bare; an argument that names a
# variable (`${READ_TOKEN}`) goes in double quotes so the shell expands it; anything else in
# single quotes.
quote() {
  local a="$1"
  if [[ "$a" =~ ^[A-Za-z0-9_./:=@%+,-]+$ ]]; then
    printf '%s' "$a"
  elif [[ "$a" == *'$'* ]]; then
    printf '"%s"' "$a"
  else
    printf "'%s'" "${a//\'/\'\\\'\'}"
  fi
}

# cmdline WORD...: the words joined into one line, each quoted as by `quote`.
cmdline() {
  local out="" w
  for w in "$@"; do out+="${out:+ }$(quote "$w")"; done
  printf '%s' "$out"
}

# In --print mode consecutive steps with the same line are printed once, under all their titles.
flush() {
  [[ -z "$pending_cmd" ]] && return
  printf '\n'
  printf '# %s\n' "${pending_titles[@]}"
  printf '%s\n' "$pending_cmd"
  pending_cmd=""
  pending_titles=()
}

# section TITLE: a heading (a comment, so the printed tour can be pasted whole).
section() {
  if [[ "$MODE" == "--print" ]]; then
    flush
    printf '\n# ==== %s ====\n' "$1"
  else
    echo "== $1"
  fi
}

# setup VAR NOTE COMMAND...: VAR=$(COMMAND), a value the later steps use (printed with NOTE as
# its comment; --check runs COMMAND and exports VAR for the lines it runs).
setup() {
  local var="$1" note="$2" value
  shift 2
  local command
  command="$(cmdline "$@")"
  if [[ "$MODE" == "--print" ]]; then
    flush
    # shellcheck disable=SC2016  # the printed line has a literal $(...)
    printf '\n# %s\n%s=$(%s)\n' "$note" "$var" "$command"
    return
  fi
  if value="$(bash -c "$command")"; then
    export "$var=$value"
  else
    printf 'FAIL  could not run: %s\n' "$command"
    failures=$((failures + 1))
  fi
}

# check_line TITLE STATUS PATTERN LINE: LINE is a shell line printing a response (headers and
# body; STATUS "-" when it prints no status line, as a grep of the stats). PATTERN: an extended
# regex the output must match, "!regex" for one it must not match, or "" for none.
check_line() {
  local title="$1" want="$2" pattern="$3" line="$4"
  if [[ "$MODE" == "--print" ]]; then
    local label="$title"
    [[ "$want" != "-" ]] && label+="  (expect $want)"
    [[ "$line" != "$pending_cmd" ]] && flush
    pending_cmd="$line"
    pending_titles+=("$label")
    return
  fi
  local out status=-
  out="$(bash -c "${line//curl /curl --max-time 10 }" 2>&1)"
  [[ "$want" != "-" ]] && status="$(head -n1 <<<"$out" | awk '{print $2}')"
  local matched=yes
  if [[ "$pattern" == !* ]]; then
    grep -Eq -- "${pattern#!}" <<<"$out" && matched=no
  elif [[ -n "$pattern" ]]; then
    grep -Eq -- "$pattern" <<<"$out" || matched=no
  fi
  if [[ "$status" != "$want" || "$matched" == no ]]; then
    printf 'FAIL  %s: got %s, want %s matching /%s/\n$ %s\n%s\n' "$title" "$status" "$want" "$pattern" "$line" "$out"
    failures=$((failures + 1))
  else
    if [[ "$want" == "-" ]]; then printf 'ok    %s\n' "$title"; else printf 'ok    %s (%s)\n' "$title" "$status"; fi
  fi
}

# step TITLE STATUS PATTERN CURL-ARGS...: one `curl -si` call. An argument may name a variable
# a `setup` line set, in single quotes ('${READ_TOKEN}'): printed as such, expanded when run.
step() {
  local title="$1" want="$2" pattern="$3"
  shift 3
  check_line "$title" "$want" "$pattern" "curl -si $(cmdline "$@")"
}

# stats TITLE FILTER PATTERN: the Prometheus counters of one filter (apim_<FILTER>_*).
stats() {
  local title="$1" filter="$2" pattern="$3"
  check_line "$title" - "$pattern" "curl -s $ADMIN/stats/prometheus | $(cmdline grep "^${STATS_PREFIX}apim_$filter")"
}

if [[ "$MODE" == "--print" ]]; then
  echo "# Type (or paste) these lines in order, from the repository root, while \`make demo\` runs."
fi

# Each filter's steps live in tour.d/NN-<filter>.sh, sourced in name order: the order of the
# filters in envoy/gateway.yaml's http_filters.
for part in demo/tour.d/*.sh; do
  # shellcheck source=/dev/null
  source "$part"
done

if [[ "$MODE" == "--print" ]]; then
  flush
elif [[ "$MODE" == "--check" ]]; then
  [[ $failures -eq 0 ]] || { echo "$failures step(s) failed"; exit 1; }
fi

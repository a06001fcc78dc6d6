#!/usr/bin/env bash
# The demo tour: each step is a curl call against the demo gateway with the answer it must get.
#   demo/tour.sh --print   show the steps as curl lines to try by hand
#   demo/tour.sh --check   run them and check status and content; non-zero exit on any surprise
# GW and ADMIN override the gateway's and the admin's base URLs (the e2e tests move the ports).
set -uo pipefail

MODE="${1:---print}"
GW="${GW:-http://127.0.0.1:10000}"
ADMIN="${ADMIN:-http://127.0.0.1:9901}"
# --check needs curl (the e2e test runs it on a fresh machine, before anything else installs it).
[[ "$MODE" == --print ]] || command -v curl >/dev/null ||
  { apt-get update -qq && apt-get install -y -qq curl >/dev/null; }
failures=0

# step TITLE STATUS PATTERN CURL-ARGS...   (PATTERN: an extended regex the output must match,
# "!regex" for one it must not match, or "" for none; the output is response headers and body)
step() {
  local title="$1" want="$2" pattern="$3"
  shift 3
  if [[ "$MODE" == "--print" ]]; then
    printf '\n# %s  (expect %s)\ncurl -i' "$title" "$want"
    printf " %q" "$@"
    printf '\n'
    return
  fi
  local out status
  out="$(curl -s -i --max-time 10 "$@" 2>&1)"
  status="$(head -n1 <<<"$out" | awk '{print $2}')"
  local matched=yes
  if [[ "$pattern" == !* ]]; then
    grep -Eq -- "${pattern#!}" <<<"$out" && matched=no
  elif [[ -n "$pattern" ]]; then
    grep -Eq -- "$pattern" <<<"$out" || matched=no
  fi
  if [[ "$status" != "$want" || "$matched" == no ]]; then
    printf 'FAIL  %s: got %s, want %s matching /%s/\n%s\n' "$title" "$status" "$want" "$pattern" "$out"
    failures=$((failures + 1))
  else
    printf 'ok    %s (%s)\n' "$title" "$status"
  fi
}

# Each filter's steps live in tour.d/NN-<filter>.sh, sourced in name order (the suite's order).
for part in "$(dirname "$0")"/tour.d/*.sh; do
  # shellcheck source=/dev/null
  source "$part"
done

if [[ "$MODE" == "--check" ]]; then
  [[ $failures -eq 0 ]] || { echo "$failures step(s) failed"; exit 1; }
fi

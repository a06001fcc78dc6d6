#!/usr/bin/env bash
# Starts the demo stack without Docker: the echo upstream on 127.0.0.1:10080 and stock Envoy
# with envoy/gateway.yaml on 127.0.0.1:10000 (admin 127.0.0.1:9901).
#
#   demo/run.sh           print the tour, then run in the foreground until Ctrl-C  (make demo)
#   demo/run.sh --smoke   run the tour, check every answer, stop, exit non-zero on any surprise
#
# Expects `make build`, the demo-upstream binary and the CLI (target/debug/apim, which the tour's
# token lines call) to be built: `make demo` and `make smoke` do that first.
set -euo pipefail
cd "$(dirname "$0")/.."

ENVOY="${ENVOY_BIN:-.venv/bin/envoy}"
UPSTREAM=target/release/demo-upstream
LOGDIR=target/demo
mkdir -p "$LOGDIR"
tools/prereq.sh pkg:curl || exit 1
for built in "$ENVOY" "$UPSTREAM" target/debug/apim target/wasm32-wasip1/release/api_key_auth.wasm; do
  [[ -x "$built" || -f "$built" ]] || { echo "$built is missing: run \`make demo\` (or \`make smoke\`), which builds it" >&2; exit 1; }
done

for port in 10000 9901 10080; do
  if (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null; then
    echo "port $port is already in use (another demo running?)" >&2
    exit 1
  fi
done

echo "==> starting the echo upstream (127.0.0.1:10080) and Envoy with envoy/gateway.yaml (a few seconds)"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT
trap 'echo; echo "stopping"; exit 0' INT TERM

"$UPSTREAM" --port 10080 >"$LOGDIR/upstream.log" 2>&1 &
pids+=($!)
"$ENVOY" -c envoy/gateway.yaml --disable-hot-restart -l info --log-path "$LOGDIR/envoy.log" &
pids+=($!)

# Bounded wait for readiness (not a timing decision: it only stops a hang).
for _ in $(seq 1 150); do
  if curl -sf http://127.0.0.1:9901/ready >/dev/null 2>&1 && curl -s -o /dev/null http://127.0.0.1:10080/ 2>/dev/null; then
    break
  fi
  if ! kill -0 "${pids[1]}" 2>/dev/null; then
    echo "Envoy exited; its log:" >&2
    cat "$LOGDIR/envoy.log" >&2
    exit 1
  fi
  sleep 0.2
done
curl -sf http://127.0.0.1:9901/ready >/dev/null || { echo "Envoy never became ready; see $LOGDIR/envoy.log" >&2; exit 1; }

if [[ "${1:-}" == "--smoke" ]]; then
  if demo/tour.sh --check; then
    echo "smoke: every step answered as expected"
  else
    echo "smoke: FAILED; Envoy's log follows" >&2
    tail -n 50 "$LOGDIR/envoy.log" >&2
    exit 1
  fi
else
  demo/tour.sh --print
  echo
  echo "Gateway on http://127.0.0.1:10000, admin on http://127.0.0.1:9901 (logs in $LOGDIR). Ctrl-C stops."
  wait
fi

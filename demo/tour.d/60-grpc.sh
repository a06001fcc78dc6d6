# Tour steps for gRPC (sourced by demo/tour.sh; `section`, `check_line` are defined there).
# Needs the gateway's `grpc` route to the demo's pets.v1.Pets service (demo-grpc serve, port
# 10090), scope-authz's per-method rules (GetPet and ListPets need pets:read, every other method
# pets:write) and quota's ListPets rule (plan demo: 3 per 10 s, cost 2). The client is
# demo-grpc, built from tests/integration like the service: each line prints `gRPC <code>`,
# then the answer or the refusal (grpc-message, the ErrorInfo and RetryInfo decoded from
# grpc-status-details-bin, the metadata that came with it).
G_ALICE=demo-key-alice-0123456789abcdef
G_BOB=demo-key-bob-0123456789abcdef0
GRPC="${GRPC_CLIENT:-target/release/demo-grpc}"
G_WINDOW_MS=10000
G_WINDOW_MARGIN_MS=5000

# call TITLE CODE PATTERN ARGS...: one `demo-grpc call` against the gateway.
call() {
  local title="$1" want="$2" pattern="$3"
  shift 3
  check_line "$title" "$want" "$pattern" "$(cmdline "$GRPC" call "$@" --addr "$GW")"
}

section "gRPC: pets.v1.Pets behind the same filters (demo-grpc, a tonic client)"
call "alice calls GetPet: passes, her consumer id reaches the service" 0 'x-consumer-id: alice' \
  GetPet --id 7 -H "x-api-key: $G_ALICE"
call "no key: 16 UNAUTHENTICATED, ErrorInfo from api-key-auth" 16 'reason=missing_api_key domain=api-key-auth' \
  GetPet --id 7
call "bob has pets:read: the read method GetPet passes (every gRPC call is a POST)" 0 'name: "pet-7"' \
  GetPet --id 7 -H "x-api-key: $G_BOB"
call "bob cannot call the write method DeletePet: 7 PERMISSION_DENIED" 7 'reason=insufficient_scope domain=scope-authz' \
  DeletePet --id 7 -H "x-api-key: $G_BOB"
call "alice can" 0 'id: 7' \
  DeletePet --id 7 -H "x-api-key: $G_ALICE"

if [[ "$MODE" != "--print" ]]; then
  # As quota's tour: start the two-call block with at least G_WINDOW_MARGIN_MS of the demo
  # plan's 10 s window left (bounded wait), so both calls fall in one window.
  now_ms=$(($(date +%s%N) / 1000000))
  left_ms=$((G_WINDOW_MS - now_ms % G_WINDOW_MS))
  if ((left_ms < G_WINDOW_MARGIN_MS)); then
    wait_ms=$((left_ms + 50))
    sleep "$((wait_ms / 1000)).$(printf '%03d' $((wait_ms % 1000)))"
  fi
  g_window_at_start=$(($(date +%s) / (G_WINDOW_MS / 1000)))
fi
# A stream counts once, at cost 2 of the demo plan's 3 per window: the second in a window is
# refused. (Typed by hand, run it again if a 10 s window boundary fell inside the line.)
check_line "ListPets costs 2 of 3 per 10 s: the second stream is 8 RESOURCE_EXHAUSTED with RetryInfo and RateLimit" 8 \
  'retry-info: retry in [0-9]+ s' \
  "$(cmdline "$GRPC" call ListPets --count 3 -H "x-api-key: $G_BOB" --addr "$GW") >/dev/null; $(cmdline "$GRPC" call ListPets --count 3 -H "x-api-key: $G_BOB" --addr "$GW")"
if [[ "$MODE" != "--print" ]]; then
  g_window_at_end=$(($(date +%s) / (G_WINDOW_MS / 1000)))
  if ((g_window_at_end != g_window_at_start)); then
    printf 'FAIL  the gRPC quota block took more than %d ms: a window boundary fell inside it\n' "$G_WINDOW_MARGIN_MS"
    failures=$((failures + 1))
  fi
fi

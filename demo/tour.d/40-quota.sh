# Tour steps for quota (sourced by demo/tour.sh; `section`, `step`, `stats`, `check_line` are
# defined there).
# Needs the quota filter in envoy/gateway.yaml with the /quota-demo rule (plan "demo": 3 requests
# per 10 s per consumer, legacy headers on), see filters/quota/README.md.
#
# The demo plan's windows are fixed, 10 s long and aligned on the Unix epoch ([10k, 10k+10)).
# An over-the-limit step is one line: it first uses up whatever is left of alice's 3 requests
# in the current window, then makes the request that gets the 429. Typed by hand it gives the
# 429 unless a window boundary falls inside that one line (then run it again). --check runs the
# same lines, so it starts the block only when at least WINDOW_MARGIN_MS of the current window
# remain (else it sleeps into the next window, at most that long); the block is a handful of
# local requests, far shorter than the margin, and it is timed: if a boundary still fell inside
# it (a stalled machine), the tour fails saying so instead of reporting a wrong answer.
Q_ALICE=demo-key-alice-0123456789abcdef
Q_BOB=demo-key-bob-0123456789abcdef0
WINDOW_MS=10000
WINDOW_MARGIN_MS=5000

section "quota: how much (the /quota-demo routes: plan demo, 3 requests per 10 s window)"
step "an allowed request carries RateLimit-Policy and RateLimit" 200 'ratelimit-policy: "demo-burst";q=3;w=10' \
  -H "x-api-key: $Q_BOB" "$GW/quota-demo/pets"

# over_limit TITLE PATTERN: alice's requests of the current window used up, then one more.
over_limit() {
  local title="$1" pattern="$2"
  local use_up
  use_up="for i in 1 2 3; do curl -s -o /dev/null $(cmdline -H "x-api-key: $Q_ALICE" "$GW/quota-demo/pets"); done"
  check_line "$title" 429 "$pattern" "$use_up; curl -si $(cmdline -H "x-api-key: $Q_ALICE" "$GW/quota-demo/pets")"
}

if [[ "$MODE" != "--print" ]]; then
  # Wait (bounded by WINDOW_MARGIN_MS) until enough of a window remains for the whole block.
  now_ms=$(($(date +%s%N) / 1000000))
  left_ms=$((WINDOW_MS - now_ms % WINDOW_MS))
  if ((left_ms < WINDOW_MARGIN_MS)); then
    wait_ms=$((left_ms + 50))
    sleep "$((wait_ms / 1000)).$(printf '%03d' $((wait_ms % 1000)))"
  fi
  window_at_start=$(($(date +%s) / (WINDOW_MS / 1000)))
fi
over_limit "alice's 3 requests used up, the 4th: 429 with Retry-After (all in one 10 s window: else run it again)" 'retry-after: [0-9]+'
over_limit "... and the IETF RateLimit field says 0 remaining" 'ratelimit: "demo-burst";r=0;t=[0-9]+'
over_limit "... and the legacy X-RateLimit-* fields" 'x-ratelimit-remaining: 0'
over_limit "... with a problem+json body" '"code":"quota_exceeded"'
if [[ "$MODE" != "--print" ]]; then
  window_at_end=$(($(date +%s) / (WINDOW_MS / 1000)))
  if ((window_at_end != window_at_start)); then
    printf 'FAIL  the quota block took more than %d ms: a window boundary fell inside it\n' "$WINDOW_MARGIN_MS"
    failures=$((failures + 1))
  fi
fi
stats "quota's counters" quota 'apim_quota_limited\{\} [1-9]'
stats "... and per plan, the plan a label (bounded: one series per plan, never per consumer)" quota 'apim_quota_plan_limited\{plan="demo"\} [1-9]'

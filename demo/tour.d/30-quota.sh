# Tour steps for quota (sourced by demo/tour.sh; `step` is defined there).
# Needs the quota filter in envoy/gateway.yaml with the /quota-demo rule (plan "demo": 3 requests
# per 10 s per consumer, legacy headers on), see filters/quota/README.md.
#
# The demo plan's windows are fixed, 10 s long and aligned on the Unix epoch ([10k, 10k+10)).
# The over-the-limit steps hold only while alice's 3 requests of *one* window are used up, so:
# - --check starts that block only when at least WINDOW_MARGIN_MS of the current window remain
#   (else it sleeps into the next window, at most that long); the block is a handful of local
#   requests, far shorter than the margin, and it is timed: if a boundary still fell inside it
#   (a stalled machine), the tour fails saying so instead of reporting a wrong answer;
# - --print shows each over-the-limit step as one self-contained command line: it first uses up
#   whatever is left of alice's 3 requests, then makes the request that gets the 429. Pasted by
#   hand, in order, every printed line gives what it says.
Q_ALICE=demo-key-alice-0123456789abcdef
Q_BOB=demo-key-bob-0123456789abcdef0
WINDOW_MS=10000
WINDOW_MARGIN_MS=5000

echo "== quota: how much"
step "an allowed request carries RateLimit-Policy and RateLimit" 200 'ratelimit-policy: "demo-burst";q=3;w=10' \
  -H "x-api-key: $Q_BOB" "$GW/quota-demo/pets"

# over_limit TITLE PATTERN: a step that needs alice's requests of the current window used up.
over_limit() {
  local title="$1" pattern="$2"
  if [[ "$MODE" == "--print" ]]; then
    printf '\n# %s  (expect 429)\n' "$title"
    printf 'for i in 1 2 3; do curl -s -o /dev/null -H %q %q; done; ' \
      "x-api-key: $Q_ALICE" "$GW/quota-demo/pets"
    printf 'curl -i -H %q %q\n' "x-api-key: $Q_ALICE" "$GW/quota-demo/pets"
    return
  fi
  step "$title" 429 "$pattern" -H "x-api-key: $Q_ALICE" "$GW/quota-demo/pets"
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
  # Use up alice's 3 requests of this window, whatever an earlier run left.
  for _ in 1 2 3 4; do
    curl -s -o /dev/null -w '%{http_code}\n' -H "x-api-key: $Q_ALICE" "$GW/quota-demo/pets" | grep -q 429 && break
  done
fi
over_limit "over the limit: 429 with Retry-After" 'retry-after: [0-9]+'
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
step "quota counters in Prometheus form" 200 'apim_quota_limited\{\} [1-9]' "$ADMIN/stats/prometheus"

# Tour steps for quota (sourced by demo/tour.sh; `step` is defined there).
# Needs the quota filter in envoy/gateway.yaml with the /quota-demo rule (plan "demo": 3 requests
# per 10 s per consumer, legacy headers on), see filters/quota/README.md.
Q_ALICE=demo-key-alice-0123456789abcdef
Q_BOB=demo-key-bob-0123456789abcdef0

echo "== quota: how much"
step "an allowed request carries RateLimit-Policy and RateLimit" 200 'ratelimit-policy: "demo-burst";q=3;w=10' \
  -H "x-api-key: $Q_BOB" "$GW/quota-demo/pets"
if [[ "$MODE" != "--print" ]]; then
  # Use up alice's 3 requests of this 10-second window, whatever an earlier run left.
  for _ in 1 2 3 4; do
    curl -s -o /dev/null -w '%{http_code}\n' -H "x-api-key: $Q_ALICE" "$GW/quota-demo/pets" | grep -q 429 && break
  done
fi
step "over the limit: 429 with Retry-After" 429 'retry-after: [0-9]+' -H "x-api-key: $Q_ALICE" "$GW/quota-demo/pets"
step "... and the IETF RateLimit field says 0 remaining" 429 'ratelimit: "demo-burst";r=0;t=[0-9]+' \
  -H "x-api-key: $Q_ALICE" "$GW/quota-demo/pets"
step "... and the legacy X-RateLimit-* fields" 429 'x-ratelimit-remaining: 0' -H "x-api-key: $Q_ALICE" "$GW/quota-demo/pets"
step "... with a problem+json body" 429 '"code":"quota_exceeded"' -H "x-api-key: $Q_ALICE" "$GW/quota-demo/pets"
step "quota counters in Prometheus form" 200 'apim_quota_limited\{\} [1-9]' http://127.0.0.1:9901/stats/prometheus

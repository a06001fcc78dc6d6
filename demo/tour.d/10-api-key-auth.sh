# Tour steps for api-key-auth (sourced by demo/tour.sh; `step` is defined there).
ALICE=demo-key-alice-0123456789abcdef
OPS=demo-key-ops-0123456789abcdef0
CAROL=demo-key-expired-0123456789abc

echo "== api-key-auth: who is calling"
step "no key: 401 with WWW-Authenticate" 401 'www-authenticate: ApiKey realm="demo"' "$GW/pets"
step "alice's key in x-api-key: the upstream sees x-consumer-id, not the key" 200 '\["x-consumer-id","alice"\]' \
  -H "x-api-key: $ALICE" "$GW/pets"
step "the key never reaches the upstream" 200 "!$ALICE" -H "x-api-key: $ALICE" "$GW/pets"
step "Authorization: ApiKey works too" 200 '\["x-consumer-plan","gold"\]' -H "authorization: ApiKey $ALICE" "$GW/pets"
step "so does ?api_key=, stripped before forwarding" 200 '"path":"/pets\?page=2"' "$GW/pets?api_key=$ALICE&page=2"
step "an unknown key: 401 invalid_api_key" 401 '"code":"invalid_api_key"' -H "x-api-key: not-a-real-key" "$GW/pets"
step "an expired key reads exactly the same" 401 '"detail":"The API key is not valid."' -H "x-api-key: $CAROL" "$GW/pets"
step "two different keys: 401 ambiguous_api_key" 401 '"code":"ambiguous_api_key"' \
  -H "x-api-key: $ALICE" "$GW/pets?api_key=$OPS"
step "a forged x-consumer-id is replaced" 200 '\["x-consumer-id","alice"\]' \
  -H "x-api-key: $ALICE" -H "x-consumer-id: admin" "$GW/pets"
step "/admin is for the ops group: alice gets 403" 403 '"code":"consumer_not_allowed"' -H "x-api-key: $ALICE" "$GW/admin/users"
step "/admin with the ops key" 200 '\["x-consumer-id","ops"\]' -H "x-api-key: $OPS" "$GW/admin/users"
step "/public lets anonymous callers in as guest" 200 '\["x-consumer-id","guest"\]' "$GW/public/catalog"
step "/health skips authentication" 200 'ok' "$GW/health"
step "CORS preflight passes without a key" 200 '"method":"OPTIONS"' -X OPTIONS \
  -H "origin: https://app.example" -H "access-control-request-method: GET" "$GW/pets"
step "counters in Prometheus form" 200 'apim_api_key_auth_allowed\{\} [1-9]' "$ADMIN/stats/prometheus"


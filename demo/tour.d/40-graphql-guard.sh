# Tour steps for graphql-guard (sourced by demo/tour.sh; `step` is defined there).
# Needs the graphql-guard entry of envoy/gateway.yaml (after api-key-auth, rules on the route
# named "graphql", default max_depth 6, gold max_depth 10) and its /graphql route to the echo
# upstream.
ALICE=demo-key-alice-0123456789abcdef
BOB=demo-key-bob-0123456789abcdef0
FINE='{"query":"query Pets { pets(first: 10) { id name owner { name } } }"}'
DEEP='{"query":"{ a { b { c { d { e { f { g { h { i { j { k { l } } } } } } } } } } } }"}'
SEVEN='{"query":"{ a { b { c { d { e { f { g } } } } } } }"}'

echo "== graphql-guard: is this GraphQL operation safe"
step "a fine query reaches the GraphQL server" 200 '"method":"POST"' \
  -H "x-api-key: $ALICE" -H 'content-type: application/json' -d "$FINE" "$GW/graphql"
step "a 12-deep query is refused before it gets there" 400 '"code":"MAX_DEPTH_EXCEEDED"' \
  -H "x-api-key: $ALICE" -H 'content-type: application/json' -d "$DEEP" "$GW/graphql"
step "the message names the limit and the measured depth" 400 'Depth 12 exceeds the limit of 10' \
  -H "x-api-key: $ALICE" -H 'content-type: application/json' -d "$DEEP" "$GW/graphql"
step "limits follow the plan: depth 7 is fine for alice (gold)" 200 '"method":"POST"' \
  -H "x-api-key: $ALICE" -H 'content-type: application/json' -d "$SEVEN" "$GW/graphql"
step "... and too deep for bob (silver, default limits)" 400 'Depth 7 exceeds the limit of 6' \
  -H "x-api-key: $BOB" -H 'content-type: application/json' -d "$SEVEN" "$GW/graphql"
step "a client that accepts only application/json gets 200 with errors" 200 '"errors":\[' \
  -H "x-api-key: $ALICE" -H 'accept: application/json' -H 'content-type: application/json' -d "$DEEP" "$GW/graphql"
step "a mutation over GET: 405" 405 '"code":"MUTATION_NOT_ALLOWED_OVER_GET"' \
  -H "x-api-key: $ALICE" "$GW/graphql?query=mutation%7BaddPet%7Bid%7D%7D"
step "guard counters in Prometheus form" 200 'apim_graphql_guard_rejected_max_depth_exceeded\{\} [1-9]' \
  "$ADMIN/stats/prometheus"

# Tour steps for transform (sourced by demo/tour.sh; `step` is defined there).
# Needs the transform entry of envoy/gateway.yaml (rules pets-v2, rest-to-graphql, strip-secrets)
# after api-key-auth; the echo upstream serves /transform/graphql and /transform/json.
ALICE=demo-key-alice-0123456789abcdef

echo "== transform: reshape requests and responses"
step "/v2/pets/7 is rewritten to /pets/7, ?debug dropped" 200 '"path":"/pets/7\?src=gateway"' \
  -H "x-api-key: $ALICE" "$GW/v2/pets/7?debug=1"
step "the consumer's id and plan reach the upstream in a templated header" 200 '\["x-transform-consumer","alice/gold"\]' \
  -H "x-api-key: $ALICE" "$GW/v2/pets/7"
step "a client's x-debug header is removed" 200 '!x-debug' -H "x-api-key: $ALICE" -H "x-debug: 1" "$GW/v2/pets/7"
step "REST → GraphQL: GET /gql/pets/5 is answered from the GraphQL endpoint, data.pet unwrapped" 200 '"name":"pet-5"' \
  -H "x-api-key: $ALICE" "$GW/gql/pets/5"
step "the GraphQL call carried the path id as an Int and the caller from the identity" 200 '"variables":\{"caller":"alice","id":5\}' \
  -H "x-api-key: $ALICE" "$GW/gql/pets/5"
step "a pet the GraphQL server does not know: 404" 404 '"code":"not_found"' -H "x-api-key: $ALICE" "$GW/gql/pets/404"
step "a non-numeric id: 400 invalid_variable, no call made" 400 '"code":"invalid_variable"' -H "x-api-key: $ALICE" "$GW/gql/pets/abc"
step "a JSON response loses its secret field" 200 '!s3cr3t' -H "x-api-key: $ALICE" "$GW/transform/json"
step "invalid JSON to a body rule: 400 invalid_json" 400 '"code":"invalid_json"' -H "x-api-key: $ALICE" \
  -H 'content-type: application/json' --data-binary '{oops' "$GW/v2/orders"
step "counters in Prometheus form" 200 'apim_transform_applied\{\} [1-9]' "$ADMIN/stats/prometheus"
step "claims published by scope-authz feed templates (x-token-subject from the token's sub)" 200 \
  '\["x-token-subject","carol"\]' -H "authorization: Bearer $READ_TOKEN" "$GW/oauth/pets"

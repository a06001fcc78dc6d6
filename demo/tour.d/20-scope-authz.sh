# Tour steps for scope-authz (sourced by demo/tour.sh; `step` is defined there).
# Needs the gateway's scope-authz entry (demo issuer inline JWKS; /pets GET needs pets:read,
# writes need pets:write) and api-key-auth's skip rule for /oauth/ (token-only calls).
# Tokens are minted with the DEMO-ONLY issuer key (envoy/examples/demo-issuer/).
APIM="${APIM:-cargo run -q -p apim --}"
ALICE=demo-key-alice-0123456789abcdef
BOB=demo-key-bob-0123456789abcdef0
READ_TOKEN="$($APIM token mint --scope "pets:read" --sub carol)"
WRITE_TOKEN="$($APIM token mint --scope "pets:read pets:write" --sub dora)"
SUBSTRING_TOKEN="$($APIM token mint --scope "pets:writer pets:read" --sub eve)"
EXPIRED_TOKEN="$($APIM token mint --scope "pets:read" --ttl -3600)"

echo "== scope-authz: may they do this"
step "API-key consumer alice has pets:write: POST passes" 200 '"method":"POST"' \
  -X POST -H "x-api-key: $ALICE" "$GW/pets"
step "bob has only pets:read: 403, worded for his API key" 403 'The consumer.s API key does not carry the scopes' \
  -X POST -H "x-api-key: $BOB" "$GW/pets"
step "no token on an OAuth route: 401 Bearer challenge" 401 'www-authenticate: Bearer realm="demo"' \
  "$GW/oauth/pets"
step "a token with pets:read: GET passes, sub forwarded" 200 '\["x-user","carol"\]' \
  -H "authorization: Bearer $READ_TOKEN" "$GW/oauth/pets"
step "the same token cannot write" 403 '"code":"insufficient_scope"' \
  -X POST -H "authorization: Bearer $READ_TOKEN" "$GW/oauth/pets"
step "a token with pets:write can" 200 '"method":"POST"' \
  -X POST -H "authorization: Bearer $WRITE_TOKEN" "$GW/oauth/pets"
step "pets:writer is not pets:write (exact matching)" 403 '"code":"insufficient_scope"' \
  -X POST -H "authorization: Bearer $SUBSTRING_TOKEN" "$GW/oauth/pets"
step "an expired token: 401 invalid_token" 401 'error="invalid_token", error_description="The token has expired."' \
  -H "authorization: Bearer $EXPIRED_TOKEN" "$GW/oauth/pets"
step "a tampered token: 401, nothing about keys in the answer" 401 'The token.s signature is invalid' \
  -H "authorization: Bearer ${READ_TOKEN}AA" "$GW/oauth/pets"
step "scope-authz counters" 200 'apim_scope_authz_allowed\{\} [0-9]' http://127.0.0.1:9901/stats/prometheus

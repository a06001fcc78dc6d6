# Tour steps for scope-authz (sourced by demo/tour.sh; `section`, `setup`, `step`, `stats` are
# defined there).
# Needs the gateway's scope-authz entry (demo issuer inline JWKS; /pets GET needs pets:read,
# writes need pets:write) and api-key-auth's skip rule for /oauth/ (token-only calls).
# Tokens are minted with the DEMO-ONLY issuer key (envoy/examples/demo-issuer/) by the CLI.
# The token arguments are single-quoted on purpose: '${READ_TOKEN}' is printed as typed and
# expanded by the shell that runs the line (demo/tour.sh).
# shellcheck disable=SC2016
ALICE=demo-key-alice-0123456789abcdef
BOB=demo-key-bob-0123456789abcdef0

section "scope-authz: may they do this"
setup READ_TOKEN "a token with pets:read for carol, from the demo issuer; it expires 1 h after you mint it" \
  "$APIM" token mint --scope "pets:read" --sub carol
setup WRITE_TOKEN "pets:read and pets:write for dora (expires in 1 h)" \
  "$APIM" token mint --scope "pets:read pets:write" --sub dora
setup SUBSTRING_TOKEN "pets:writer (not pets:write) for eve (expires in 1 h)" \
  "$APIM" token mint --scope "pets:writer pets:read" --sub eve
setup EXPIRED_TOKEN "a token that expired an hour ago (--ttl -3600)" \
  "$APIM" token mint --scope "pets:read" --ttl -3600
step "API-key consumer alice has pets:write: POST passes" 200 '"method":"POST"' \
  -X POST -H "x-api-key: $ALICE" "$GW/pets"
step "bob has only pets:read: 403, worded for his API key" 403 'The consumer.s API key does not carry the scopes' \
  -X POST -H "x-api-key: $BOB" "$GW/pets"
step "no token on an OAuth route: 401 Bearer challenge" 401 'www-authenticate: Bearer realm="demo"' \
  "$GW/oauth/pets"
step "a token with pets:read: GET passes, sub forwarded" 200 '\["x-user","carol"\]' \
  -H 'authorization: Bearer ${READ_TOKEN}' "$GW/oauth/pets"
step "the same token cannot write" 403 '"code":"insufficient_scope"' \
  -X POST -H 'authorization: Bearer ${READ_TOKEN}' "$GW/oauth/pets"
step "a token with pets:write can" 200 '"method":"POST"' \
  -X POST -H 'authorization: Bearer ${WRITE_TOKEN}' "$GW/oauth/pets"
step "pets:writer is not pets:write (exact matching)" 403 '"code":"insufficient_scope"' \
  -X POST -H 'authorization: Bearer ${SUBSTRING_TOKEN}' "$GW/oauth/pets"
step "an expired token: 401 invalid_token" 401 'error="invalid_token", error_description="The token has expired."' \
  -H 'authorization: Bearer ${EXPIRED_TOKEN}' "$GW/oauth/pets"
step "a tampered token: 401, nothing about keys in the answer" 401 'The token.s signature is invalid' \
  -H 'authorization: Bearer ${READ_TOKEN}AA' "$GW/oauth/pets"
stats "scope-authz's counters" scope_authz 'apim_scope_authz_allowed\{\} [0-9]'

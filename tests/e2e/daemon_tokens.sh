#!/bin/bash
# End to end: API tokens (issue 16) through shoald, with real sleep guests.
# The first-start admin token (admin.token) is the token "admin", kept
# hashed (its secret is not in the database); tokens made with the CLI; a
# read-only token cannot create (403, nothing made); an operator cannot add
# hosts or see tokens; a token limited to team=a cannot create outside it,
# cannot see, stop or delete another team's instance (404), and its quotas
# refuse the create that would exceed them (403 quota_exceeded naming the
# quota and the figures, nothing made); revocation takes effect at the next
# request; audit events name the token; a token made with --expires is
# refused once expired (401 naming it) and one made with --rate gets 429
# with Retry-After past its burst, the admin token never; all of it across
# a restart. About 25 s.
# usage: daemon_tokens.sh SHOALD IMAGES_DIR SHOAL_CLI
set -eu
SHOALD=$1
IMAGES=$(cd "$2" && pwd)
CLI=$3
. "$(dirname "$0")/lib.sh"

for f in "$SHOALD" "$IMAGES/sleep.elf" "$CLI"; do
    [ -e "$f" ] || { echo "missing $f (build first)"; exit 1; }
done
e2e_setup
e2e_start_daemon "$SHOALD" || exit 1
e2e_push_images sleep
ADMIN=$E2E_TOKEN

# as SECRET METHOD PATH [curl args]: one request with another token.
as() {
    tok=$1
    shift
    E2E_TOKEN=$tok
    api "$@"
    E2E_TOKEN=$ADMIN
}
JSON=(-H 'Content-Type: application/json')
is() { [ "$HTTP_CODE" = "$1" ] && [ "$(jq -c "$2" <<<"$BODY")" = "$3" ]; }
cli() {
    ip netns exec "$E2E_NS" env SHOAL_URL="http://127.0.0.1:$E2E_PORT" SHOAL_TOKEN="$ADMIN" \
        "$CLI" "$@"
}
names() { # SECRET -> the instance names that token lists, sorted, as JSON
    as "$1" GET "/v1/instances?limit=1000"
    jq -c '[.items[].name] | sort' <<<"$BODY"
}
admin_count() { # SELECTOR -> how many instances match for the admin
    api GET "/v1/instances?selector=$1&limit=1000"
    jq '.items | length' <<<"$BODY"
}

# --- the first-start token is the admin token, stored hashed
api GET /v1/tokens
check "admin lists tokens (HTTP $HTTP_CODE)" is 200 '[.items[] | [.name, .scope]]' '[["admin","admin"]]'
check "no secret in a listing" [ "$(jq '[.items[] | has("secret")] | any' <<<"$BODY")" = false ]
check "admin.token's secret is not in the database" \
    bash -c "! cat '$E2E_STATE'/shoald.db* | grep -a -q -F '$ADMIN'"

# --- tokens made with the CLI
RO=$(cli token create viewer --scope read-only -q)
OP=$(cli token create deployer --scope operator -q)
TEAM=$(cli token create team-a --scope operator -l team=a --max-instances 2 --max-memory 96 -q)
check "three secrets printed" [ -n "$RO" -a -n "$OP" -a -n "$TEAM" -a "$RO" != "$OP" ]
check "no secret in the database" \
    bash -c "! cat '$E2E_STATE'/shoald.db* | grep -a -q -F -e '$RO' -e '$OP' -e '$TEAM'"
out=$(cli token ls)
check "shoal token ls shows the selector and quotas" \
    grep -q -E '^[0-9a-f]{12} +team-a +operator +team=a +0/2 +0/96 +0/-' <<<"$out"
out=$(cli token create viewer --scope read-only -q 2>&1) && rc=0 || rc=$?
check "a taken name is a conflict (exit $rc: $out)" [ "$rc" = 4 ]

# --- read-only: reads, never writes
as "$RO" POST /v1/instances "${JSON[@]}" -d '{"image":"sleep","name":"ro1","args":["600"]}'
check "read-only cannot create (HTTP $HTTP_CODE)" is 403 .error.code '"forbidden"'
check "the refusal names the scope needed" grep -q "needs scope operator" <<<"$BODY"
api GET /v1/instances/ro1
check "nothing was created (HTTP $HTTP_CODE)" [ "$HTTP_CODE" = 404 ]
as "$RO" GET /v1/instances
check "read-only can list (HTTP $HTTP_CODE)" [ "$HTTP_CODE" = 200 ]

# --- operator: instances, not hosts, not tokens
as "$OP" POST /v1/hosts "${JSON[@]}" -d '{"name":"h2","uri":"qemu:///embed?root=/tmp/nope"}'
check "operator cannot add a host (HTTP $HTTP_CODE)" is 403 .error.code '"forbidden"'
as "$OP" GET /v1/tokens
check "operator cannot list tokens (HTTP $HTTP_CODE)" [ "$HTTP_CODE" = 403 ]
as "$OP" POST /v1/instances "${JSON[@]}" \
    -d '{"image":"sleep","name":"other","args":["600"],"labels":{"team":"b"}}'
check "operator creates 'other' (HTTP $HTTP_CODE)" [ "$HTTP_CODE" = 201 ]

# --- a token limited to team=a
as "$TEAM" POST /v1/instances "${JSON[@]}" \
    -d '{"image":"sleep","name":"a0","args":["600"],"labels":{"team":"b"}}'
check "team-a cannot create outside its selector (HTTP $HTTP_CODE)" is 403 .error.field '"labels"'
as "$TEAM" POST /v1/instances "${JSON[@]}" \
    -d '{"image":"sleep","name":"a1","memory_mib":32,"args":["600"],"labels":{"team":"a"}}'
check "team-a creates a1 (HTTP $HTTP_CODE)" [ "$HTTP_CODE" = 201 ]
check "team-a lists only a1" [ "$(names "$TEAM")" = '["a1"]' ]
check "the admin lists both" [ "$(names "$ADMIN")" = '["a1","other"]' ]
as "$TEAM" GET /v1/instances/other
check "team-a cannot see 'other' (HTTP $HTTP_CODE)" is 404 .error.message '"instance '"'other'"' not found"'
as "$TEAM" DELETE "/v1/instances/other?force=true"
check "team-a cannot delete 'other' (HTTP $HTTP_CODE)" [ "$HTTP_CODE" = 404 ]
as "$TEAM" POST /v1/instances/other/stop "${JSON[@]}" -d '{}'
check "team-a cannot stop 'other' (HTTP $HTTP_CODE)" [ "$HTTP_CODE" = 404 ]
as "$TEAM" POST /v1/instances/stop "${JSON[@]}" -d '{"ids":["other"],"timeout_s":1}'
check "team-a's bulk stop of 'other' is a not-found item" \
    is 200 '[.succeeded, .items[0].error.code]' '[0,"not_found"]'
as "$TEAM" GET "/v1/instances/other/console"
check "team-a cannot read 'other's console (HTTP $HTTP_CODE)" [ "$HTTP_CODE" = 404 ]
check "'other' is still running" wait_for 60 inst_state_is other running

# --- quotas: 2 instances, 96 MiB
as "$TEAM" POST /v1/instances "${JSON[@]}" \
    -d '{"image":"sleep","name":"a2","count":2,"memory_mib":32,"args":["600"],"labels":{"team":"a"}}'
check "a create over the instance quota is 403 (HTTP $HTTP_CODE)" \
    is 403 '[.error.code, .error.field]' '["quota_exceeded","quotas.instances"]'
check "the refusal gives the figures" grep -q "1 in use + 2 asked > 2 allowed" <<<"$BODY"
as "$TEAM" POST /v1/instances "${JSON[@]}" \
    -d '{"image":"sleep","name":"a2","memory_mib":96,"args":["600"],"labels":{"team":"a"}}'
check "a create over the memory quota is 403 (HTTP $HTTP_CODE)" \
    is 403 .error.field '"quotas.memory_mib"'
check "the refusals made nothing" [ "$(admin_count team=a)" = 1 ]
as "$TEAM" POST /v1/instances "${JSON[@]}" \
    -d '{"image":"sleep","name":"a2","memory_mib":64,"args":["600"],"labels":{"team":"a"}}'
check "a create within the quotas works (HTTP $HTTP_CODE)" [ "$HTTP_CODE" = 201 ]
api GET /v1/tokens
check "the listing shows team-a's use" \
    [ "$(jq -c '.items[] | select(.name == "team-a") | [.quotas.instances, .quotas.memory_mib]' <<<"$BODY")" = '[{"max":2,"used":2},{"max":96,"used":96}]' ]
as "$TEAM" DELETE "/v1/instances/a2?force=true"
check "team-a deletes its own a2 (HTTP $HTTP_CODE)" [ "$HTTP_CODE" = 204 ]
api GET /v1/tokens
check "a deleted instance no longer counts" \
    [ "$(jq '.items[] | select(.name == "team-a") | .quotas.instances.used' <<<"$BODY")" = 1 ]
# names longer than an id, with and without a selector
api GET /v1/instances/no-such-instance-at-all
check "a missing long name is named whole (HTTP $HTTP_CODE)" \
    is 404 .error.message '"instance '"'no-such-instance-at-all'"' not found"'
as "$TEAM" POST /v1/instances "${JSON[@]}" \
    -d '{"image":"sleep","name":"a-long-instance-name","args":["600"],"labels":{"team":"a"}}'
check "team-a creates a long-named instance (HTTP $HTTP_CODE)" [ "$HTTP_CODE" = 201 ]
as "$TEAM" GET /v1/instances/a-long-instance-name
check "team-a gets it by name (HTTP $HTTP_CODE)" is 200 .name '"a-long-instance-name"'
api GET /v1/instances/a-long-instance-name
check "the admin gets it by name (HTTP $HTTP_CODE)" is 200 .name '"a-long-instance-name"'
as "$TEAM" DELETE "/v1/instances/a-long-instance-name?force=true"
check "team-a deletes it by name (HTTP $HTTP_CODE)" [ "$HTTP_CODE" = 204 ]

# --- revocation, at once
as "$OP" GET /v1/instances
check "deployer works before (HTTP $HTTP_CODE)" [ "$HTTP_CODE" = 200 ]
check "shoal token rm deployer" cli token rm deployer
as "$OP" GET /v1/instances
check "deployer is refused right after (HTTP $HTTP_CODE)" [ "$HTTP_CODE" = 401 ]
out=$(cli token rm admin 2>&1) && rc=0 || rc=$?
check "the admin token cannot be revoked (exit $rc)" [ "$rc" = 4 ]

# --- audit events name the token
ev=$(ns_curl -sS -N -m 3 -H "Authorization: Bearer $ADMIN" \
    "http://127.0.0.1:$E2E_PORT/v1/events?since=0" 2>/dev/null || true)
audit() { grep '^data: ' <<<"$ev" | sed 's/^data: //' | jq -c "select(.type == \"audit\") | $1"; }
check "audit: team-a's create, 201" \
    grep -q -x '\["team-a","POST","/v1/instances",201\]' <<<"$(audit '[.by, .action, .path, .status]')"
check "audit: viewer's refused create, 403" \
    grep -q -x '\["viewer","POST","/v1/instances",403\]' <<<"$(audit '[.by, .action, .path, .status]')"
check "audit: the admin's token create and revoke" \
    [ "$(audit 'select(.by == "admin") | .action + " " + .path' | grep -c -E '^"(POST /v1/tokens|DELETE /v1/tokens/deployer)"$')" = 5 ]
check "audit: no GET recorded" [ -z "$(audit 'select(.action == "GET")')" ]
# team-a's stream: its instances' events and its own requests, nothing else
ev=$(ns_curl -sS -N -m 3 -H "Authorization: Bearer $TEAM" \
    "http://127.0.0.1:$E2E_PORT/v1/events?since=0" 2>/dev/null || true)
seen() { grep '^data: ' <<<"$ev" | sed 's/^data: //' | jq -r "$1" | sort -u | tr '\n' ' '; }
# (a2 is gone by now: a replay cannot tell whose it was, so it is left out;
# a stream open while it lived would have had its events)
check "team-a's instance events are a1's only ($(seen 'select(.instance) | .name // empty'))" \
    [ "$(seen 'select(.instance) | .name // empty')" = "a1 " ]
check "team-a sees only its own audit events ($(seen 'select(.type == "audit") | .by'))" \
    [ "$(seen 'select(.type == "audit") | .by')" = "team-a " ]

# --- expiry and request rate (issue 16)
SHORT=$(cli token create short --scope read-only --expires 6s -q)
t_short=$(date +%s%3N)
as "$SHORT" GET /v1/instances
check "a token made with --expires 6s works at first (HTTP $HTTP_CODE)" [ "$HTTP_CODE" = 200 ]
LIMITED=$(cli token create limited --scope read-only --rate 2/s --burst 3 -q)
# burst TOKEN: 10 requests back to back on one connection, their codes
burst() {
    local urls=()
    for _ in $(seq 1 10); do urls+=(-o /dev/null "http://127.0.0.1:$E2E_PORT/v1/instances"); done
    ns_curl -sS -m 20 -H "Authorization: Bearer $1" -w '%{http_code} ' "${urls[@]}"
}
codes=$(burst "$LIMITED")
e2e_log "rate 2/s burst 3, 10 requests at once: $codes"
check "rate 2/s burst 3: the first 3 of a burst pass" [ "$(cut -d' ' -f1-3 <<<"$codes")" = "200 200 200" ]
check "rate 2/s burst 3: then 429" grep -q 429 <<<"$codes"
check "the admin token is never limited ($(burst "$ADMIN"))" [ -z "$(burst "$ADMIN" | tr -d '20 ')" ]
u="http://127.0.0.1:$E2E_PORT/v1/instances"
hdrs=$(ns_curl -sS -m 5 -D - -H "Authorization: Bearer $LIMITED" \
    -o /dev/null "$u" -o /dev/null "$u" -o /dev/null "$u" -o /dev/null "$u")
check "a 429 says when to retry (Retry-After)" grep -q -i '^Retry-After: [0-9]' <<<"$hdrs"
as "$LIMITED" GET /v1/instances
[ "$HTTP_CODE" = 429 ] && check "its message names the limit" \
    grep -q "token 'limited' is over its rate limit of 2 requests/s (burst 3)" <<<"$BODY"
ls_out=$(cli token ls)
check "shoal token ls shows the rate" grep -q -E '^[0-9a-f]+ +limited .* 2/s burst 3' <<<"$ls_out"
check "shoal token ls shows the expiry" grep -q -E '^[0-9a-f]+ +short .*T[0-9:]+Z +-' <<<"$ls_out"
sleep "$(awk -v t="$t_short" -v n="$(date +%s%3N)" 'BEGIN { w = (t + 6300 - n) / 1000; print (w > 0 ? w : 0) }')"
as "$SHORT" GET /v1/instances
check "an expired token is refused (HTTP $HTTP_CODE)" [ "$HTTP_CODE" = 401 ]
check "and told so ($(jq -r .error.message <<<"$BODY"))" \
    grep -q "token 'short' expired at 20" <<<"$(jq -r .error.message <<<"$BODY")"
check "shoal token ls marks it expired" grep -q -E '^[0-9a-f]+ +short .*Z \(expired\)' <<<"$(cli token ls)"
api POST /v1/tokens "${JSON[@]}" -d '{"name":"past","scope":"read-only","expires_at":"2020-01-01T00:00:00Z"}'
check "an expiry in the past is refused (HTTP $HTTP_CODE)" is 400 .error.field '"expires_at"'

# --- across a restart
e2e_stop_daemon
e2e_start_daemon "$SHOALD" || exit 1
check "admin.token still works" [ "$E2E_TOKEN" = "$ADMIN" ]
check "team-a still limited after a restart" [ "$(names "$TEAM")" = '["a1"]' ]
as "$OP" GET /v1/instances
check "deployer still revoked (HTTP $HTTP_CODE)" [ "$HTTP_CODE" = 401 ]

api DELETE "/v1/instances?selector=team&force=true"
check "cleanup (HTTP $HTTP_CODE)" [ "$HTTP_CODE" = 200 ]
e2e_stop_daemon

e2e_log "tokens: $E2E_PASSES passed, $E2E_FAILS failed"
[ "$E2E_FAILS" -eq 0 ]

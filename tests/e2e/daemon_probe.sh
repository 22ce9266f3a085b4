#!/bin/bash
# End to end (issue 14): readiness and health probes through shoald with
# real QEMU (docs/shoald.md "Probes"). Bad probe specs are 400s naming the
# field and make nothing; the defaults (status for shoal's guests, tcp: of
# the first published port for foreign ones, else none); the reference
# httpd guest made ready by a tcp probe instead of its status channel; a
# foreign-kind guest (foreign_unikraft, SeaBIOS) made ready by a console
# probe and by `none`; a networked foreign guest (foreign_uk_httpd) ready
# by the default tcp probe of its published port's guest port, healthy by
# http, and unhealthy by an http probe of a port it does not serve; an http health probe that passes (healthy, `shoal
# ps` shows it), one that fails (unhealthy, restart never: it keeps
# running), one that fails under on-failure (the run ends crashed
# "unhealthy: ..." and the policy starts it again); events, /metrics; a
# per-run command line override (--cmdline); the
# probes kept across a shoald restart.
# usage: daemon_probe.sh SHOALD IMAGES_DIR SHOAL
set -eu
SHOALD=$1
IMAGES=$(cd "$2" && pwd)
SHOAL=$3
. "$(dirname "$0")/lib.sh"

for f in "$SHOALD" "$SHOAL" "$IMAGES/httpd.elf" "$IMAGES/foreign_unikraft.elf" \
    "$IMAGES/foreign_uk_httpd.elf"; do
    [ -e "$f" ] || { echo "missing $f (build first)"; exit 1; }
done
e2e_setup
e2e_start_daemon "$SHOALD" || exit 1
e2e_push_images httpd
api POST "/v1/images?ref=uk:latest" -H 'Content-Type: application/octet-stream' \
    --data-binary "@$IMAGES/foreign_unikraft.elf"
check "push foreign_unikraft as uk (HTTP $HTTP_CODE)" [ "$HTTP_CODE" = 201 ]

create() { api POST /v1/instances -H 'Content-Type: application/json' -d "$1"; }
field() { printf '%s' "$BODY" | jq -r "$1"; }
shoal() { ip netns exec "$E2E_NS" env SHOAL_URL="http://127.0.0.1:$E2E_PORT" SHOAL_TOKEN="$E2E_TOKEN" "$SHOAL" "$@"; }

# --- bad specs: 400 naming the field, nothing made
bad() { # BODY FIELD
    create "$1"
    check "400 for $1 (got $HTTP_CODE)" [ "$HTTP_CODE" = 400 ]
    check "  names field $2 (got '$(field .error.field)': $(field .error.message))" [ "$(field .error.field)" = "$2" ]
}
bad '{"image":"httpd","ready":"tcp:0"}' ready
bad '{"image":"httpd","ready":"udp:53"}' ready
bad '{"image":"httpd","ready":"console:("}' ready
bad '{"image":"httpd","ready":""}' ready
bad '{"image":"httpd","ready":7}' ready
bad '{"image":"uk","ready":"status"}' ready
bad '{"image":"httpd","ready":"tcp:80","network":false}' ready
bad '{"image":"httpd","health":{"probe":"console:up"}}' health.probe
bad '{"image":"httpd","health":{"probe":"status"}}' health.probe
bad '{"image":"httpd","health":{"interval_s":5}}' health.probe
bad '{"image":"httpd","health":{"probe":"http:80/","retries":0}}' health.retries
bad '{"image":"httpd","health":{"probe":"http:80/","interval_s":3601}}' health.interval_s
bad '{"image":"httpd","health":{"probe":"http:80/","bogus":1}}' health.bogus
bad '{"image":"httpd","health":"http:80/"}' health
api GET /v1/instances
check "no instance was made by the refused creates" [ "$(field '.items | length')" = 0 ]

# --- defaults, as stored
create '{"image":"httpd","name":"ref","args":["80"]}'
check "create ref (HTTP $HTTP_CODE)" [ "$HTTP_CODE" = 201 ]
check "shoal's guest: ready by status (got $(field '.items[0].ready'))" [ "$(field '.items[0].ready')" = status ]
check "no health probe: health.status none" [ "$(field '.items[0].health.status')" = none ]
create '{"image":"uk","name":"uk-port","ports":[{"host":18081,"guest":8080}],"restart":"never"}'
check "foreign image with a published port: ready tcp:8080 (got $(field '.items[0].ready'))" \
    [ "$(field '.items[0].ready')" = tcp:8080 ]
create '{"image":"uk","name":"uk-none"}'
check "foreign image without ports: ready none (got $(field '.items[0].ready'))" \
    [ "$(field '.items[0].ready')" = none ]
check "ref runs (status channel)" wait_for 60 inst_state_is ref running
check "uk-none ends exited" wait_for 60 inst_state_is uk-none exited
check "uk-none was ready once its domain ran (ready_ms $(inst_field uk-none .ready_ms))" \
    [ "$(inst_field uk-none .ready_ms)" != null ]
check "uk-port ends exited" wait_for 60 inst_state_is uk-port exited
check "uk-port never accepted on 8080: never ready (ready_ms null)" [ "$(inst_field uk-port .ready_ms)" = null ]

# --- a foreign-kind guest (SeaBIOS) ready by a console probe: it prints
# its Unikraft line, the image's name (uk) first
create '{"image":"uk","name":"uk-con","ready":"console:^uk netdev\\.ip=10\\.88\\."}'
check "create uk-con (HTTP $HTTP_CODE)" [ "$HTTP_CODE" = 201 ]
check "uk-con ends exited" wait_for 60 inst_state_is uk-con exited
check "uk-con was ready by its console line (ready_ms $(inst_field uk-con .ready_ms))" \
    [ "$(inst_field uk-con .ready_ms)" != null ]
create '{"image":"uk","name":"uk-never","ready":"console:no such line"}'
check "uk-never ends exited" wait_for 60 inst_state_is uk-never exited
check "uk-never was never ready" [ "$(inst_field uk-never .ready_ms)" = null ]

# --- a networked foreign guest (foreign_uk_httpd: kind unikraft, SeaBIOS,
# the unikraft preset) with a published port and no --ready: ready when
# its guest port accepts (the default tcp probe); an http health probe on
# a path it answers is healthy; one on a port it does not serve makes it
# unhealthy, and under restart never it keeps running
api POST "/v1/images?ref=ukhttpd:latest" -H 'Content-Type: application/octet-stream' \
    --data-binary "@$IMAGES/foreign_uk_httpd.elf"
check "push foreign_uk_httpd as ukhttpd (HTTP $HTTP_CODE)" [ "$HTTP_CODE" = 201 ]
create '{"image":"ukhttpd","name":"ukweb","args":["8080"],"ports":[{"host":18082,"guest":8080}],"health":{"probe":"http:8080/healthz","interval_s":1}}'
check "create ukweb (HTTP $HTTP_CODE)" [ "$HTTP_CODE" = 201 ]
check "ukweb's default readiness is tcp:8080 (got $(field '.items[0].ready'))" [ "$(field '.items[0].ready')" = tcp:8080 ]
check "ukweb runs once its port accepts" wait_for 90 inst_state_is ukweb running
check "ukweb was ready by probe (ready_ms $(inst_field ukweb .ready_ms))" [ "$(inst_field ukweb .ready_ms)" != null ]
check "ukweb answers at its address" eval '[ "$(ns_curl -sS -m 2 "http://$(inst_field ukweb .network.address | cut -d/ -f1):8080/healthz")" = ok ]'
check "ukweb becomes healthy" wait_for 30 eval '[ "$(inst_field ukweb .health.status)" = healthy ]'
create '{"image":"ukhttpd","name":"uksick","args":["8080"],"ports":[{"host":18083,"guest":8080}],"health":{"probe":"http:8081/healthz","interval_s":1,"timeout_s":1,"retries":2}}'
check "uksick runs (its readiness port accepts)" wait_for 90 inst_state_is uksick running
check "uksick becomes unhealthy (http on a port it does not serve)" \
    wait_for 30 eval '[ "$(inst_field uksick .health.status)" = unhealthy ]'
check "uksick keeps running under restart never" inst_state_is uksick running
api DELETE '/v1/instances/uksick?force=true'
check "delete uksick (HTTP $HTTP_CODE)" [ "$HTTP_CODE" = 204 ]
api DELETE '/v1/instances/ukweb?force=true'
check "delete ukweb (HTTP $HTTP_CODE)" [ "$HTTP_CODE" = 204 ]

# --- a per-run command line override (a template) instead of the image's
# preset: foreign_unikraft prints its line as it gets it
create '{"image":"uk","name":"uk-cmd","cmdline":"custom {address}/{prefix} gw={gateway} -- {args}","args":["a","b"]}'
check "create uk-cmd with --cmdline (HTTP $HTTP_CODE)" [ "$HTTP_CODE" = 201 ]
check "its cmdline is in the instance" [ "$(field '.items[0].cmdline')" = 'custom {address}/{prefix} gw={gateway} -- {args}' ]
check "uk-cmd ends exited" wait_for 60 inst_state_is uk-cmd exited
ADDR=$(inst_field uk-cmd .network.address)
api GET /v1/instances/uk-cmd/console
check "uk-cmd's console is the template filled in (got '$BODY')" [ "$BODY" = "custom $ADDR gw=10.88.0.1 -- a b" ]
bad '{"image":"uk","cmdline":"x {ip}"}' cmdline
bad '{"image":"uk","cmdline":""}' cmdline

# --- the reference guest ready by a tcp probe instead of its status channel
create '{"image":"httpd","name":"web","args":["80"],"ready":"tcp:80","ports":[{"host":18080,"guest":80}],"health":{"probe":"http:80/healthz","interval_s":1,"retries":2}}'
check "create web (HTTP $HTTP_CODE)" [ "$HTTP_CODE" = 201 ]
check "web's readiness is tcp:80" [ "$(field '.items[0].ready')" = tcp:80 ]
check "web runs (tcp probe)" wait_for 60 inst_state_is web running
check "web's boot time still comes from its status channel" [ "$(inst_field web .boot_ms)" != null ]
check "web becomes healthy" wait_for 30 eval '[ "$(inst_field web .health.status)" = healthy ]'
check "web's last check passed ($(inst_field web .health.last_result))" \
    grep -q 'http:80/healthz: HTTP 200' <<<"$(inst_field web .health.last_result)"
check "shoal ps shows 'running (healthy)'" eval 'shoal ps | grep -E "^[0-9a-f]+ +web +.*running \(healthy\)"'
check "shoal inspect has the health object" eval '[ "$(shoal inspect web | jq -r .health.probe)" = http:80/healthz ]'

# --- an http health probe that fails; restart never: it keeps running
create '{"image":"httpd","name":"sick","args":["80"],"health":{"probe":"http:81/","interval_s":1,"timeout_s":1,"retries":2}}'
SICK=$(field '.items[0].id')
check "sick runs" wait_for 60 inst_state_is sick running
check "sick becomes unhealthy" wait_for 30 eval '[ "$(inst_field sick .health.status)" = unhealthy ]'
check "sick's failures count ($(inst_field sick .health.failures))" [ "$(inst_field sick .health.failures)" -ge 2 ]
check "sick keeps running under restart never" inst_state_is sick running
check "sick was not restarted" [ "$(inst_field sick .restarts)" = 0 ]
check "shoal ps shows 'running (unhealthy)'" eval 'shoal ps | grep -E "^[0-9a-f]+ +sick +.*running \(unhealthy\)"'
EVENTS=$(ns_curl -sS -m 3 -H "Authorization: Bearer $E2E_TOKEN" "http://127.0.0.1:$E2E_PORT/v1/events?since=0" || true)
check "an instance.unhealthy event for sick" grep -q "\"type\":\"instance.unhealthy\",\"instance\":\"$SICK\"" <<<"$EVENTS"
check "an instance.healthy event for web" grep -q '"type":"instance.healthy"' <<<"$EVENTS"
api GET /metrics
check "/metrics counts unhealthy instances" grep -q '^shoal_instance_health{health="unhealthy"} [1-9]' <<<"$BODY"
check "/metrics counts probe checks" grep -q '^shoal_probe_checks_total [1-9]' <<<"$BODY"

# --- failing health under on-failure: the run ends crashed, restarted
create '{"image":"httpd","name":"flaky","args":["80"],"restart":"on-failure","health":{"probe":"tcp:81","interval_s":1,"timeout_s":1,"retries":2}}'
check "flaky is restarted for being unhealthy" wait_for 60 eval '[ "$(inst_field flaky .restarts)" -ge 1 ]'
api GET /v1/instances/flaky
check "flaky's first run ended crashed, reason unhealthy ($(field '.runs[0].reason'))" \
    eval '[ "$(field ".runs[0].outcome")" = crashed ] && grep -q "^unhealthy: " <<<"$(field ".runs[0].reason")"'
api POST /v1/instances/flaky/stop
check "stop flaky (HTTP $HTTP_CODE)" [ "$HTTP_CODE" = 200 ]

# --- across a shoald restart: probes kept in the row, health resumes
e2e_stop_daemon
e2e_start_daemon "$SHOALD" || exit 1
check "web still has its probes" eval '[ "$(inst_field web .ready)" = tcp:80 ] && [ "$(inst_field web .health.probe)" = http:80/healthz ]'
check "web healthy again after the restart" wait_for 30 eval '[ "$(inst_field web .health.status)" = healthy ]'
check "sick unhealthy again after the restart" wait_for 30 eval '[ "$(inst_field sick .health.status)" = unhealthy ]'

e2e_finish

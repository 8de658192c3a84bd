#!/bin/bash
# The coordinator's REST API with curl against real daemons: every route's
# success and its errors (404, 405 with Allow, 400 naming the field, 401
# without the token, 409 for a conflicting run, 413 before the body is
# read), classify on a JPEG, the plan's and the cluster's shape, the
# dashboard's files without path traversal, and /metrics checked by
# promtool.
. "${top_srcdir:-.}/tests/cluster-lib.sh"
need_cluster
need_tool promtool prometheus
need_tool /usr/share/javascript/chart.js libjs-chart.js
TOKEN=api-$$
cluster "$MODEL32" "--token $TOKEN" "--token $TOKEN --web-root $top_srcdir/web --max-body-bytes 200000" || exit 1
C=127.0.0.1:$PORT_c
AUTH=(-H "Authorization: Bearer $TOKEN")
# capi METHOD PATH [BODY]: api with the token.
capi() {
	local data=()
	[ $# -ge 3 ] && data=(--data-binary "$3")
	STATUS=$(curl -s -o "$TMP/reply" -D "$TMP/headers" -w '%{http_code}' --max-time 60 -X "$1" \
		"${AUTH[@]}" -H 'Content-Type: application/json' "${data[@]}" "http://$C$2")
}
is_error() { # STATUS: the reply is {"error", "detail"} with that status
	[ "$STATUS" = "$1" ] && [ -n "$(jget .error)" ] && [ -n "$(jget .detail)" ]
}
is_error_naming() { # STATUS PATTERN: that error, its detail matching PATTERN
	is_error "$1" && jget .detail | grep -q -- "$2"
}
served() { # STATUS PATTERN: that status, and a header in $TMP/headers matching
	[ "$STATUS" = "$1" ] && grep -qi -- "$2" "$TMP/headers"
}

api GET $C /api/v1/health
check "GET /api/v1/health: 200, version $(jget .version)" [ "$STATUS" = 200 -a "$(jget .status)" = ok ]

# The cluster: both stages up, with their block times (measured at start).
for i in $(seq 100); do
	api GET $C /api/v1/cluster
	[ "$(jget .stages[1].block_ms[18])" != null ] && [ "$(jget .stages[0].block_ms[18])" != null ] && break
	sleep 0.1
done
check "GET /api/v1/cluster: 2 stages, 19 blocks" [ "$STATUS" = 200 -a "$(jget .blocks)" = 19 -a "$(jget '.stages[2]')" = "" ]
check "cluster: stage fields" [ "$(jget .stages[0].address)" = "127.0.0.1:$PORT_s1" -a \
	"$(jget .stages[0].state)" = up -a "$(jget .stages[0].first)" = 0 -a \
	"$(jget .stages[1].last)" = 19 -a "$(jget .stages[0].last)" = "$(jget .stages[1].first)" ]
check "cluster: last contact and measured block times" [ "$(jget .stages[0].last_contact_ms)" != null -a \
	"$(jget .stages[1].block_ms[0])" != null -a "$(jget .model.sha256)" = "$(sha256sum "$MODEL32" | cut -d' ' -f1)" ]

# The plan: every split of 19 blocks over 2 stages, and the best.
for i in $(seq 100); do
	api GET $C '/api/v1/plan?batch_size=8&wire=f32'
	[ "$STATUS" = 200 ] && break
	sleep 0.1
done
check "GET /api/v1/plan: 200" [ "$STATUS" = 200 ]
check "plan: 18 candidates, 19 blocks with 2 times each" [ "$(jget .candidates[17].split[0])" = 18 -a \
	"$(jget '.candidates[18]')" = "" -a "$(jget .blocks[18].ms[1])" != "" -a "$(jget .stages)" = 2 ]
best=$(jget .best.split[0])
check "plan: the best split ($best, $(jget .best.predicted_img_s) img/s) is the fastest candidate" \
	awk -v b="$(jget .best.predicted_img_s)" -v all="$(for k in $(seq 0 17); do jget .candidates[$k].predicted_img_s; done | sort -g | tail -1)" \
	'BEGIN { exit !(b == all) }'
f32b=$(jget .blocks[7].out_bytes)
api GET $C '/api/v1/plan?batch_size=8&wire=i8'
i8b=$(jget .blocks[7].out_bytes)
check "plan with wire i8: frames at cut 8 of a quarter of f32's values and 8 bytes ($i8b vs $f32b)" \
	[ "$STATUS" = 200 -a "$(jget .wire)" = i8 -a "$i8b" = $(((f32b - 48) / 4 + 56)) ]
api GET $C '/api/v1/plan?batch_size=0'
check "plan with batch_size 0: 400 naming it" [ "$STATUS" = 400 -a "$(jget .detail | grep -c batch_size)" = 1 ]
api GET $C '/api/v1/plan?wire=f64'
check "plan with wire f64: 400 naming it" [ "$STATUS" = 400 -a "$(jget .detail | grep -c wire)" = 1 ]

# Routing errors.
api GET $C /api/v1/nothing
check "unknown path: 404 with error and detail" is_error 404
STATUS=$(curl -s -o "$TMP/reply" -D "$TMP/headers" -w '%{http_code}' -X DELETE "${AUTH[@]}" "http://$C/api/v1/cluster")
check "wrong method: 405 with an Allow header ($(grep -i '^allow:' "$TMP/headers" | tr -d '\r'))" \
	eval '[ "$STATUS" = 405 ] && grep -qi "^allow: GET" "$TMP/headers" && is_error 405'
STATUS=$(curl -s -o "$TMP/reply" -D "$TMP/headers" -w '%{http_code}' -X POST "${AUTH[@]}" -d '{}' "http://$C/api/v1/runs/1")
check "POST /api/v1/runs/1: 405, Allow lists GET and DELETE" \
	eval '[ "$STATUS" = 405 ] && grep -i "^allow:" "$TMP/headers" | grep -q DELETE'

# The token: control routes need it, reads do not.
api POST $C /api/v1/runs "{\"dataset\": \"$DATA\", \"samples\": 8}"
check "POST /api/v1/runs without the token: 401" is_error 401
api PUT $C /api/v1/split '{"split": [5]}'
check "PUT /api/v1/split without the token: 401" is_error 401
STATUS=$(curl -s -o "$TMP/reply" -w '%{http_code}' -H "Authorization: Bearer x$TOKEN" -X DELETE "http://$C/api/v1/runs/1")
check "DELETE with a wrong token: 401" is_error 401
STATUS=$(curl -s -o "$TMP/reply" -w '%{http_code}' -H "Authorization: Bearer $TOKEN" -H 'Content-Type: image/jpeg' --data-binary @/dev/null "http://$C/api/v1/classify")
check "the right token passes (classify of an empty body: 400)" is_error 400

# Bodies: malformed JSON and wrong types are 400 naming the field.
capi POST /api/v1/runs '{"dataset": '
check "malformed JSON: 400" is_error 400
capi POST /api/v1/runs '{"dataset": 7}'
check "dataset of the wrong type: 400 naming it ($(jget .detail))" is_error_naming 400 dataset
capi POST /api/v1/runs "{\"dataset\": \"$DATA\", \"batch_size\": \"8\"}"
check "batch_size as a string: 400 naming it" is_error_naming 400 batch_size
capi POST /api/v1/runs "{\"dataset\": \"$DATA\", \"colour\": 1}"
check "an unknown key: 400 naming it" is_error_naming 400 colour
capi PUT /api/v1/split '{"split": [19]}'
check "split out of range: 400 ($(jget .detail))" is_error 400
capi PUT /api/v1/split '{"split": [9, 4]}'
check "split not increasing: 400 ($(jget .detail))" is_error 400
capi PUT /api/v1/split '{"split": [3, 6, 9]}'
check "split with more ranges than stages: 400 ($(jget .detail))" is_error 400
capi PUT /api/v1/split '{"split": ["4"]}'
check "split of strings: 400 naming split[0]" is_error_naming 400 'split\[0\]'
capi PUT /api/v1/split '{"split": [6]}'
check "PUT /api/v1/split between runs: 200, the next run's split" [ "$STATUS" = 200 -a "$(jget .split[0])" = 6 ]

# Runs: create, get, list, a conflicting one, cancel.
capi POST /api/v1/runs "{\"dataset\": \"$DATA\", \"samples\": 4000, \"batch_size\": 2, \"mode\": \"sequential\"}"
id=$(jget .id)
check "POST /api/v1/runs: 201 with the default split [6]" \
	eval '[ "$(jget .split[0])" = 6 ] && served 201 "^location: /api/v1/runs/$id"'
capi POST /api/v1/runs "{\"dataset\": \"$DATA\", \"samples\": 8}"
check "a second run while one is going: 409" is_error 409
capi POST /api/v1/runs "{\"dataset\": \"$DATA\", \"samples\": 8, \"queue\": true}"
qid=$(jget .id)
check "... unless it asks to queue: 201 queued" [ "$STATUS" = 201 -a "$(jget .state)" = queued ]
api GET $C /api/v1/runs/$id
check "GET /api/v1/runs/$id: running" [ "$STATUS" = 200 -a "$(jget .state)" = running -a "$(jget .epochs[0].split[0])" = 6 ]
api GET $C /api/v1/runs
check "GET /api/v1/runs lists both" [ "$STATUS" = 200 -a "$(jget .runs[0].id)" = $id -a "$(jget .runs[1].id)" = $qid ]
api GET $C /api/v1/runs/999
check "an unknown run: 404" is_error 404
capi GET /api/v1/runs/$id/logits
check "logits of a running run: 409" is_error 409
capi DELETE /api/v1/runs/$id
check "DELETE /api/v1/runs/$id: cancelled" [ "$STATUS" = 200 -a "$(jget .state)" = cancelled ]
for i in $(seq 300); do
	api GET $C /api/v1/runs/$qid
	[ "$(jget .state)" = done ] && break
	sleep 0.1
done
check "the queued run then runs to the end" [ "$(jget .state)" = done -a "$(jget .images_done)" = 8 ]
STATUS=$(curl -s -o "$TMP/logits" -w '%{http_code}' "http://$C/api/v1/runs/$qid/logits")
check "GET /api/v1/runs/$qid/logits: 8 x 10 floats" [ "$STATUS" = 200 -a "$(stat -c %s "$TMP/logits")" = 320 ]

# Classify: a JPEG from the sample set, or one of the fuzz seeds.
jpeg=$(ls "$shared"/data/cifar10/jpeg-sample/*/*.jpg 2>/dev/null | head -1)
[ -n "$jpeg" ] || jpeg=$top_srcdir/tests/fuzz/corpus/jpeg/rgb32.jpg
STATUS=$(curl -s -o "$TMP/reply" -w '%{http_code}' "${AUTH[@]}" -H 'Content-Type: image/jpeg' \
	--data-binary @"$jpeg" "http://$C/api/v1/classify?k=3")
check "POST /api/v1/classify: top 3 ($(jget .top[0].class) $(jget .top[0].score))" [ "$STATUS" = 200 -a \
	-n "$(jget .top[2].class)" -a "$(jget '.top[3]')" = "" -a "$(jget .logits[9])" != "" ]
one=$(jget .logits)
# Classifications are computed a block per loop turn, in order: 24 at once
# are each answered, 200 with the same logits or 503 past the 16 that may
# wait; then 8 clients that give up at once leave nothing behind.
pids=()
for i in $(seq 24); do
	curl -s -o "$TMP/cls.$i" -w '%{http_code}' -D "$TMP/cls.$i.h" "${AUTH[@]}" \
		-H 'Content-Type: image/jpeg' --data-binary @"$jpeg" "http://$C/api/v1/classify?k=3" >"$TMP/cls.$i.code" &
	pids+=($!)
done
wait "${pids[@]}"
n200=0 n503=0 bad=0 waited=0
for i in $(seq 24); do
	case $(cat "$TMP/cls.$i.code") in
	200)
		[ "$($W "$JGET" .logits <"$TMP/cls.$i")" = "$one" ] && n200=$((n200 + 1)) || bad=$((bad + 1))
		awk -v w="$($W "$JGET" .wait_ms <"$TMP/cls.$i")" 'BEGIN {exit !(w > 0)}' && waited=$((waited + 1))
		;;
	503) grep -qi '^Retry-After' "$TMP/cls.$i.h" && n503=$((n503 + 1)) || bad=$((bad + 1)) ;;
	*) bad=$((bad + 1)) ;;
	esac
done
check "24 classifications at once: $n200 with the same logits ($waited waited their turn), $n503 busy (503, Retry-After), $bad otherwise" \
	[ $bad = 0 -a $n200 -ge 16 -a $((n200 + n503)) = 24 -a $waited -ge 1 ]
pids=()
for i in $(seq 8); do
	curl -s -o /dev/null --max-time 0.01 "${AUTH[@]}" -H 'Content-Type: image/jpeg' --data-binary @"$jpeg" "http://$C/api/v1/classify" &
	pids+=($!)
done
wait "${pids[@]}"
STATUS=$(curl -s -o "$TMP/reply" -w '%{http_code}' "${AUTH[@]}" -H 'Content-Type: image/jpeg' --data-binary @"$jpeg" "http://$C/api/v1/classify?k=3")
check "after 8 clients gave up waiting, a classification still gets the same logits ($STATUS)" \
	[ "$STATUS" = 200 -a "$(jget .logits)" = "$one" ]
STATUS=$(curl -s -o "$TMP/reply" -w '%{http_code}' "${AUTH[@]}" -H 'Content-Type: image/jpeg' --data-binary @"$jpeg" "http://$C/api/v1/classify?k=0")
check "classify with k=0: 400 naming k" is_error_naming 400 '^k '
STATUS=$(curl -s -o "$TMP/reply" -w '%{http_code}' "${AUTH[@]}" -H 'Content-Type: image/jpeg' --data-binary 'not a jpeg' "http://$C/api/v1/classify")
check "classify of something else: 400 naming the body" is_error_naming 400 body

# 413: a body over max_body_bytes is refused from its Content-Length,
# before any of it is sent (the 1 GiB never follows).
exec 3<>/dev/tcp/127.0.0.1/$PORT_c
printf 'POST /api/v1/classify HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: image/jpeg\r\nAuthorization: Bearer %s\r\nContent-Length: 1073741824\r\n\r\n' "$TOKEN" >&3
reply=$(timeout 5 head -1 <&3 | tr -d '\r')
exec 3<&-
check "a 1 GiB body is answered 413 before it is sent ($reply)" [ "${reply#* }" != "$reply" -a "$(echo "$reply" | cut -d' ' -f2)" = 413 ]
head -c 300000 /dev/zero >"$TMP/big"
STATUS=$(curl -s -o /dev/null -w '%{http_code}' "${AUTH[@]}" -H 'Content-Type: image/jpeg' --data-binary @"$TMP/big" "http://$C/api/v1/classify")
check "a body over --max-body-bytes: 413" [ "$STATUS" = 413 ]

# The dashboard's files.
STATUS=$(curl -s -o "$TMP/index" -D "$TMP/headers" -w '%{http_code}' "http://$C/")
check "GET /: the dashboard's index.html" \
	eval 'served 200 "^content-type: text/html" && cmp -s "$TMP/index" "$top_srcdir/web/index.html"'
STATUS=$(curl -s -o /dev/null -D "$TMP/headers" -w '%{http_code}' "http://$C/main.mjs")
check "GET /main.mjs: JavaScript" served 200 '^content-type: text/javascript'
bad=""
for p in /../README.md /%2e%2e/README.md /.hidden /web/../../README.md '/%2e%2e%2fREADME.md' /nothing.js /main.mjs/ '/a%00b'; do
	STATUS=$(curl -s --path-as-is -o "$TMP/reply" -w '%{http_code}' "http://$C$p")
	[ "$STATUS" = 404 ] || bad="$bad $p:$STATUS"
done
check "no traversal or missing file is served: 404${bad:+ (got$bad)}" [ -z "$bad" ]
STATUS=$(curl -s -o /dev/null -D "$TMP/headers" -w '%{http_code}' "http://$C/chart.js")
check "GET /chart.js: Debian's Chart.js" served 200 '^content-type: text/javascript'

# Metrics.
STATUS=$(curl -s -o "$TMP/metrics" -D "$TMP/headers" -w '%{http_code}' "http://$C/metrics")
check "GET /metrics: Prometheus text 0.0.4" served 200 '^content-type: text/plain; version=0.0.4'
api GET $C /api/v1/runs
images=$(($(jget .runs[0].images_done) + $(jget .runs[1].images_done)))
batches=$(($(jget .runs[0].batches_done) + $(jget .runs[1].batches_done)))
check "metrics: the runs' $images images" grep -q "^pipenet_images_total $images\$" "$TMP/metrics"
check "metrics: a batch latency histogram of $batches batches" grep -q "^pipenet_batch_latency_seconds_count $batches\$" "$TMP/metrics"
check "metrics: errors by kind" grep -q '^pipenet_errors_total{kind="http_4xx"} [1-9]' "$TMP/metrics"
check "metrics: bytes per hop" grep -q "^pipenet_hop_bytes_total{from=\"coordinator\",to=\"127.0.0.1:$PORT_s1\"} [1-9]" "$TMP/metrics"
promtool check metrics <"$TMP/metrics" >"$TMP/promtool" 2>&1
ok $? "promtool check metrics passes"
sed 's/^/# /' "$TMP/promtool"

# A run's history stays readable after it ends, in bounded memory: 600
# batches of one image leave at most 512 rows (every second batch once
# full) plus the last one.
capi POST /api/v1/runs "{\"dataset\": \"$DATA\", \"samples\": 600, \"batch_size\": 1}"
hid=$(jget .id)
for i in $(seq 600); do
	api GET $C /api/v1/runs/$hid
	[ "$(jget .state)" = done ] && break
	sleep 0.1
done
acc=$(jget .accuracy)
api GET $C /api/v1/runs/$hid/history
rows=$(jget .batches.images_done | tr -d '[] ' | tr , '\n' | grep -c .)
lat=$(jget .batches.latency_ms | tr -d '[] ' | tr , '\n' | grep -c '^[0-9][0-9.e+-]*$')
check "GET /api/v1/runs/$hid/history: $rows rows for 600 batches, kept every $(jget .batches.kept_every)" \
	[ "$STATUS" = 200 -a "$rows" -gt 256 -a "$rows" -le 513 -a "$(jget .batches.kept_every)" = 2 -a "$lat" = "$rows" ]
last=$(jget .batches.accuracy[$((rows - 1))])
check "history: the last row is the run's end (600 images, accuracy $last, the run's $acc)" \
	eval '[ "$(jget .batches.images_done[$((rows - 1))])" = 600 ] && awk -v a="$last" -v b="$acc" "BEGIN { exit !(a - b < 1e-9 && b - a < 1e-9) }"'
count() { jget "$1" | tr -d '[] ' | tr , '\n' | grep -c .; }
check "history: a point a second ($(count .seconds.t_s)), each with its figures, and the run's start time" \
	[ "$(jget .start_time)" != null -a "$(count .seconds.img_s_now)" = "$(count .seconds.t_s)" -a \
	"$(count .seconds.img_s_overall)" = "$(count .seconds.t_s)" ]
api GET $C /api/v1/runs/999/history
check "the history of an unknown run: 404" is_error 404

# A stage's link probe (the coordinator's POST /v1/probe): polls with the
# same id get the kept result, a new id measures again even with the same
# sizes (a link that changed twice must not report its old figure).
S1=127.0.0.1:$PORT_s1
sprobe() { # ID: POST /v1/probe to stage 2 with that id
	STATUS=$(curl -s -o "$TMP/reply" -w '%{http_code}' --max-time 60 -X POST "${AUTH[@]}" \
		-H 'Content-Type: application/json' \
		--data-binary "{\"to\": \"127.0.0.1:$PORT_s2\", \"bytes\": [1000, 300000], \"reps\": 2, \"id\": $1}" \
		"http://$S1/v1/probe")
}
for i in $(seq 200); do
	sprobe 7
	[ "$STATUS" != 202 ] && break
	sleep 0.05
done
first=$(jget .ms)
check "POST /v1/probe id 7: measured ($STATUS, $first ms)" [ "$STATUS" = 200 -a "$(jget .state)" = done ]
sprobe 7
check "the same id again: the kept result" [ "$STATUS" = 200 -a "$(jget .ms)" = "$first" ]
sprobe 8
check "a new id with the same sizes: measured again (202 while probing, $STATUS)" [ "$STATUS" = 202 ]
sprobe -1
check "a negative id: 400 naming it" is_error_naming 400 id

api GET $C /api/v1/health
check "the coordinator still answers" [ "$STATUS" = 200 ]
tap_end

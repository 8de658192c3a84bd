#!/bin/bash
# The daemons stay responsive while they compute (health polled every
# 10 ms during a run), control routes honour the cluster token, a stage
# with another model is refused naming both hashes, a dead stage
# fails the run instead of hanging it, and SIGTERM stops every process
# with status 0.
. "${top_srcdir:-.}/tests/cluster-lib.sh"
need_cluster
TOKEN=s3cret
cluster "$MODEL224" "--token $TOKEN --retry-s 3" "--token $TOKEN --retry-s 3 --stall-s 10" || exit 1
C=127.0.0.1:$PORT_c
AUTH=(-H "Authorization: Bearer $TOKEN")
q="{\"dataset\": \"$DATA\", \"samples\": $([ $SLOW = 1 ] && echo 48 || echo 480), \"split\": [8]}"

STATUS=$(curl -s -o "$TMP/reply" -w '%{http_code}' --max-time 30 -H 'Content-Type: application/json' -d "$q" "http://$C/api/v1/runs")
check "POST /api/v1/runs without the token: 401" [ "$STATUS" = 401 ]
STATUS=$(curl -s -o "$TMP/reply" -w '%{http_code}' --max-time 30 -H 'Authorization: Bearer nope' \
	-X PUT -d '{}' "http://127.0.0.1:$PORT_s1/v1/stage")
check "PUT /v1/stage with a wrong token: 401" [ "$STATUS" = 401 ]
api GET $C /api/v1/health
check "health needs no token" [ "$STATUS" = 200 -a "$(jget .status)" = ok ]

# Start a run, and poll health on the coordinator and stage 1 meanwhile.
STATUS=$(curl -s -o "$TMP/reply" -w '%{http_code}' --max-time 30 "${AUTH[@]}" -H 'Content-Type: application/json' -d "$q" \
	"http://$C/api/v1/runs")
check "POST /api/v1/runs with the token: 201" [ "$STATUS" = 201 ]
id=$(jget .id)
# One compute step is a block of one image (well under 10 ms); the bound
# leaves room for a loaded CI machine or a sanitizer build.
max_ms=${PN_HEALTH_MAX_MS:-$([ $SLOW = 1 ] && echo 5000 || echo 500)}
worst_c=0
worst_s=0
polls=0
slow=0
for i in $(seq 3000); do
	for target in c s1; do
		eval "port=\$PORT_$target"
		t=$(curl -s -o /dev/null -w '%{time_total}' --max-time 5 "http://127.0.0.1:$port/api/v1/health")
		ms=$(awk -v t="$t" 'BEGIN { printf "%d", t * 1000 }')
		polls=$((polls + 1))
		[ "$ms" -gt 100 ] && slow=$((slow + 1))
		if [ $target = c ]; then
			[ "$ms" -gt $worst_c ] && worst_c=$ms
		else
			[ "$ms" -gt $worst_s ] && worst_s=$ms
		fi
	done
	api GET $C /api/v1/runs/$id
	state=$(jget .state)
	[ "$state" = running ] || break
	sleep 0.01
done
diag "$polls health polls during the run: worst ${worst_c} ms (coordinator), ${worst_s} ms (stage 1); $slow over 100 ms"
check "the run with the token finishes ($state)" [ "$state" = done ]
diag "$(jget .throughput_img_s) img/s; stage compute ms/batch: $(jget .stages[0].compute_ms_per_batch), $(jget .stages[1].compute_ms_per_batch); longest compute turn: $(jget .stages[0].max_step_ms), $(jget .stages[1].max_step_ms) ms"
check "health answers within $max_ms ms while the cluster computes (worst $worst_c / $worst_s ms)" \
	[ $worst_c -lt $max_ms -a $worst_s -lt $max_ms ]

# Frames need the token too: without it, or with a wrong one, a frame for
# the stage's plan is refused 401 before it is read (nothing counted, nothing
# computed); with it the same frame gets past the token to the stage's own
# checks (202, or 409 once the run's plan is gone).
$W "$top_builddir/tests/make-frame" "$id" 999 0 u8 8 32 32 3 >"$TMP/frame.bin"
stage_counts() {
	curl -s --max-time 10 "${AUTH[@]}" "http://127.0.0.1:$PORT_s1/v1/stage" >"$TMP/reply"
	echo "$(jget .frames_in) $(jget .rejected_bad) $(jget .compute_ns)"
}
frame_to_s1() {
	curl -s -o "$TMP/reply" -w '%{http_code}' --max-time 30 "$@" \
		-H 'Content-Type: application/octet-stream' --data-binary "@$TMP/frame.bin" \
		"http://127.0.0.1:$PORT_s1/v1/frames"
}
before=$(stage_counts)
no_token=$(frame_to_s1)
wrong_token=$(frame_to_s1 -H "Authorization: Bearer not-$TOKEN")
after=$(stage_counts)
check "a frame without the token: $no_token; with a wrong one: $wrong_token; counters (frames_in rejected_bad compute_ns) $before, then $after" \
	[ "$no_token" = 401 -a "$wrong_token" = 401 -a "$before" = "$after" ]
with_token=$(frame_to_s1 "${AUTH[@]}")
check "the same frame with the token gets to the stage: $with_token $(head -c 100 "$TMP/reply")" \
	[ "$with_token" = 202 -o "$with_token" = 409 ]

# A stage that loads another model.
start odd --role stage --model "$MODEL32" --token $TOKEN || exit 1
start c2 --role coordinator --model "$MODEL224" --token $TOKEN \
	--stages "127.0.0.1:$PORT_s1,127.0.0.1:$PORT_odd" || exit 1
C2=127.0.0.1:$PORT_c2
STATUS=$(curl -s -o "$TMP/reply" -w '%{http_code}' --max-time 30 "${AUTH[@]}" -H 'Content-Type: application/json' -d "$q" \
	"http://$C2/api/v1/runs")
wait_run $C2 1 60
diag "run on a cluster with a mismatched stage: $(jget .state), $(jget .images_done) images, stages $(jget .epochs[-1].stages), note: $(jget .split_note) $(jget .epochs[-1].reason)"
check "a stage with another model is left out: the run completes on the other" \
	[ "$(jget .state)" = done -a "$(jget .images_done)" = "$(jget .samples)" -a "$(jget .epochs[-1].stages)" = "[\"127.0.0.1:$PORT_s1\"]" ]
api GET $C2 /api/v1/cluster
err=$(jget .stages[1].reason)
diag "$err"
sha224=$(sha256sum "$MODEL224" | cut -d' ' -f1)
sha32=$(sha256sum "$MODEL32" | cut -d' ' -f1)
check "the cluster shows it refused, naming both hashes" \
	[ "$(jget .stages[1].state)" = refused -a "${err#*$sha224}" != "$err" -a "${err#*$sha32}" != "$err" ]

# Stage 2 dies in the middle of a run: the run goes on without it.
curl -s -o "$TMP/reply" --max-time 30 "${AUTH[@]}" -H 'Content-Type: application/json' \
	-d "{\"dataset\": \"$DATA\", \"samples\": 2000, \"split\": [8]}" "http://$C/api/v1/runs"
id=$(jget .id)
# Killed once the run is under way (a fixed sleep let a fast machine
# finish all of it before the kill).
wait_images $C $id 80
{
	kill -KILL "$PID_s2"
	wait "$PID_s2"
} 2>/dev/null
for i in $(seq 1800); do
	api GET $C /api/v1/runs/$id
	[ "$(jget .state)" = running ] || break
	sleep 0.1
done
diag "$(jget .state) $(jget .error) $(jget .recovery)"
check "a run whose stage died completes on the stage left, every image once" \
	[ "$(jget .state)" = done -a "$(jget .images_done)" = 2000 -a "$(jget .recovery.failovers)" -ge 1 ]
api GET $C /api/v1/health
check "the coordinator still answers" [ "$STATUS" = 200 ]

# SIGTERM in the middle of a run: everyone exits 0.
start s3 --role stage --model "$MODEL224" --token $TOKEN || exit 1
start c3 --role coordinator --model "$MODEL224" --token $TOKEN \
	--stages "127.0.0.1:$PORT_s1,127.0.0.1:$PORT_s3" || exit 1
curl -s -o "$TMP/reply" --max-time 30 "${AUTH[@]}" -H 'Content-Type: application/json' \
	-d "{\"dataset\": \"$DATA\", \"samples\": 2000, \"split\": [8]}" "http://127.0.0.1:$PORT_c3/api/v1/runs"
sleep 1
codes=""
for n in c3 s1 s3; do
	eval "pid=\$PID_$n"
	kill -TERM "$pid"
done
for n in c3 s1 s3; do
	eval "pid=\$PID_$n"
	timeout 10 tail --pid="$pid" -f /dev/null
	wait "$pid"
	codes="$codes $?"
done
check "SIGTERM during a run: every process exits 0 (status$codes)" [ "$codes" = " 0 0 0" ]
grep -q "stopped" "$TMP/c3.log"
check "the coordinator logged its stop" [ $? = 0 ]
tap_end

#!/bin/bash
# Lost and returning stages, with real processes on loopback: frames
# lost between healthy stages (sent again after the batch deadline), a stage
# killed mid-run (and one restarted at once), a stage stopped past every deadline and continued, a
# stage restarted with another model, both stages killed (the
# coordinator computes alone), and a delaying, jittering TCP relay between
# the stages. Every run completes with every image counted once and
# logits equal to `pipenet classify` on the same records, bit for bit.
. "${top_srcdir:-.}/tests/cluster-lib.sh"
need_cluster
RELAY=$top_builddir/tests/tcp-relay
N=4000 # long enough to lose a stage in the middle
if [ $SLOW = 1 ]; then N=1200; fi
cluster "$MODEL32" "--retry-s 5" "--stall-s 60 --batch-deadline-s 4" || exit 1
C=127.0.0.1:$PORT_c
BODY="{\"dataset\": \"$DATA\", \"samples\": $N, \"split\": [8]}"

$W "$PIPENET" classify --model "$MODEL32" --data "$DATA" --limit $N \
	--logits "$TMP/ref.f32" >/dev/null 2>&1
check "pipenet classify wrote the reference logits" test -s "$TMP/ref.f32"

# start_run BODY: posts a run; RUN_ID.
start_run() {
	api POST $C /api/v1/runs "$1"
	RUN_ID=$(jget .id)
	[ "$STATUS" = 201 ]
}
# judge WHAT: the run completed, every image once, logits as classify.
judge() {
	wait_run $C $RUN_ID 300
	diag "$1: $(jget .state) $(jget .error), $(jget .images_done) images, duplicates $(jget .duplicates), recovery $(jget .recovery)"
	diag "epochs: $(for e in $(seq 0 $(($(jget .epochs\|length) - 1))); do
		printf '%s on %s (%s); ' "$(jget .epochs[$e].split)" "$(jget .epochs[$e].stages)" "$(jget .epochs[$e].reason)"
	done)"
	local state=$(jget .state) images=$(jget .images_done) batches=$(jget .batches_done)
	logits $C "$RUN_ID" "$TMP/run$RUN_ID.f32"
	check "$1: the run completes with all $N images, each counted once" \
		[ "$state" = done -a "$images" = $N -a "$batches" = $(((N + 7) / 8)) ]
	check "$1: logits equal pipenet classify bit for bit" cmp -s "$TMP/ref.f32" "$TMP/run$RUN_ID.f32"
	api GET $C /api/v1/runs/$RUN_ID
}
# restart NAME [MODEL]: the stage again, on its old port.
restart() {
	local port
	eval "port=\$PORT_$1"
	start "$1" --role stage --model "${2:-$MODEL32}" --retry-s 5 --listen "127.0.0.1:$port"
}
stage_state() { # INDEX: the coordinator's view of stage INDEX
	api GET $C /api/v1/cluster
	jget .stages[$1].state
}
wait_state() { # INDEX STATE SECONDS
	local i
	for i in $(seq $(($3 * 10))); do
		[ "$(stage_state "$1")" = "$2" ] && return 0
		sleep 0.1
	done
	return 1
}

# 0. Two frames vanish between the stages while every stage stays up:
# their batches miss the deadline and are sent again.
api PUT 127.0.0.1:$PORT_s1 /v1/debug '{"drop": 2}'
start_run "$BODY"
judge "two frames lost on the way"
check "the two batches were sent again after their deadline, nothing re-planned" \
	[ "$(jget .recovery.resent_batches)" = 2 -a "$(jget .recovery.failovers)" = 0 ]

# 1. SIGKILL stage 2 a fifth of the way in.
start_run "$BODY"
wait_images $C $RUN_ID $((N / 5))
t0=$(date +%s.%N)
kill -KILL "$PID_s2"
wait "$PID_s2" 2>/dev/null
wait_state 1 down 20
t1=$(date +%s.%N)
ok $? "a killed stage is marked down within $(awk -v a=$t0 -v b=$t1 'BEGIN { printf "%.1f", b - a }') s"
judge "stage 2 killed"
check "the run re-planned once, onto stage 1 alone" \
	[ "$(jget .recovery.failovers)" = 1 -a "$(jget .epochs[-1].stages)" = "[\"127.0.0.1:$PORT_s1\"]" ]

# 2. The killed stage comes back with the same model: up, and used again.
restart s2 || exit 1
wait_state 1 up 20
check "the restarted stage is up again" [ $? = 0 ]
start_run "$BODY"
judge "after the restart"
check "a new run uses both stages again" \
	[ "$(jget .epochs[0].stages)" = "[\"127.0.0.1:$PORT_s1\",\"127.0.0.1:$PORT_s2\"]" ]

# 2b. Stage 2 is killed and restarted at once, faster than two health
# checks: the coordinator sees its uptime start again (it has lost its
# plan and queue), re-plans without it, then re-admits it.
start_run "$BODY"
wait_images $C $RUN_ID $((N / 5))
kill -KILL "$PID_s2"
wait "$PID_s2" 2>/dev/null
restart s2 || exit 1
judge "stage 2 restarted at once"
check "the restart was noticed and the run re-planned" [ "$(jget .recovery.failovers)" -ge 1 ]

# 3. SIGSTOP stage 1 past the health deadline, then SIGCONT: its work is
# sent again, its late frames are stale, and it is re-admitted while the
# run goes on (both stages compute 3x slower here, for a run long enough).
for p in $PORT_s1 $PORT_s2; do api PUT 127.0.0.1:$p /v1/debug '{"slowdown": 3}'; done
start_run "$BODY"
wait_images $C $RUN_ID $((N / 10))
kill -STOP "$PID_s1"
wait_state 0 down 20
ok $? "a stopped stage is marked down"
kill -CONT "$PID_s1"
wait_state 0 up 20
ok $? "a continued stage answers again"
judge "stage 1 stopped and continued"
check "the run went on without stage 1, then re-admitted it" \
	[ "$(jget .recovery.failovers)" -ge 1 -a "$(jget .recovery.readmits)" -ge 1 -a \
	"$(jget .epochs[-1].stages)" = "[\"127.0.0.1:$PORT_s1\",\"127.0.0.1:$PORT_s2\"]" ]
for p in $PORT_s1 $PORT_s2; do api PUT 127.0.0.1:$p /v1/debug '{"slowdown": 1}'; done

# 4. Stage 2 restarts mid-run with another model: refused, not used.
start_run "$BODY"
wait_images $C $RUN_ID $((N / 5))
kill -KILL "$PID_s2"
wait "$PID_s2" 2>/dev/null
restart s2 "$MODEL224" || exit 1
wait_state 1 refused 20
ok $? "a stage restarted with another model is refused"
api GET $C /api/v1/cluster
why=$(jget .stages[1].reason)
diag "$why"
check "the refusal names the model mismatch" [ "${why#*model mismatch}" != "$why" ]
judge "stage 2 restarted with another model"
check "the refused stage was not used again" [ "$(jget .epochs[-1].stages)" = "[\"127.0.0.1:$PORT_s1\"]" ]

# 5. Both stages die: the coordinator computes every block itself.
start_run "$BODY"
wait_images $C $RUN_ID $((N / 5))
kill -KILL "$PID_s1" "$PID_s2"
wait "$PID_s1" "$PID_s2" 2>/dev/null
judge "both stages killed"
check "the coordinator ended up computing alone" [ "$(jget .epochs[-1].stages)" = "[]" -a \
	"$(jget .stages[0].address)" = coordinator -a "$(jget .stages[0].last)" = 19 ]

# 6. A delaying TCP relay (20 ms + 0..30 ms jitter each way) in front of
# stage 2: the same logits, slower.
restart s1 || exit 1
restart s2 || exit 1
if [ -x "$RELAY" ]; then
	spawn relay "$RELAY" --listen 127.0.0.1:0 --to "127.0.0.1:$PORT_s2" --delay-ms 20 \
		--jitter-ms 30 || exit 1
	start cr --role coordinator --model "$MODEL32" --stall-s 60 \
		--stages "127.0.0.1:$PORT_s1,127.0.0.1:$PORT_relay" || exit 1
	C=127.0.0.1:$PORT_cr
	start_run "$BODY"
	judge "a delaying relay between the stages"
	diag "$(jget .throughput_img_s) img/s; stage 1 -> relay: $(jget .stages[0].transfer_ms_per_frame) ms a frame"
	check "frames through the relay took its delay" \
		awk -v m="$(jget .stages[0].transfer_ms_per_frame)" 'BEGIN { exit !(m >= 20) }'
else
	ok 0 "# SKIP no $RELAY"
fi
tap_end

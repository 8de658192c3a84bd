#!/bin/bash
# Backpressure: stages with a queue of one frame answer 503 while a wide
# window pushes at them; senders retry, and the run still completes every
# image exactly once, with the same logits.
. "${top_srcdir:-.}/tests/cluster-lib.sh"
need_cluster
cluster "$MODEL32" "--queue-depth 1 --out-depth 1" "--queue-depth 1" || exit 1
C=127.0.0.1:$PORT_c
N=100

$W "$PIPENET" classify --model "$MODEL32" --data "$DATA" --offset 500 --limit $N \
	--logits "$TMP/ref.f32" >/dev/null 2>&1

run $C "{\"dataset\": \"$DATA\", \"offset\": 500, \"samples\": $N, \"batch_size\": 4, \"split\": [10], \"max_inflight\": 10}" 120
check "a run with 10 batches in flight and queues of 1 finishes" [ "$RUN_STATE" = done ]
check "every image is counted once ($(jget .images_done) of $N)" \
	[ "$(jget .images_done)" = $N -a "$(jget .batches_done)" = 25 ]
diag "duplicates dropped: $(jget .duplicates)"
logits $C "$RUN_ID" "$TMP/q.f32"
check "the logits equal pipenet classify" cmp -s "$TMP/ref.f32" "$TMP/q.f32"

busy=0
for s in $PORT_s1 $PORT_s2; do
	api GET 127.0.0.1:$s /v1/stage
	busy=$((busy + $(jget .rejected_busy)))
done
check "the stages answered 503 ($busy times)" [ $busy -gt 0 ]

# A stage with a queue of one in the coordinator's own range, too.
run $C "{\"dataset\": \"$DATA\", \"offset\": 500, \"samples\": $N, \"batch_size\": 4, \"split\": [3, 10], \"max_inflight\": 10}" 120
logits $C "$RUN_ID" "$TMP/q2.f32"
check "with the coordinator computing a range as well" cmp -s "$TMP/ref.f32" "$TMP/q2.f32"
tap_end

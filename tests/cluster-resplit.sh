#!/bin/bash
# Live re-split: two PUT /api/v1/split during one pipelined run. The
# coordinator drains the batches in flight, reconfigures the stages and
# goes on; every sample is counted exactly once and the logits equal
# `pipenet classify` on the same records bit for bit. The event stream
# marks both switches and the run shows its throughput per split.
. "${top_srcdir:-.}/tests/cluster-lib.sh"
need_cluster
cluster "$MODEL32" || exit 1
C=127.0.0.1:$PORT_c
N=$([ $SLOW = 1 ] && echo 1200 || echo 3000)
OFF=1000

$W "$PIPENET" classify --model "$MODEL32" --data "$DATA" --offset $OFF --limit $N \
	--logits "$TMP/ref.f32" >/dev/null 2>&1
check "pipenet classify wrote the reference logits" test -s "$TMP/ref.f32"

curl -s -N --max-time 120 "http://$C/api/v1/events" >"$TMP/events" 2>/dev/null &
ev=$!
sleep 0.3
api POST $C /api/v1/runs "{\"dataset\": \"$DATA\", \"offset\": $OFF, \"samples\": $N, \"batch_size\": 2, \"split\": [8]}"
check "the run starts" [ "$STATUS" = 201 ]
id=$(jget .id)

wait_images $C $id $((N / 6 + 1))
api PUT $C /api/v1/split '{"split": [12]}'
check "first re-split to [12] during the run: 200, epoch 1" [ "$STATUS" = 200 -a "$(jget .epoch)" = 1 ]
for i in $(seq 200); do
	api GET $C /api/v1/runs/$id
	[ "$(jget .epoch)" = 1 -a "$(jget .resplit_pending)" = null ] && break
	sleep 0.05
done
at=$(jget .images_done)
wait_images $C $id $((at + N / 6 + 1))
api PUT $C /api/v1/split '{"split": [3, 10]}'
check "second re-split to [3, 10] (the coordinator computes [0, 3)): 200, epoch 2" \
	[ "$STATUS" = 200 -a "$(jget .epoch)" = 2 ]
api PUT $C /api/v1/split '{"split": [0]}'
check "an invalid split during the run: 400" [ "$STATUS" = 400 ]

wait_run $C $id 120
check "the run finishes ($(jget .state) $(jget .error))" [ "$(jget .state)" = done ]
check "every sample counted once: $(jget .images_done) of $N, $(jget .batches_done) batches" \
	[ "$(jget .images_done)" = $N -a "$(jget .batches_done)" = $((N / 2)) ]
e0=$(jget .epochs[0].images)
e1=$(jget .epochs[1].images)
e2=$(jget .epochs[2].images)
diag "epochs: [8] $e0 images at $(jget .epochs[0].img_s) img/s, [12] $e1 at $(jget .epochs[1].img_s), [3,10] $e2 at $(jget .epochs[2].img_s)"
check "three epochs whose images add up to $N" [ $((e0 + e1 + e2)) = $N -a "$e0" -gt 0 -a "$e1" -gt 0 -a "$e2" -gt 0 ]
check "the run's split is now [3, 10], epoch 2" [ "$(jget .split[0])" = 3 -a "$(jget .split[1])" = 10 -a "$(jget .epoch)" = 2 ]
check "the stages now: coordinator [0, 3), stage 1 [3, 10), stage 2 [10, 19)" \
	[ "$(jget .stages[0].address)" = coordinator -a "$(jget .stages[1].first)" = 3 -a "$(jget .stages[2].first)" = 10 ]
logits $C "$id" "$TMP/run.f32"
check "logits across both re-splits equal pipenet classify bit for bit" cmp -s "$TMP/ref.f32" "$TMP/run.f32"

sleep 1.2
kill "$ev" 2>/dev/null
wait "$ev" 2>/dev/null
check "the event stream marks both re-splits" [ "$(grep -c '^event: resplit' "$TMP/events")" = 2 ]
grep -A1 '^event: resplit' "$TMP/events" | grep '^data:' | head -1 | cut -c7- >"$TMP/reply"
check "resplit event: from [8] to [12], epoch 1, throughput before" \
	[ "$(jget .from[0])" = 8 -a "$(jget .to[0])" = 12 -a "$(jget .epoch)" = 1 -a "$(jget .img_s_before)" != null ]
check "a batch event per batch ($(grep -c '^event: batch' "$TMP/events"))" \
	[ "$(grep -c '^event: batch' "$TMP/events")" = $((N / 2)) ]

# Between runs, a split is the next run's default.
api PUT $C /api/v1/split '{"split": [5]}'
check "PUT /api/v1/split between runs: 200" [ "$STATUS" = 200 -a "$(jget .run)" = null ]
run $C "{\"dataset\": \"$DATA\", \"offset\": $OFF, \"samples\": 20}" 60
check "the next run uses it" [ "$RUN_STATE" = done -a "$(jget .split[0])" = 5 ]
tap_end

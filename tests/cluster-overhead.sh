#!/bin/bash
# Where a cluster's time goes: each stage reports its process CPU and the
# time in the kernels and outside them by kind, the coordinator its own
# CPU by kind; the run JSON, the event stream's summaries and /metrics
# carry them. Checked for a run at split 5 with f16 on the wire (so every
# kind has work): preprocessing on the first stage only, kernels within
# the stage's compute time, every kind of the coordinator counted.
. "${top_srcdir:-.}/tests/cluster-lib.sh"
need_cluster

cluster "$MODEL32" || { ok 1 "cluster started"; tap_end; exit 1; }
C=127.0.0.1:$PORT_c
body='{"dataset": "'$DATA'", "samples": 3000, "batch_size": 8, "mode": "pipelined", "split": [5], "wire": "f16"}'
api POST "$C" /api/v1/runs "$body"
check "a run at split 5, f16 on the wire, starts" [ "$STATUS" = 201 ]
id=$(jget .id)

# While it runs: the metrics name every kind for both stages.
wait_images "$C" "$id" 400
curl -s --max-time 10 "http://$C/metrics" >"$TMP/metrics"
for kind in cpu kernel preprocess convert crc frame; do
	check "/metrics: pipenet_stage_time_seconds_total for both stages, kind $kind" \
		[ "$(grep -c "^pipenet_stage_time_seconds_total{.*kind=\"$kind\"}" "$TMP/metrics")" = 2 ]
done
check "/metrics: the coordinator's process CPU and its four kinds" \
	[ "$(grep -c '^pipenet_coordinator_seconds_total{kind=' "$TMP/metrics")" = 4 ] &&
	grep -q '^process_cpu_seconds_total [0-9]' "$TMP/metrics"
curl -s --max-time 3 "http://$C/api/v1/events" >"$TMP/events" 2>/dev/null
check "the event stream's summary carries each stage's time by kind and the coordinator's CPU" \
	grep -q '"overhead_ms_per_batch"' "$TMP/events" && grep -q '"cpu_ms_per_image"' "$TMP/events"

wait_run "$C" "$id" 120
check "the run completes" [ "$RUN_STATE" = done ]
cp "$TMP/reply" "$TMP/run.json"
q() { $W "$JGET" "$1" <"$TMP/run.json"; }
positive() { awk -v v="$1" 'BEGIN { exit !(v > 0) }'; }
for i in 0 1; do
	for k in kernel_ms_per_batch cpu_ms_per_batch overhead_ms_per_batch.convert \
		overhead_ms_per_batch.crc overhead_ms_per_batch.frame; do
		v=$(q ".stages[$i].cpu.$k")
		check "stage $i: $k > 0 ($v)" positive "$v"
	done
	kern=$(q ".stages[$i].cpu.kernel_ms_per_batch")
	comp=$(q ".stages[$i].compute_ms_per_batch")
	check "stage $i: kernels ($kern ms) are part of its compute ($comp ms per batch)" \
		awk -v k="$kern" -v c="$comp" 'BEGIN { exit !(k <= c * 1.001 + 0.001) }'
done
pre0=$(q .stages[0].cpu.overhead_ms_per_batch.preprocess)
pre1=$(q .stages[1].cpu.overhead_ms_per_batch.preprocess)
check "preprocessing on the first stage only ($pre0 and $pre1 ms per batch)" \
	awk -v a="$pre0" -v b="$pre1" 'BEGIN { exit !(a > 0 && b == 0) }'
for k in cpu_ms_per_image cpu_share ms_per_batch.dataset ms_per_batch.crc ms_per_batch.frame \
	ms_per_batch.json; do
	v=$(q ".coordinator.$k")
	check "coordinator: $k > 0 ($v)" positive "$v"
done
diag "stage 0: $(q .stages[0].cpu)"
diag "stage 1: $(q .stages[1].cpu)"
diag "coordinator: $(q .coordinator)"

# Large frames are read in big pieces, not libevent 2.1's 4 KiB a loop
# turn (three system calls each, which cost more than the kernels at the
# early splits): at split 1 a batch of 8 is a 1 MiB frame.
api POST "$C" /api/v1/runs '{"dataset": "'$DATA'", "samples": 400, "batch_size": 8, "split": [1], "wire": "f32"}'
id=$(jget .id)
wait_run "$C" "$id" 120
check "a run at split 1 completes" [ "$RUN_STATE" = done ]
curl -s --max-time 10 "http://127.0.0.1:$PORT_s2/v1/stage" >"$TMP/after"
bin=$($W "$JGET" .bytes_in <"$TMP/after") # counted from the run's start
bulk=$($W "$JGET" .bulk_read_bytes <"$TMP/after")
check "the second stage read at least 90 % of its $bin frame bytes in big pieces ($bulk)" \
	awk -v a="$bulk" -v b="$bin" 'BEGIN { exit !(b > 0 && a >= 0.9 * b && a <= b) }'
tap_end

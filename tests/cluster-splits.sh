#!/bin/bash
# Three real processes on loopback: for every split point 1..18 the
# logits over the wire (f32) equal `pipenet classify` on the same records
# bit for bit; sequential mode and a coordinator that computes a range
# too give the same; f16 wire agrees on top-1 with f32 on >= 99.5 %, i8
# (each frame quantised with its own range: lossy) on >= 98 %.
. "${top_srcdir:-.}/tests/cluster-lib.sh"
need_cluster
cluster "$MODEL32" || exit 1
C=127.0.0.1:$PORT_c
N=20   # batches of 8, 8 and 4
OFF=3000

$W "$PIPENET" classify --model "$MODEL32" --data "$DATA" --offset $OFF --limit $N \
	--logits "$TMP/ref.f32" >/dev/null 2>&1
check "pipenet classify wrote the reference logits" test -s "$TMP/ref.f32"

bad=""
for s in $(seq 1 18); do
	if run $C "{\"dataset\": \"$DATA\", \"offset\": $OFF, \"samples\": $N, \"split\": [$s]}" 60 &&
		[ "$RUN_STATE" = done ] && logits $C "$RUN_ID" "$TMP/s$s.f32" &&
		cmp -s "$TMP/ref.f32" "$TMP/s$s.f32"; then
		:
	else
		bad="$bad $s"
		diag "split $s: state $RUN_STATE $(jget .error)"
	fi
done
ok "$([ -z "$bad" ]; echo $?)" "f32 logits equal pipenet classify bit for bit at every split 1..18${bad:+ (failed:$bad)}"

run $C "{\"dataset\": \"$DATA\", \"offset\": $OFF, \"samples\": $N, \"split\": [5], \"mode\": \"sequential\"}" 60
check "sequential run finishes" [ "$RUN_STATE" = done ]
check "sequential mode keeps one batch in flight" [ "$(jget .max_inflight)" = 1 ]
logits $C "$RUN_ID" "$TMP/seq.f32"
check "sequential logits are bit-exact" cmp -s "$TMP/ref.f32" "$TMP/seq.f32"

run $C "{\"dataset\": \"$DATA\", \"offset\": $OFF, \"samples\": $N, \"split\": [4, 12], \"batch_size\": 3}" 60
check "the coordinator computes blocks [0, 4) itself" \
	[ "$RUN_STATE" = done -a "$(jget .stages[0].address)" = coordinator ]
logits $C "$RUN_ID" "$TMP/local.f32"
check "logits with a coordinator range and batch 3 are bit-exact" cmp -s "$TMP/ref.f32" "$TMP/local.f32"

run $C "{\"dataset\": \"$DATA\", \"samples\": $N, \"offset\": $OFF, \"split\": \"auto\"}" 60
check "split auto runs (split $(jget .split))" [ "$RUN_STATE" = done ]

# f16 and i8 against f32 on 1000 records (every 10th record: all
# classes); 400 under qemu or a sanitizer.
M=$([ $SLOW = 1 ] && echo 400 || echo 1000)
q="\"dataset\": \"$DATA\", \"stride\": $((10000 / M)), \"samples\": $M, \"split\": [8], \"batch_size\": 16"
run $C "{$q, \"wire\": \"f32\"}" 300
check "$M records over f32 wire" [ "$RUN_STATE" = done ]
diag "f32: $(jget .throughput_img_s) img/s, accuracy $(jget .accuracy)"
logits $C "$RUN_ID" "$TMP/f32.f32"
# lossy WIRE PERMILLE: a run over WIRE agrees on top-1 with f32 on at
# least PERMILLE of the M records.
lossy() {
	local wire=$1 permille=$2 cmpout agree
	run $C "{$q, \"wire\": \"$wire\"}" 300
	check "$M records over $wire wire" [ "$RUN_STATE" = done -a "$(jget .wire)" = $wire ]
	diag "$wire: $(jget .throughput_img_s) img/s, accuracy $(jget .accuracy), bytes to stage 2 $(jget .stages[0].bytes_out)"
	logits $C "$RUN_ID" "$TMP/$wire.f32"
	cmpout=$($W "$top_builddir/tests/logits-cmp" "$TMP/f32.f32" "$TMP/$wire.f32" 10)
	diag "$wire vs f32: $cmpout"
	agree=$(echo "$cmpout" | sed -n 's/.*top1_agree \([0-9]*\).*/\1/p')
	check "$wire top-1 agrees with f32 on >= $permille permille of $M records ($agree)" \
		[ "${agree:-0}" -ge $((M * permille / 1000)) ]
}
lossy f16 995
lossy i8 980

for n in s1 s2 c; do
	eval "pid=\$PID_$n"
	check "$n is still running" alive "$pid"
done
tap_end

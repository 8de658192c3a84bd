#!/bin/bash
# An int8 model in a cluster: the 32x32 model quantised on 20 training
# images (calib_batch.bin), two stages and the coordinator take the int8
# file like a float one, and a run's logits equal `pipenet classify` of the
# same int8 file byte for byte, with f32, f16 and i8 activations on the
# wire (an int8 activation dequantised to f16 quantises back to the same
# integer; i8 carries the integers themselves with the model's scale and
# zero point), and i8 frames with other parameters are refused by name.
# Skipped under emulation: the scalar int8 pass is too slow there.
. "${top_srcdir:-.}/tests/cluster-lib.sh"
need_cluster
[ -z "$W" ] || skip_all "the scalar int8 pass is too slow under $(basename "${W%% *}")"
calib=$shared/data/cifar10/calib_batch.bin
[ -f "$calib" ] || skip_all "no calibration images at $calib"
N=64
[ "${PIPENET_TEST_STRIDE:-1}" -gt 1 ] && N=24 # sanitised: the same paths, fewer images
M8=$TMP/m32-int8.safetensors
"$PIPENET" quantize --quiet --model "$MODEL32" --calibrate "$calib" --samples 20 --out "$M8" \
	>"$TMP/quantize.out" 2>&1
ok $? "pipenet quantize wrote the int8 model ($(stat -c %s "$M8" 2>/dev/null) bytes)"
"$PIPENET" classify --model "$M8" --data "$DATA" --limit $N --logits "$TMP/ref.f32" >"$TMP/classify.out" 2>&1
ok $? "pipenet classify ran the int8 model on $N images: $(grep '^accuracy' "$TMP/classify.out")"
cluster "$M8" || exit 1
api GET "127.0.0.1:$PORT_s1" /api/v1/health
check "a stage says it runs an int8 model ($(jget .dtype), $(jget .isa))" [ "$(jget .dtype)" = int8 ]
api GET "127.0.0.1:$PORT_c" /api/v1/cluster
check "the coordinator shows the model's precision: $(jget .model.dtype)" [ "$(jget .model.dtype)" = int8 ]
for wire in f32 f16 i8; do
	run "127.0.0.1:$PORT_c" "{\"dataset\": \"$DATA\", \"samples\": $N, \"split\": [8], \"wire\": \"$wire\"}" 600
	check "a run with wire $wire: $RUN_STATE, $(jget .images_done) images, $(jget .stages[0].bytes_out) bytes from stage 1 to 2" \
		[ "$RUN_STATE" = done -a "$(jget .images_done)" = $N ]
	eval "bytes_$wire=\$(jget .stages[0].bytes_out)"
	logits "127.0.0.1:$PORT_c" "$RUN_ID" "$TMP/got-$wire.f32"
	check "wire $wire: the logits equal pipenet classify's byte for byte" cmp -s "$TMP/ref.f32" "$TMP/got-$wire.f32"
done
# Batches of 8 at block 8 of the 32 model (4096 values an image): f32
# frames of 48 + 8 x 4096 x 4 bytes, i8 of 48 + 8 + 8 x 4096.
check "i8 frames are a quarter of f32 and the 8 bytes of scale and zero point ($bytes_i8 vs $bytes_f32 bytes)" \
	[ "$bytes_i8" = $((N / 8 * (56 + 8 * 4096))) -a "$bytes_f32" = $((N / 8 * (48 + 8 * 4096 * 4))) ]

# Stage 2 now takes i8 at block 8 with the model's quantisation: a frame
# quantised with its own range is refused naming the parameter, as are
# bad parameters; then the stage still serves a run exactly.
api GET "127.0.0.1:$PORT_s2" /v1/stage
check "stage 2 takes i8 at block $(jget .plan.first) ($(jget .plan.in_dtype))" [ "$(jget .plan.in_dtype)" = i8 ]
id=$(jget .plan.run)
shape="$(jget .plan.in[0]) $(jget .plan.in[1]) $(jget .plan.in[2])"
for fault in none scale zero_point; do
	$W "$top_builddir/tests/make-frame" "$id" 0 8 i8 8 $shape $([ $fault = none ] || echo $fault) >"$TMP/i8.bin"
	STATUS=$(curl -s -o "$TMP/reply" -w '%{http_code}' --max-time 30 \
		-H 'Content-Type: application/octet-stream' \
		--data-binary "@$TMP/i8.bin" "http://127.0.0.1:$PORT_s2/v1/frames")
	want=$([ $fault = none ] && echo scale || echo $fault)
	check "an i8 frame with $([ $fault = none ] && echo "its own range" || echo "a bad $fault"): $STATUS, field $(jget .field) ($(jget .detail))" \
		[ "$STATUS" = 400 -a "$(jget .field)" = "$want" ]
done
run "127.0.0.1:$PORT_c" "{\"dataset\": \"$DATA\", \"samples\": $N, \"split\": [5], \"wire\": \"i8\"}" 600
logits "127.0.0.1:$PORT_c" "$RUN_ID" "$TMP/got-i8-5.f32"
check "then an i8 run split at 5 equals pipenet classify's byte for byte ($RUN_STATE)" cmp -s "$TMP/ref.f32" "$TMP/got-i8-5.f32"
# The coordinator computes [0, 4), stage 1 [4, 12) takes and gives i8.
run "127.0.0.1:$PORT_c" "{\"dataset\": \"$DATA\", \"samples\": $N, \"split\": [4, 12], \"wire\": \"i8\"}" 600
logits "127.0.0.1:$PORT_c" "$RUN_ID" "$TMP/got-i8-3.f32"
check "an i8 run over three ranges (i8 in and out in the middle) equals it too ($RUN_STATE, $(jget .stages[0].address) first)" \
	cmp -s "$TMP/ref.f32" "$TMP/got-i8-3.f32"
tap_end

#!/bin/bash
# An int8 model in a cluster: the 32x32 model quantised on 20 training
# images (calib_batch.bin), two stages and the coordinator take the int8
# file like a float one, and a run's logits equal `pipenet classify` of the
# same int8 file byte for byte, with f32 and with f16 activations on the
# wire (an int8 activation dequantised to f16 quantises back to the same
# integer). Skipped under emulation: the scalar int8 pass is too slow there.
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
for wire in f32 f16; do
	run "127.0.0.1:$PORT_c" "{\"dataset\": \"$DATA\", \"samples\": $N, \"split\": [8], \"wire\": \"$wire\"}" 600
	check "a run with wire $wire: $RUN_STATE, $(jget .images_done) images" \
		[ "$RUN_STATE" = done -a "$(jget .images_done)" = $N ]
	logits "127.0.0.1:$PORT_c" "$RUN_ID" "$TMP/got-$wire.f32"
	check "wire $wire: the logits equal pipenet classify's byte for byte" cmp -s "$TMP/ref.f32" "$TMP/got-$wire.f32"
done
tap_end

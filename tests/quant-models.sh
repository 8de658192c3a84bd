#!/bin/bash
# The int8 models in models/ are what `pipenet quantize` makes of the
# float ones on calib_batch.bin (all 1000 training images): quantising
# again gives the same bytes, and the calibration's vectorised reference
# gives the same file as the plain one (PIPENET_ISA=scalar). Each shipped
# int8 model classifies the first test images within a point of its float
# model, agreeing on nearly every top-1. Needs ../shared's CIFAR-10 files.
# Re-quantising (the 224 model about 2 minutes on one x86 core) is
# skipped under a sanitizer, where the 10-image quantisation still runs;
# everything under emulation (its scalar calibration would take hours).
. "${top_srcdir:-.}/tests/cluster-lib.sh"
[ -z "$W" ] || skip_all "quantising takes too long under $(basename "${W%% *}")"
calib=$shared/data/cifar10/calib_batch.bin
[ -f "$calib" ] || skip_all "no calibration images at $calib"
[ -f "$DATA" ] || skip_all "no CIFAR-10 test batch at $DATA"
models=$top_srcdir/models
N=$([ $SLOW = 1 ] && echo 200 || echo 1000)

# top-1 of each row of a raw float32 [N][10] file, one per line
top1() { od -An -v -f -w40 "$1" | awk '{b = 1; for (i = 2; i <= NF; i++) if ($i > $b) b = i; print b - 1}'; }
for m in mobilenetv2_cifar10_32 mobilenetv2_cifar10; do
	f=$models/$m.safetensors q=$models/$m-int8.safetensors
	check "$m-int8.safetensors is shipped" test -s "$q"
	"$PIPENET" classify --model "$f" --data "$DATA" --limit $N --logits "$TMP/$m.f32" >"$TMP/$m.txt" 2>&1
	"$PIPENET" classify --model "$q" --data "$DATA" --limit $N --logits "$TMP/$m-int8.f32" >"$TMP/$m-int8.txt" 2>&1
	fa=$(sed -n 's/^accuracy \([0-9.]*\).*/\1/p' "$TMP/$m.txt")
	qa=$(sed -n 's/^accuracy \([0-9.]*\).*/\1/p' "$TMP/$m-int8.txt")
	agree=$(paste <(top1 "$TMP/$m.f32") <(top1 "$TMP/$m-int8.f32") | awk '$1 == $2 {n++} END {printf "%.4f", n / NR}')
	check "$m int8 on the first $N test images: top-1 $qa (float $fa), agreement $agree" \
		awk -v f="${fa:-0}" -v q="${qa:-0}" -v a="${agree:-0}" 'BEGIN { exit !(f > 0.5 && q >= f - 0.01 && a >= 0.97) }'
done

small() { # OUT [ENV...]: the 32 model quantised on 10 images
	local out=$1
	shift
	env "$@" "$PIPENET" quantize --quiet --model "$models/mobilenetv2_cifar10_32.safetensors" \
		--calibrate "$calib" --samples 10 --out "$out"
}
small "$TMP/fast.st" && small "$TMP/plain.st" PIPENET_ISA=scalar
check "the vectorised calibration writes the plain reference's bytes" cmp "$TMP/fast.st" "$TMP/plain.st"

for m in mobilenetv2_cifar10_32 mobilenetv2_cifar10; do
	if [ $SLOW = 1 ]; then # the native run re-quantises; the 10-image one above ran here
		ok 0 "# SKIP re-quantising $m under a sanitizer (minutes)"
		continue
	fi
	t0=$SECONDS
	"$PIPENET" quantize --quiet --model "$models/$m.safetensors" --calibrate "$calib" \
		--out "$TMP/$m-int8.safetensors" >"$TMP/q.out" 2>&1
	check "pipenet quantize of $m on calib_batch.bin gives models/$m-int8.safetensors byte for byte ($((SECONDS - t0)) s)" \
		cmp "$TMP/$m-int8.safetensors" "$models/$m-int8.safetensors"
done
tap_end

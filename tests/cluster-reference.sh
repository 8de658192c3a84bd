#!/bin/bash
# A three-process loopback cluster (coordinator and two stages, 32x32
# model, split 8) classifies 200 test images (records 0, 10, ..., 1990) and
# its logits match PyTorch's reference for them: max |diff| <= 1e-3 and the
# same top-1 for every image. tests/cross-check runs it with the ARM build
# under qemu-user, where an image of this model takes 0.8 s of emulated
# float: there 40 images, one a batch, so that the stages' start-up block
# times (7 passes of a batch) cost seconds rather than a minute (test-model
# runs batches of 8 there; the x86 build gets the full check).
. "${top_srcdir:-.}/tests/cluster-lib.sh"
need_cluster
ref=$shared/reference/mobilenetv2_cifar10_32_every10th_logits.f32
[ -f "$ref" ] || skip_all "no reference logits at $ref"
if [ -n "$W" ]; then
	n=40 batch=1
	cluster "$MODEL32" "" "--max-batch 1"
else
	n=200 batch=8
	cluster "$MODEL32"
fi
ok $? "a coordinator and two stages start${W:+ under $(basename "${W%% *}")}"
run "127.0.0.1:$PORT_c" "{\"dataset\": \"$DATA\", \"offset\": 0, \"stride\": 10, \"samples\": $n, \"batch_size\": $batch, \"split\": [8]}" 1800
[ "$RUN_STATE" = done ]
ok $? "$n images through the cluster, $batch a batch ($RUN_STATE, $(jget .steady_img_s) img/s)"
logits "127.0.0.1:$PORT_c" "$RUN_ID" "$TMP/got.f32"
head -c $((n * 10 * 4)) "$ref" >"$TMP/ref.f32"
out=$($W "$top_builddir/tests/logits-cmp" "$TMP/ref.f32" "$TMP/got.f32" 10)
diag "$out"
echo "$out" | grep -q "records $n " && echo "$out" | grep -q "top1_agree $n "
ok $? "top-1 equals PyTorch's on all $n images"
awk -v d="$(echo "$out" | sed -n 's/.*max_abs_diff \([^ ]*\).*/\1/p')" 'BEGIN {exit !(d != "" && d <= 1e-3)}'
ok $? "logits within 1e-3 of PyTorch's"
tap_end

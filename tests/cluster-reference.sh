#!/bin/bash
# A three-process loopback cluster (coordinator and two stages, 32x32
# model, split 8) classifies 200 test images (records 0, 10, ..., 1990) and
# its logits match PyTorch's reference for them: max |diff| <= 1e-3 and the
# same top-1 for every image. Small enough to run under qemu-user, where
# tests/cross-check runs it with the ARM build (the same check holds the
# x86 build to the same reference).
. "${top_srcdir:-.}/tests/cluster-lib.sh"
need_cluster
ref=$shared/reference/mobilenetv2_cifar10_32_every10th_logits.f32
[ -f "$ref" ] || skip_all "no reference logits at $ref"
cluster "$MODEL32"
ok $? "a coordinator and two stages start${W:+ under $(basename "${W%% *}")}"
run "127.0.0.1:$PORT_c" "{\"dataset\": \"$DATA\", \"offset\": 0, \"stride\": 10, \"samples\": 200, \"split\": [8]}" 1800
[ "$RUN_STATE" = done ]
ok $? "200 images through the cluster ($RUN_STATE, $(jget .steady_img_s) img/s)"
logits "127.0.0.1:$PORT_c" "$RUN_ID" "$TMP/got.f32"
head -c $((200 * 10 * 4)) "$ref" >"$TMP/ref.f32"
out=$($W "$top_builddir/tests/logits-cmp" "$TMP/ref.f32" "$TMP/got.f32" 10)
diag "$out"
echo "$out" | grep -q "records 200 " && echo "$out" | grep -q "top1_agree 200 "
ok $? "top-1 equals PyTorch's on all 200 images"
awk -v d="$(echo "$out" | sed -n 's/.*max_abs_diff \([^ ]*\).*/\1/p')" 'BEGIN {exit !(d != "" && d <= 1e-3)}'
ok $? "logits within 1e-3 of PyTorch's"
tap_end

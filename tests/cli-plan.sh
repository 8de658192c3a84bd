#!/bin/sh
# pipenet plan from a profile: with stage 1 twice as slow per block as
# stage 0 and free links, the best split gives stage 0 thirteen blocks
# (max(13 x 1, 6 x 2) = 13 ms); bad profiles are refused with a reason.
pipenet="$PN_TEST_WRAPPER ${top_builddir:-.}/pipenet"
model="${top_srcdir:-.}/models/mobilenetv2_cifar10_32.safetensors"
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
n=0
ok() { n=$((n + 1)); if [ "$1" = 0 ]; then echo "ok $n - $2"; else echo "not ok $n - $2"; fi; }

ones=$(seq 19 | sed 's/.*/1/' | paste -sd, -)
twos=$(seq 19 | sed 's/.*/2/' | paste -sd, -)
links='[{"latency_ms": 0, "mbit_s": 0}, {"latency_ms": 0, "mbit_s": 0}, {"latency_ms": 0, "mbit_s": 0}]'
printf '{"stages": [{"block_ms": [%s]}, {"block_ms": [%s]}], "links": %s}\n' "$ones" "$twos" "$links" >"$dir/p.json"
out=$($pipenet plan --model "$model" --profile "$dir/p.json" --json)
echo "$out" | grep -q '"best": {"split": \[13\], "predicted_img_s": 615.385' ; ok $? "best split 13 at 8 / 13 ms = 615.385 img/s"
echo "$out" | grep -o '"split"' | wc -l | grep -qx 19; ok $? "18 candidates and the best listed"
echo "$out" | grep -q '"replication": {"groups": \[1, 1\]'; ok $? "two single-stage replicas beat one pipeline here"

printf '{"stages": [{"block_ms": [1, 2]}]}\n' >"$dir/short.json"
err=$($pipenet plan --model "$model" --profile "$dir/short.json" 2>&1 >/dev/null)
echo "$err" | grep -q "block_ms must list 19 numbers"; ok $? "a short profile is refused: $err"
printf '{"stages": [' >"$dir/broken.json"
err=$($pipenet plan --model "$model" --profile "$dir/broken.json" 2>&1 >/dev/null)
echo "$err" | grep -q "broken.json: line"; ok $? "broken JSON is refused: $err"
# Over 10 Mbit/s links the bytes matter: i8 frames predict more than f32.
slow='[{"latency_ms": 0, "mbit_s": 10}, {"latency_ms": 0, "mbit_s": 10}, {"latency_ms": 0, "mbit_s": 10}]'
printf '{"stages": [{"block_ms": [%s]}, {"block_ms": [%s]}], "links": %s}\n' "$ones" "$ones" "$slow" >"$dir/slow.json"
best() { $pipenet plan --model "$model" --profile "$dir/slow.json" --wire "$1" --json | sed -n 's/.*"best": {[^}]*"predicted_img_s": \([0-9.]*\).*/\1/p'; }
f32=$(best f32)
i8=$(best i8)
$pipenet plan --model "$model" --profile "$dir/slow.json" --wire i8 --json | grep -q '"wire": "i8"' &&
	awk -v a="$i8" -v b="$f32" 'BEGIN { exit !(a > b) }'
ok $? "--wire i8 over 10 Mbit/s links: $i8 img/s predicted against $f32 for f32"
err=$($pipenet plan --model "$model" --profile "$dir/slow.json" --wire u8 2>&1 >/dev/null)
[ $? = 2 ] && echo "$err" | grep -q "f32, f16 or i8"; ok $? "--wire u8 is a usage error: $err"
$pipenet plan --model "$model" --stages 0 >/dev/null 2>&1
[ $? = 2 ]; ok $? "--stages 0 is a usage error"
echo "1..$n"

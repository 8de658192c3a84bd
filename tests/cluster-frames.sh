#!/bin/bash
# Bad frames (u8 into block 0, i8 further on) and bad requests: each gets
# its 4xx naming what is wrong, and the stage then still serves a valid run
# bit for bit.
. "${top_srcdir:-.}/tests/cluster-lib.sh"
need_cluster
cluster "$MODEL32" || exit 1
C=127.0.0.1:$PORT_c
S=127.0.0.1:$PORT_s1
MF=$top_builddir/tests/make-frame

q="\"dataset\": \"$DATA\", \"offset\": 100, \"samples\": 12, \"split\": [6]"
run $C "{$q}" 60
check "a first run configures the stages" [ "$RUN_STATE" = done ]
logits $C "$RUN_ID" "$TMP/first.f32"
run1=$RUN_ID

# post NAME FRAME_ARGS...: sends a generated frame to stage 1.
post() {
	local name=$1
	shift
	$W "$MF" "$@" >"$TMP/$name.bin" || return 1
	STATUS=$(curl -s -o "$TMP/reply" -w '%{http_code}' --max-time 30 \
		-H 'Content-Type: application/octet-stream' \
		--data-binary "@$TMP/$name.bin" "http://$S/v1/frames")
}
# refused NAME STATUS FIELD FRAME_ARGS...
refused() {
	local name=$1 want=$2 field=$3
	shift 3
	post "$name" "$@"
	local got
	got=$(jget .field 2>/dev/null)
	ok "$([ "$STATUS" = "$want" ] && [ "$got" = "$field" ]; echo $?)" \
		"$name: $STATUS (want $want), field ${got:-none} (want $field)"
}
# Stage 1 takes blocks from 0: batches of up to 8 source images (u8).
shape="8 32 32 3"
refused "wrong magic" 400 magic $run1 50 0 u8 $shape magic
refused "wrong version" 400 version $run1 50 0 u8 $shape version
refused "truncated body" 400 payload_len $run1 50 0 u8 $shape truncate
refused "length mismatch" 400 payload_len $run1 50 0 u8 $shape length
refused "bad CRC" 400 crc $run1 50 0 u8 $shape crc
refused "shape mismatch" 400 h $run1 50 0 u8 8 16 32 3
refused "channel mismatch" 400 c $run1 50 0 u8 8 32 32 2
refused "block mismatch" 400 first_block $run1 50 4 u8 $shape
refused "dtype mismatch" 400 dtype $run1 50 0 f16 2 32 32 3
refused "batch too large" 400 n $run1 50 0 u8 9 32 32 3
refused "another run" 409 run 777 50 0 u8 $shape
post "a frame over the largest valid one" $run1 50 0 f32 $shape
check "a frame over the largest valid one: 413" [ "$STATUS" = 413 ]

head -c 1000 /dev/urandom >"$TMP/garbage.bin"
printf 'XXXX' | dd of="$TMP/garbage.bin" conv=notrunc 2>/dev/null
STATUS=$(curl -s -o "$TMP/reply" -w '%{http_code}' --max-time 30 \
	--data-binary "@$TMP/garbage.bin" "http://$S/v1/frames")
check "garbage bytes: 400 (magic)" [ "$STATUS" = 400 -a "$(jget .field)" = magic ]
STATUS=$(curl -s -o "$TMP/reply" -w '%{http_code}' --max-time 30 -X POST "http://$S/v1/frames")
check "empty body: 400" [ "$STATUS" = 400 ]

# A body over the largest valid frame: refused from its Content-Length.
exec 3<>"/dev/tcp/127.0.0.1/$PORT_s1"
printf 'POST /v1/frames HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 200000000\r\n\r\n' >&3
line=
read -t 10 -r line <&3
exec 3<&-
check "oversized body: 413 before reading it (${line%$'\r'})" [ "${line#* }" != "${line#* 413}" ]

# Not HTTP at all.
exec 3<>"/dev/tcp/127.0.0.1/$PORT_s1"
head -c 3000 /dev/urandom >&3
exec 3<&-
api GET $S /api/v1/health
check "the stage still answers after garbage on the socket" [ "$STATUS" = 200 ]

api PUT $S /v1/stage '{"run": 1, "first": 0'
check "configuration with broken JSON: 400" [ "$STATUS" = 400 ]
api PUT $S /v1/stage '{"run": 1, "first": 0, "last": 30, "batch": 8, "next": "127.0.0.1:1", "model_sha256": "x"}'
check "configuration with a bad range: 400 naming last ($(jget .detail))" \
	[ "$STATUS" = 400 -a "$(jget .detail | cut -d' ' -f1)" = last ]
api PUT $S /v1/stage '{"run": 1, "bogus": 1}'
check "configuration with an unknown key: 400" [ "$STATUS" = 400 ]
api POST $C /api/v1/runs '{"dataset": 5}'
check "a run with a bad field: 400 ($(jget .detail))" [ "$STATUS" = 400 ]
api POST $C /api/v1/runs "{\"dataset\": \"$DATA\", \"split\": [3, 2]}"
check "a run with a bad split: 400" [ "$STATUS" = 400 ]
api POST $C /api/v1/runs "{\"dataset\": \"$DATA\", \"wire\": \"u8\"}"
check "a run with wire u8: 400 ($(jget .detail))" [ "$STATUS" = 400 -a "$(jget .detail)" = 'wire must be "f32", "f16" or "i8"' ]
api GET $C /api/v1/runs/999
check "an unknown run: 404" [ "$STATUS" = 404 ]
api GET $C /api/v1/nothing
check "an unknown path: 404" [ "$STATUS" = 404 ]
api DELETE $C /api/v1/health
check "a wrong method: 405" [ "$STATUS" = 405 ]

api GET $S /v1/stage
check "stage 1 counted the refused frames ($(jget .rejected_bad))" [ "$(jget .rejected_bad)" -ge 13 ]

# An i8 run leaves stage 2 taking i8 frames at block 6: bad quantisation
# parameters and lengths are refused by name, a good frame is queued.
run $C "{$q, \"wire\": \"i8\"}" 60
check "an i8 run configures stage 2 for i8 ($RUN_STATE)" [ "$RUN_STATE" = done ]
S=127.0.0.1:$PORT_s2
api GET $S /v1/stage
shape8="8 $(jget .plan.in[0]) $(jget .plan.in[1]) $(jget .plan.in[2])"
refused "i8 with scale 0" 400 scale $RUN_ID 50 6 i8 $shape8 scale
refused "i8 with zero point 300" 400 zero_point $RUN_ID 50 6 i8 $shape8 zero_point
refused "i8 with a length past its body" 400 payload_len $RUN_ID 50 6 i8 $shape8 length
refused "i8 cut in half" 400 payload_len $RUN_ID 50 6 i8 $shape8 truncate
refused "f32 where i8 is expected" 400 dtype $RUN_ID 50 6 f32 1 ${shape8#8 }
post "a good i8 frame" $RUN_ID 50 6 i8 $shape8
check "a good i8 frame is queued: $STATUS" [ "$STATUS" = 202 ]
S=127.0.0.1:$PORT_s1

run $C "{$q}" 60
check "a valid run after all that finishes" [ "$RUN_STATE" = done ]
logits $C "$RUN_ID" "$TMP/second.f32"
check "and its logits equal the first run's bit for bit" cmp -s "$TMP/first.f32" "$TMP/second.f32"
for n in s1 s2 c; do
	eval "pid=\$PID_$n"
	check "$n is still running" alive "$pid"
done
tap_end

#!/bin/bash
# Datasets through a real coordinator and two stages, from a hostile
# client: run datasets are names in --data-dir, and everything outside it
# (absolute paths, "..", symbolic links out), what is not a dataset (a
# FIFO, a text file) and what is missing is answered 403/400/404 when
# posted, with no run made and no file content, size or listing in the
# answer; GET /api/v1/datasets lists what is there. A progressive JPEG of
# 380 scans (generated here) is refused with 413 and one of 100 scans is
# classified, /api/v1/health answering within 1 s throughout and the
# coordinator's RSS bounded; a folder of 300 JPEGs of 1024x768 runs with
# the same logits as `pipenet classify`, health answering within 1 s; a
# valid run afterwards is exact. Without --data-dir dataset runs are
# refused with a message saying so; a data directory made after the start
# is used once it is there.
. "${top_srcdir:-.}/tests/cluster-lib.sh"
need_cluster
MKJPEG=$top_builddir/tests/make-jpeg
D=$TMP/data
LIMIT_S=1                      # health answers within this
[ "$SLOW" = 1 ] && LIMIT_S=5   # under a sanitizer or an emulator
RSS_KB=300000                  # the coordinator's RSS stays below this
[ "$SLOW" = 1 ] && RSS_KB=1000000 # ASan keeps freed memory in quarantine

mkdir -p "$D/sub" "$TMP/outside"
head -c $((3073 * 200)) "$DATA" >"$D/small.bin"
printf 'root:x:0:0:secret words\n' >"$D/notes.txt"
printf 'secret words\n' >"$TMP/outside/secret.bin"
ln -s /etc/passwd "$D/passwd-link"
ln -s ../outside "$D/outside-link"
mkfifo "$D/fifo"
$W "$MKJPEG" folder "$D/big" 300 1024 768 || { diag "make-jpeg failed"; exit 1; }
$W "$MKJPEG" scans "$TMP/scans380.jpg" 4096 400 >/dev/null &&
	$W "$MKJPEG" scans "$TMP/scans100.jpg" 4096 100 >/dev/null &&
	$W "$MKJPEG" scans "$TMP/wide.jpg" 4104 4 >/dev/null || { diag "make-jpeg failed"; exit 1; }

cluster "$MODEL32" "" "--data-dir $D --max-body-bytes 4000000" || exit 1
C=127.0.0.1:$PORT_c

# watch NAME / unwatch: /api/v1/health's time and status and the
# coordinator's VmRSS (kB) every tenth of a second, in $TMP/NAME.watch.
watch() {
	rm -f "$TMP/stop"
	(
		while [ ! -e "$TMP/stop" ]; do
			t=$(curl -s -o /dev/null -w '%{time_total} %{http_code}' --max-time 30 \
				"http://$C/api/v1/health")
			r=$(awk '/^VmRSS/ {print $2}' "/proc/$PID_c/status" 2>/dev/null)
			echo "$t ${r:-0}"
			sleep 0.1
		done
	) >"$TMP/$1.watch" &
	WATCHER=$!
}
unwatch() {
	touch "$TMP/stop"
	wait "$WATCHER"
}
# watched NAME WHAT: health always 200 within LIMIT_S, RSS below RSS_KB.
watched() {
	local w=$TMP/$1.watch n worst rss
	n=$(wc -l <"$w")
	worst=$(awk 'BEGIN {m = 0} $1 > m {m = $1} END {print m}' "$w")
	rss=$(awk 'BEGIN {m = 0} $3 > m {m = $3} END {print m}' "$w")
	check "$2: /api/v1/health answered 200 each of $n times, the slowest in ${worst} s (< $LIMIT_S s)" \
		awk -v m="$worst" -v l="$LIMIT_S" -v n="$n" \
		'BEGIN {exit !(m < l && n > 0)} $2 != 200 {exit 1}' "$w"
	check "$2: the coordinator's RSS stayed at most ${rss} kB (< $RSS_KB kB)" \
		[ "$rss" -gt 0 -a "$rss" -lt "$RSS_KB" ]
}

# 1. Names: each answered when posted, no run made, nothing shown.
refused() { # STATUS NAME WHAT
	api POST $C /api/v1/runs "{\"dataset\": \"$2\", \"samples\": 8}"
	check "$3 (\"$2\"): $1 ($(jget .detail))" [ "$STATUS" = "$1" ]
	# Shown only when it fails: a file's content, a size, another name.
	if grep -qE 'root:|secret words|[0-9]+ bytes|small\.bin|big' "$TMP/reply" &&
		[ "$2" != sub/../small.bin ] && [ "$2" != small.bin/x ]; then
		ok 1 "  the answer shows no content, size or listing: $(cat "$TMP/reply")"
	fi
}
refused 403 /etc/shadow "a file outside"
refused 403 /etc/passwd "another file outside"
refused 403 ../../../../../../etc/passwd "'..' out"
refused 403 sub/../small.bin "'..' that comes back"
refused 403 "$D/../outside/secret.bin" "an absolute path through '..'"
refused 403 passwd-link "a symbolic link to /etc/passwd"
refused 403 outside-link/secret.bin "a symbolic link to a folder outside"
refused 403 / "the root folder"
refused 403 /dev/zero "/dev/zero"
refused 400 fifo "a FIFO"
refused 404 missing.bin "a missing file"
refused 404 small.bin/x "under a file"
refused 400 notes.txt "a text file"
check "notes.txt's error does not show its content or size ($(jget .detail))" \
	eval '! grep -qE "root:|secret words|24" "$TMP/reply"'
refused 400 "" "an empty name"
api GET $C /api/v1/runs
check "no run was made ($(jget '.runs|length') runs)" [ "$(jget '.runs|length')" = 0 ]

api GET $C /api/v1/datasets
check "GET /api/v1/datasets: 200" [ "$STATUS" = 200 ]
check "it lists the folder and the CIFAR file, nothing else ($(jget .datasets))" \
	[ "$(jget '.datasets|length')" = 2 -a "$(jget .datasets[0].name)" = big \
	-a "$(jget .datasets[0].kind)" = jpeg-folder -a "$(jget .datasets[0].records)" = 300 \
	-a "$(jget .datasets[0].classes)" = 10 -a "$(jget .datasets[1].name)" = small.bin \
	-a "$(jget .datasets[1].kind)" = cifar10-bin -a "$(jget .datasets[1].records)" = 200 ]

# 2. Hostile JPEGs to POST /api/v1/classify.
classify() { # FILE: the status in $TMP/NAME.status, the body in $TMP/NAME.out
	curl -s -o "$TMP/$(basename "$1").out" -w '%{http_code}' --max-time 300 \
		-H 'Content-Type: image/jpeg' --data-binary @"$1" \
		"http://$C/api/v1/classify" >"$TMP/$(basename "$1").status"
}
watch scans
classify "$TMP/scans380.jpg"
classify "$TMP/scans100.jpg"
classify "$TMP/wide.jpg"
unwatch
check "a progressive JPEG of 380 scans: 413 ($(cat "$TMP/scans380.jpg.out"))" \
	[ "$(cat "$TMP/scans380.jpg.status")" = 413 ]
check "  naming the scan limit" grep -q "more than 100 scans" "$TMP/scans380.jpg.out"
check "a progressive 4096x4096 JPEG of 100 scans is classified: $(cat "$TMP/scans100.jpg.status")" \
	[ "$(cat "$TMP/scans100.jpg.status")" = 200 ]
check "4104x4104 pixels: 413 ($(cat "$TMP/wide.jpg.out"))" \
	[ "$(cat "$TMP/wide.jpg.status")" = 413 ]
watched scans "while classifying them"

# 3. A folder of 300 JPEGs of 1024x768: indexed when posted, decoded as
# batches go out; the logits are pipenet classify's.
$W "$PIPENET" classify --model "$MODEL32" --data "$D/big" --logits "$TMP/big-ref.f32" \
	>/dev/null 2>&1
check "pipenet classify wrote the folder's reference logits" test -s "$TMP/big-ref.f32"
watch big
run $C '{"dataset": "big", "batch_size": 32, "split": [8]}' 600
unwatch
check "the folder run is done ($RUN_STATE, $(jget .images_done) images)" \
	[ "$RUN_STATE" = done -a "$(jget .images_done)" = 300 ]
logits $C "$RUN_ID" "$TMP/big.f32"
check "its logits equal pipenet classify's bit for bit" cmp -s "$TMP/big-ref.f32" "$TMP/big.f32"
watched big "during the folder run"

# 4. A valid run afterwards is exact.
$W "$PIPENET" classify --model "$MODEL32" --data "$D/small.bin" --limit 24 \
	--logits "$TMP/small-ref.f32" >/dev/null 2>&1
run $C "{\"dataset\": \"$D/small.bin\", \"samples\": 24, \"split\": [5]}" 120
check "a run of small.bin by its absolute path inside: $RUN_STATE" [ "$RUN_STATE" = done ]
logits $C "$RUN_ID" "$TMP/small.f32"
check "its logits equal pipenet classify's bit for bit" cmp -s "$TMP/small-ref.f32" "$TMP/small.f32"

# 5. No data directory: no dataset run.
start c2 --role coordinator --model "$MODEL32" --data-dir "" --stages "127.0.0.1:$PORT_s1" ||
	exit 1
api POST "127.0.0.1:$PORT_c2" /api/v1/runs "{\"dataset\": \"$DATA\", \"samples\": 8}"
check "without --data-dir a run is refused: $STATUS, saying to set it ($(jget .detail))" \
	[ "$STATUS" = 403 -a "$(jget .detail | grep -c -- --data-dir)" = 1 ]
api GET "127.0.0.1:$PORT_c2" /api/v1/datasets
check "and GET /api/v1/datasets lists nothing ($(cat "$TMP/reply"))" \
	[ "$STATUS" = 200 -a "$(jget '.datasets|length')" = 0 -a "$(jget .data_dir)" = false ]

# 6. A data directory made after the start (systemd's StateDirectory, say)
# is opened when a request needs it.
start c3 --role coordinator --model "$MODEL32" --data-dir "$TMP/later" --stages "" || exit 1
api POST "127.0.0.1:$PORT_c3" /api/v1/runs '{"dataset": "small.bin", "samples": 8}'
check "a data directory not there yet: 403 naming it ($(jget .detail))" \
	[ "$STATUS" = 403 -a "$(jget .detail | grep -c "$TMP/later")" = 1 ]
mkdir "$TMP/later" && cp "$D/small.bin" "$TMP/later/"
run "127.0.0.1:$PORT_c3" '{"dataset": "small.bin", "samples": 8}' 120
check "once made, a run from it is done ($RUN_STATE)" [ "$RUN_STATE" = done ]

tap_end

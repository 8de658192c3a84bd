#!/bin/sh
# Every fuzz target. In a --enable-fuzzing build (clang, libFuzzer,
# ASan+UBSan) each one fuzzes for PIPENET_FUZZ_SECONDS (default 30) from a
# copy of its seed corpus, as many at once as there are cores; otherwise
# each replays its seed corpus. A crash, leak, sanitizer report or hang
# fails the test.
top_srcdir=${top_srcdir:-.}
top_builddir=${top_builddir:-.}
seconds=${PIPENET_FUZZ_SECONDS:-30}
jobs=$(nproc 2>/dev/null || echo 1)
out=$(mktemp -d)

# one N TARGET: runs a target, its TAP line in $out/N.tap.
one() {
	bin=$top_builddir/tests/fuzz-$2
	work=$out/$2
	mkdir "$work"
	cp "$top_srcdir/tests/fuzz/corpus/$2"/* "$work"/
	if [ "${PN_FUZZING:-no}" = yes ]; then
		how="fuzzed for ${seconds}s"
		$PN_TEST_WRAPPER "$bin" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
			-print_final_stats=1 "$work" >"$work.log" 2>&1
	else
		how="seed corpus replayed"
		$PN_TEST_WRAPPER "$bin" "$work" >"$work.log" 2>&1
	fi
	rc=$?
	if [ $rc -eq 0 ]; then
		echo "ok $1 - fuzz-$2: $how, $(grep -E 'ran [0-9]+ inputs|stat::number_of_executed_units' "$work.log" | tail -1)"
	else
		echo "not ok $1 - fuzz-$2: $how, exit $rc"
		sed 's/^/# /' "$work.log" | tail -40
	fi >"$out/$1.tap"
}

n=0
running=0
for target in safetensors jpeg frame config json datapath http-head; do
	n=$((n + 1))
	one $n $target &
	running=$((running + 1))
	if [ $running -ge "$jobs" ]; then
		wait
		running=0
	fi
done
wait
fail=0
for i in $(seq $n); do
	cat "$out/$i.tap"
	grep -q '^not ok' "$out/$i.tap" && fail=1
done
echo "1..$n"
rm -rf "$out"
exit $fail

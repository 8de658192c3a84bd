# Sourced by the cluster tests: TAP output, real pipenetd processes on
# loopback (port 0, read back from --port-file), a REST client, and a
# trap that stops every process this test started.
[ -n "${BASH_VERSION:-}" ] || {
	echo "1..0 # SKIP the cluster tests need bash"
	exit 0
}
set -u

top_srcdir=$(cd "${top_srcdir:-.}" && pwd)
top_builddir=$(cd "${top_builddir:-.}" && pwd)
# need_tool TOOL PACKAGE: a missing tool fails the test, naming its package.
. "$top_srcdir/tests/need.sh"
W=${PN_TEST_WRAPPER:-}
PIPENETD=$top_builddir/pipenetd
PIPENET=$top_builddir/pipenet
JGET=$top_builddir/tests/json-get
shared=${PIPENET_SHARED:-$top_srcdir/../shared}
DATA=$shared/data/cifar10/test_batch.bin
# Coordinators read datasets from DATADIR (--data-dir, given by start);
# DATA, an absolute path inside it, is accepted as it is.
DATADIR=$shared/data
MODEL32=$top_srcdir/models/mobilenetv2_cifar10_32.safetensors
MODEL224=$top_srcdir/models/mobilenetv2_cifar10.safetensors
# SLOW=1 under qemu-user or a sanitizer build: timing bounds widen.
SLOW=0
if [ -n "$W" ] || ldd "$PIPENETD" 2>/dev/null | grep -q 'lib[at]san'; then SLOW=1; fi
TMP=$(mktemp -d "${TMPDIR:-/tmp}/pn-cluster.XXXXXX")
[ -d "$DATADIR" ] || DATADIR=$TMP
PIDS=()
tap_n=0
tap_bad=0

# busy STAGE: the last fetched run's stage STAGE, ms per batch in compute
# and frame handling (conversion, CRC, frames): its time per batch as the
# planner models it, measured by the run itself.
busy() {
	awk -v c="$(jget ".stages[$1].compute_ms_per_batch")" \
		-v v="$(jget ".stages[$1].cpu.overhead_ms_per_batch.convert")" \
		-v r="$(jget ".stages[$1].cpu.overhead_ms_per_batch.crc")" \
		-v f="$(jget ".stages[$1].cpu.overhead_ms_per_batch.frame")" 'BEGIN { print c + v + r + f }'
}

ok() { # STATUS DESCRIPTION (STATUS 0 passes)
	tap_n=$((tap_n + 1))
	if [ "$1" = 0 ]; then
		echo "ok $tap_n - $2"
	else
		echo "not ok $tap_n - $2"
		tap_bad=$((tap_bad + 1))
	fi
}
check() { # DESCRIPTION COMMAND...
	local d=$1
	shift
	if "$@"; then ok 0 "$d"; else ok 1 "$d"; fi
}
diag() { echo "# $*"; }
skip_all() {
	echo "1..0 # SKIP $*"
	exit 0
}
# Stops the daemons still running (SIGTERM, as a user would) and checks
# that none of them reported a sanitizer error or a leak on the way out.
tap_end() {
	local p t reports
	for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
	for p in "${PIDS[@]}"; do
		for t in $(seq 100); do
			kill -0 "$p" 2>/dev/null || break
			sleep 0.1
		done
	done
	reports=$(grep -l -E 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$TMP"/*.log 2>/dev/null)
	ok "$([ -z "$reports" ]; echo $?)" "no sanitizer reports from the daemons${reports:+: $reports}"
	[ -n "$reports" ] && sed 's/^/# /' $reports | head -60
	echo "1..$tap_n"
	[ "$tap_bad" -eq 0 ]
}

cleanup() {
	local p t
	for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
	for t in $(seq 50); do
		local alive=0
		for p in "${PIDS[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
		[ $alive = 0 ] && break
		sleep 0.1
	done
	for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null; done
	if declare -F cleanup_more >/dev/null; then cleanup_more; fi
	rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

need_cluster() {
	[ -x "$PIPENETD" ] || skip_all "$PIPENETD is not built"
	need_tool curl curl
	[ -f "$DATA" ] || skip_all "no CIFAR-10 test batch at $DATA (set PIPENET_SHARED)"
}

wait_file() { # FILE SECONDS
	local i
	for i in $(seq $(($2 * 10))); do
		[ -s "$1" ] && return 0
		sleep 0.1
	done
	return 1
}

# Commands put in front of pipenetd and curl (e.g. ip netns exec NS).
NSX=()

# spawn NAME COMMAND ARGS...: COMMAND ARGS --port-file FILE in the
# background (after ${NSX[@]} $W), waiting for the port it writes; sets
# PORT_NAME and PID_NAME, logs to $TMP/NAME.log.
spawn() {
	local name=$1
	shift
	rm -f "$TMP/$name.port"
	"${NSX[@]}" $W "$@" --port-file "$TMP/$name.port" 2>"$TMP/$name.log" &
	local pid=$!
	PIDS+=("$pid")
	eval "PID_$name=$pid"
	if ! wait_file "$TMP/$name.port" 60; then
		diag "$name did not start:"
		sed 's/^/# /' "$TMP/$name.log"
		return 1
	fi
	eval "PORT_$name=$(cat "$TMP/$name.port")"
}

# start NAME ARGS...: a pipenetd on 127.0.0.1 port 0 with --data-dir
# DATADIR (ARGS may override both).
start() {
	local name=$1
	shift
	spawn "$name" "$PIPENETD" --listen 127.0.0.1:0 --data-dir "$DATADIR" "$@"
}

# cluster MODEL [STAGE_ARGS [COORD_ARGS]]: stages s1 and s2 (s1 .. sN with
# CLUSTER_STAGES=N), coordinator c over them in that order.
cluster() {
	local model=$1 sargs=${2:-} cargs=${3:-} i list= port
	for i in $(seq "${CLUSTER_STAGES:-2}"); do
		# shellcheck disable=SC2086
		start "s$i" --role stage --model "$model" $sargs || return 1
		eval "port=\$PORT_s$i"
		list=${list:+$list,}127.0.0.1:$port
	done
	# shellcheck disable=SC2086
	start c --role coordinator --model "$model" --stages "$list" $cargs
}

# api METHOD HOST:PORT PATH [BODY]: the reply body in $TMP/reply, the
# status in STATUS.
api() {
	local data=()
	[ $# -ge 4 ] && data=(--data-binary "$4")
	STATUS=$("${NSX[@]}" curl -s -o "$TMP/reply" -w '%{http_code}' --max-time 60 -X "$1" \
		-H 'Content-Type: application/json' "${data[@]}" "http://$2$3")
}

jget() { $W "$JGET" "$1" <"$TMP/reply"; }

# run HOST:PORT JSON [SECONDS]: starts a run and waits until it ends;
# RUN_ID, RUN_STATE, and the final run in $TMP/reply.
run() {
	RUN_ID=
	RUN_STATE=
	api POST "$1" /api/v1/runs "$2"
	if [ "$STATUS" != 201 ]; then
		diag "POST /api/v1/runs: $STATUS $(cat "$TMP/reply")"
		return 1
	fi
	RUN_ID=$(jget .id)
	wait_run "$1" "$RUN_ID" "${3:-120}" && return 0
	diag "run $RUN_ID still $RUN_STATE after ${3:-120} s"
	return 1
}

# wait_run HOST:PORT ID SECONDS: until run ID is done, failed or cancelled
# (0), else 1 after SECONDS; RUN_STATE, and the run in $TMP/reply.
wait_run() {
	local t
	for t in $(seq $(($3 * 10))); do
		api GET "$1" "/api/v1/runs/$2"
		RUN_STATE=$(jget .state)
		case $RUN_STATE in
		done | failed | cancelled) return 0 ;;
		esac
		sleep 0.1
	done
	return 1
}

# wait_images HOST:PORT ID N: until run ID has done at least N images (0),
# or is no longer running (1); the run in $TMP/reply.
wait_images() {
	local i
	for i in $(seq 1200); do
		api GET "$1" "/api/v1/runs/$2"
		[ "$(jget .state)" != running ] && return 1
		[ "$(jget .images_done)" -ge "$3" ] && return 0
		sleep 0.05
	done
	return 1
}

# logits HOST:PORT ID FILE
logits() {
	"${NSX[@]}" curl -s -f --max-time 60 -o "$3" "http://$1/api/v1/runs/$2/logits"
}

alive() { kill -0 "$1" 2>/dev/null; }

#!/bin/bash
# The dashboard in headless Chromium against a real coordinator and two
# stages: tests/browser/dashboard.mjs (playwright-core driving Debian's
# /usr/bin/chromium) loads it, starts a run from the form (answering the
# token prompt once), sees the throughput chart receive points, changes the
# split from the page and sees the pipeline view follow, saves desktop and
# phone screenshots under tests/browser/ in the build folder, and kills the
# second stage to see it shown down and left out of the plan.
# Fails naming the Debian package without chromium, node (18 or later)
# or npm; skips when npm cannot fetch playwright-core (pinned in
# tests/browser/package.json).
. "${top_srcdir:-.}/tests/cluster-lib.sh"
need_cluster
need_tool /usr/bin/chromium chromium
need_tool node nodejs
need_tool npm npm
node_major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null)
# playwright-core is pinned to a release that runs on Debian 12's node 18.
[ "${node_major:-0}" -ge 18 ] || need_fail nodejs "node ${node_major:-?}: playwright-core needs 18 or later"

# playwright-core goes into the build folder, once per pinned version.
B=$top_builddir/tests/browser
mkdir -p "$B"
want=$(node -p 'require(process.argv[1]).dependencies["playwright-core"]' "$top_srcdir/tests/browser/package.json")
have=$(node -p 'require(process.argv[1]).version' "$B/node_modules/playwright-core/package.json" 2>/dev/null)
if [ "$have" != "$want" ]; then
	if ! [ "$B" -ef "$top_srcdir/tests/browser" ]; then
		rm -f "$B/package.json"
		cp "$top_srcdir/tests/browser/package.json" "$B/"
	fi
	if ! (cd "$B" && npm install --no-audit --no-fund --no-package-lock --loglevel=error) >"$TMP/npm.log" 2>&1; then
		sed 's/^/# /' "$TMP/npm.log" | tail -20
		skip_all "npm could not install playwright-core $want"
	fi
fi

TOKEN=dash-$$
cluster "$MODEL224" "--token $TOKEN" "--token $TOKEN --web-root $top_srcdir/web" || exit 1
C=127.0.0.1:$PORT_c
api GET "$C" /
[ "$STATUS" = 404 ] && skip_all "coordinator does not serve the dashboard yet"
STATUS=$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 "http://$C/chart.js")
check "GET /chart.js serves Chart.js ($STATUS)" [ "$STATUS" = 200 ]

# Long enough to outlast the test: the page cancels it at the end.
timeout=$([ $SLOW = 1 ] && echo 120 || echo 40)
PN_URL="http://$C/" PN_MODULES="$B" PN_OUT="$B" PN_PROFILE="$TMP/chromium" \
	PN_DATASET="$DATA" PN_STAGES="127.0.0.1:$PORT_s1,127.0.0.1:$PORT_s2" PN_TOKEN="$TOKEN" \
	PN_KILL_PID=$PID_s2 PN_SAMPLES=10000 PN_SPLIT_FROM=8 PN_SPLIT_TO=12 PN_TIMEOUT_S=$timeout \
	timeout $((timeout * 8)) node "$top_srcdir/tests/browser/dashboard.mjs" >"$TMP/browser.out" 2>&1
rc=$?
while IFS= read -r line; do
	case $line in
	"ok - "*) ok 0 "${line#ok - }" ;;
	"not ok - "*) ok 1 "${line#not ok - }" ;;
	"#"*) echo "$line" ;;
	*) echo "# $line" ;;
	esac
done <"$TMP/browser.out"
check "the browser script finished (status $rc)" [ $rc = 0 ]
api GET "$C" /api/v1/health
check "the coordinator still answers after the browser session" [ "$STATUS" = 200 ]
tap_end

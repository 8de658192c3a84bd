// The dashboard in headless Chromium (Debian's /usr/bin/chromium driven by
// playwright-core): load it, start a run from the form (answering the token
// prompt), watch the throughput chart receive points, try a bad split (the
// API's error is shown), change the split and see the pipeline view follow,
// save desktop and phone screenshots, kill a stage and see it shown down
// and out of the plan, cancel the run, and check that text
// from the server is never turned into markup.
//
// Run by tests/browser.sh. Prints "ok - ...", "not ok - ..." and "# ..."
// lines, which the wrapper numbers into TAP. Environment:
//   PN_URL       the coordinator, e.g. http://127.0.0.1:9000/
//   PN_MODULES   the folder whose node_modules holds playwright-core
//   PN_OUT       where the screenshots go
//   PN_PROFILE   a fresh Chromium user-data-dir
//   PN_DATASET   the dataset path the form sends
//   PN_DATASET_NAME  a name the form must offer (default cifar10/test_batch.bin)
//   PN_STAGES    the stage addresses, comma-separated
//   PN_TOKEN     the API token (the test expects to be asked for it once)
//   PN_KILL_PID  the last stage's process, killed near the end (optional)
//   PN_SAMPLES, PN_SPLIT_FROM, PN_SPLIT_TO, PN_TIMEOUT_S
import { createRequire } from 'node:module';
import path from 'node:path';

const env = process.env;
const require = createRequire(path.join(env.PN_MODULES || process.cwd(), 'noop.js'));
const { chromium } = require('playwright-core');

const URL_ = env.PN_URL;
const OUT = env.PN_OUT || '.';
const TOKEN = env.PN_TOKEN || '';
const STAGES = (env.PN_STAGES || '').split(',').filter(Boolean);
const FROM = Number(env.PN_SPLIT_FROM || 8);
const TO = Number(env.PN_SPLIT_TO || 12);
const T = Number(env.PN_TIMEOUT_S || 30) * 1000;
const KILL_PID = Number(env.PN_KILL_PID || 0);

let failed = 0;
function ok(cond, desc) {
	if (!cond) failed++;
	console.log(`${cond ? 'ok' : 'not ok'} - ${desc}`);
	return cond;
}
function diag(text) {
	for (const l of String(text).split('\n')) console.log(`# ${l}`);
}
/* Waits for a page-side condition; false (not an exception) on timeout. */
async function until(page, fn, arg, timeout) {
	try {
		await page.waitForFunction(fn, arg, { timeout: timeout || T, polling: 100 });
		return true;
	} catch (e) {
		diag(`timed out: ${String(e.message).split('\n')[0]}`);
		return false;
	}
}

const args = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
	'--disable-background-networking', '--disable-component-update', '--disable-sync'];
const ctx = await chromium.launchPersistentContext(env.PN_PROFILE, {
	executablePath: '/usr/bin/chromium',
	headless: true,
	args,
	viewport: { width: 1366, height: 900 },
	deviceScaleFactor: 1,
});
const page = ctx.pages()[0] || (await ctx.newPage());
const pageErrors = [];
page.on('pageerror', (e) => pageErrors.push(String(e)));
page.on('console', (m) => {
	/* Chromium logs every 4xx fetch as "Failed to load resource"; those are
	 * the API answering as the test asked. Anything else is a page bug. */
	if (m.type() === 'error' && !/Failed to load resource/.test(m.text())) pageErrors.push(m.text());
});
let dialogs = 0;

try {
	const res = await page.goto(URL_, { waitUntil: 'load', timeout: T });
	ok(res && res.status() === 200, `GET / serves the dashboard (${res && res.status()})`);
	ok(await until(page, () => document.getElementById('conn').dataset.state === 'live'),
		'the event stream (api/v1/events) connects');
	ok(await page.evaluate(() => typeof Chart === 'function' && !!Chart.getChart('chart-throughput')),
		'Chart.js loads from /chart.js and the charts are set up');

	const shown = await until(page, (n) => document.querySelectorAll('#pipeline .stage').length === n, STAGES.length);
	const addrs = await page.$$eval('#pipeline .stage .addr', (els) => els.map((e) => e.textContent));
	ok(shown && STAGES.every((a, i) => addrs[i] === a), `the pipeline view lists the stages (${addrs.join(', ')})`);

	/* The form offers the data directory's datasets (GET /api/v1/datasets). */
	const offered = await until(page, (name) => [...document.querySelectorAll('#datasets-list option')]
		.some((o) => o.value === name), env.PN_DATASET_NAME || 'cifar10/test_batch.bin');
	ok(offered, `the run form offers the datasets of the data directory (${await page.$$eval('#datasets-list option',
		(os) => os.map((o) => o.value).join(', '))})`);

	/* Start a run from the form; the token is asked for when the API says 401. */
	await page.fill('#f-dataset', env.PN_DATASET);
	await page.fill('#f-samples', String(env.PN_SAMPLES || 2000));
	await page.fill('#f-batch', '8');
	await page.selectOption('#f-mode', 'pipelined');
	await page.selectOption('#f-wire', 'f32');
	await page.fill('#f-split', String(FROM));
	await page.click('#start-run');
	if (TOKEN) {
		const asked = await page.locator('#token-dialog').waitFor({ state: 'visible', timeout: T }).then(() => true, () => false);
		ok(asked, 'a 401 from POST /api/v1/runs asks for the token');
		if (asked) {
			dialogs++;
			await page.fill('#token-input', TOKEN);
			await page.click('#token-ok');
		}
	}
	ok(await until(page, () => /run \d+ (started|queued)/.test(document.getElementById('run-status').textContent)),
		`a run starts from the form: "${await page.textContent('#run-status')}"`);
	if (TOKEN) ok(await page.evaluate(() => !!sessionStorage.getItem('pipenet.token')), 'the token is kept in sessionStorage');

	ok(await until(page, () => Chart.getChart('chart-throughput').data.datasets[0].data.length >= 3),
		'the throughput chart receives points');
	ok(await until(page, () => Chart.getChart('chart-latency').data.datasets[0].data.length >= 3),
		'the latency chart receives a point per batch');
	const stageRange = (i) => page.evaluate((i) => {
		const s = document.querySelector(`#pipeline .stage[data-index="${i}"]`);
		return s ? [s.dataset.first, s.dataset.last] : null;
	}, i);
	ok(await until(page, (f) => {
		const s = document.querySelectorAll('#pipeline .stage');
		return s.length === 2 && s[0].dataset.last === String(f) && s[1].dataset.first === String(f);
	}, FROM), `the pipeline view shows split ${FROM}: ${JSON.stringify([await stageRange(0), await stageRange(1)])}`);
	ok(await until(page, () => document.querySelector('#pipeline .util') !== null),
		'the pipeline view shows each stage\'s utilisation');

	const blocks = await page.evaluate(() => {
		const c = Chart.getChart('chart-blocks');
		return { bars: c.data.labels.length, marks: (c.pnMarks || []).map((m) => m.x) };
	});
	ok(blocks.bars === 19 && blocks.marks.length === 1 && blocks.marks[0] === FROM - 0.5,
		`per-block bars with the split drawn on them (${blocks.bars} bars, marks at ${blocks.marks.join(', ')})`);
	ok(await until(page, () => Chart.getChart('chart-plan').data.labels.length > 0, null, T),
		'the planner\'s predicted throughput per split is drawn');
	diag('planner: ' + (await page.textContent('#plan-text')));

	/* A split the API refuses: its error reaches the user. */
	await page.fill('#split-input', '99');
	await page.click('#apply-split');
	ok(await until(page, () => document.querySelector('#errors .error') !== null &&
		document.getElementById('split-status').classList.contains('bad')),
	`an invalid split shows the API's error: "${(await page.textContent('#split-status')).trim()}"`);

	/* Change the split while the run goes on. */
	const before = await page.evaluate(() => Chart.getChart('chart-throughput').data.datasets[0].data.length);
	await page.fill('#split-input', String(TO));
	await page.click('#apply-split');
	ok(await until(page, (t) => {
		const s = document.querySelectorAll('#pipeline .stage');
		return s.length === 2 && s[0].dataset.last === String(t) && s[1].dataset.first === String(t);
	}, TO), `the pipeline view follows the new split ${TO}: ${JSON.stringify([await stageRange(0), await stageRange(1)])}`);
	ok(await until(page, () => (Chart.getChart('chart-throughput').pnMarks || []).length >= 1),
		'the re-split is marked on the throughput chart');
	ok(await until(page, (t) => (Chart.getChart('chart-blocks').pnMarks || []).some((m) => m.x === t - 0.5), TO),
		'the split line on the block chart moves');
	ok(await until(page, (n) => Chart.getChart('chart-throughput').data.datasets[0].data.length >= n + 3, before),
		'the throughput chart goes on after the re-split');
	ok(dialogs === (TOKEN ? 1 : 0) && !(await page.locator('#token-dialog').isVisible()),
		`the token was asked for once (${dialogs})`);

	/* Screenshots: desktop, then a phone-sized viewport. */
	const desk = path.join(OUT, 'dashboard-desktop.png');
	await page.screenshot({ path: desk, fullPage: true });
	console.log(`# screenshot ${desk}`);
	await page.setViewportSize({ width: 390, height: 844 });
	await page.waitForTimeout(600);
	const width = await page.evaluate(() => document.documentElement.scrollWidth);
	ok(width <= 390, `no sideways scrolling on a 390x844 screen (page ${width} px wide)`);
	const col = await page.evaluate(() => getComputedStyle(document.getElementById('pipeline')).flexDirection);
	ok(col === 'column', `the pipeline runs top to bottom on a phone (${col})`);
	const phone = path.join(OUT, 'dashboard-phone.png');
	await page.screenshot({ path: phone, fullPage: true });
	console.log(`# screenshot ${phone}`);
	const phoneTop = path.join(OUT, 'dashboard-phone-screen.png');
	await page.screenshot({ path: phoneTop });
	console.log(`# screenshot ${phoneTop}`);
	await page.setViewportSize({ width: 1366, height: 900 });

	/* The second stage dies: the run goes on without it, and the page
	 * names it below the pipeline as down and left out of the plan. */
	if (KILL_PID) {
		process.kill(KILL_PID, 'SIGKILL');
		const gone = STAGES[STAGES.length - 1];
		ok(await until(page, (a) => {
			const li = document.querySelector(`#left-out li[data-address="${a}"]`);
			return !!li && li.dataset.state === 'down' && !document.getElementById('left-out').hidden &&
				![...document.querySelectorAll('#pipeline .addr')].some((e) => e.textContent === a);
		}, gone, T), `a killed stage is shown down and out of the plan (${gone}: ${await page.evaluate(() =>
			document.getElementById('left-out').innerText.replace(/\s+/g, ' ').trim())})`);
		ok(await until(page, () => /running/.test(document.getElementById('run-pill').dataset.state)),
			'the run goes on without it');
	}

	/* Cancel from the page. */
	await page.click('#cancel-run');
	ok(await until(page, () => /cancelled|done/.test(document.getElementById('run-pill').dataset.state)),
		`the run is cancelled from the page (${await page.getAttribute('#run-pill', 'data-state')})`);

	/* A finished run stays readable: its row in the runs table opens its
	 * charts (from the coordinator's history) and its pipeline. */
	await page.click('#runs-body tr[data-run]');
	ok(await until(page, () => !document.getElementById('view-note').hidden &&
		Chart.getChart('chart-throughput').data.datasets[0].data.length >= 3 &&
		Chart.getChart('chart-latency').data.datasets[0].data.length >= 3 &&
		document.querySelectorAll('#pipeline .node.stage').length >= 1 &&
		/over the whole run/.test(document.getElementById('pipe-note').textContent)),
	`the ended run's row shows its charts and pipeline (${await page.evaluate(() =>
		document.getElementById('view-text').textContent + '; ' + Chart.getChart('chart-throughput').data.datasets[0].data.length +
		' throughput points; ' + document.getElementById('pipe-note').textContent)})`);
	const viewShot = path.join(OUT, 'dashboard-run-view.png');
	await page.screenshot({ path: viewShot, fullPage: true });
	console.log(`# screenshot ${viewShot}`);
	await page.click('#view-live');
	ok(await until(page, () => document.getElementById('view-note').hidden), '"back to live" leaves it');

	/* Replicated pipelines from the form: two groups of one stage each,
	 * each running every block; the pipeline view draws a row per group
	 * (the second stage was killed above: its group is dropped). */
	await page.click('#run-form details summary'); /* "More" */
	await page.fill('#f-groups', '1, 1');
	await page.fill('#f-split', '|');
	await page.click('#start-run');
	ok(await until(page, () => document.querySelectorAll('#pipeline .group-row').length === 2 &&
		document.querySelector('#pipeline .group-row[data-group="0"] .node.stage') !== null),
	`a run with groups [1, 1] shows a row per group (${await page.evaluate(() =>
		[...document.querySelectorAll('#pipeline .group-row .group-label')].map((e) => e.textContent).join('; ') ||
		document.getElementById('run-status').textContent)})`);
	/* "Change the split" names the group during a run with several. */
	ok(await until(page, () => !document.getElementById('split-group-label').hidden &&
		document.getElementById('split-group').options.length === 2),
	'the split form offers the run\'s two groups');
	await page.selectOption('#split-group', '0');
	await page.fill('#split-input', '9');
	await page.click('#apply-split');
	ok(await until(page, () => /give 0 points/.test(document.getElementById('split-status').textContent)),
		`a re-split of group 0 is sent for that group (${await page.textContent('#split-status')})`);
	const groupsShot = path.join(OUT, 'dashboard-groups.png');
	await page.locator('#pipeline').screenshot({ path: groupsShot });
	console.log(`# screenshot ${groupsShot}`);
	ok(await page.isVisible('#split-group'), 'the group choice is on screen');
	await page.click('#cancel-run');
	await until(page, () => /cancelled|done|failed/.test(document.getElementById('run-pill').dataset.state));
	ok(await until(page, () => document.getElementById('split-group-label').hidden) &&
		!(await page.isVisible('#split-group')), 'without a groups run the split form has no group choice');
	await page.fill('#f-groups', '');

	/* Text from the server stays text: a dataset path that looks like markup
	 * comes back in the API's error (or the failed run's) as characters. */
	await page.fill('#f-dataset', '/nonexistent/<img id="pn-inject" src="x">.bin');
	await page.fill('#f-split', 'auto');
	await page.click('#start-run');
	const echoed = await until(page, () => document.body.innerText.includes('<img id="pn-inject"'), null, 15000);
	ok(echoed && (await page.$('#pn-inject')) === null,
		'server text is shown as text, never as markup');
	ok(pageErrors.length === 0, `no script errors on the page${pageErrors.length ? ': ' + pageErrors.join(' | ') : ''}`);
} catch (e) {
	ok(false, `the browser test ran to its end: ${e && e.stack ? e.stack : e}`);
	try {
		const p = path.join(OUT, 'dashboard-failure.png');
		await page.screenshot({ path: p, fullPage: true });
		console.log(`# screenshot ${p}`);
	} catch (e2) {
		/* the page is gone */
	}
} finally {
	await ctx.close();
}
process.exit(failed ? 1 : 0);

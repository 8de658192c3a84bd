/* Runs: the table, a chosen run's charts, the run state and the KPIs. */
import { $, S, el, num, pct, showError, splitText, str } from './util.mjs';
import { api } from './api.mjs';
import { charts, fillCharts, resetTimeCharts } from './charts.mjs';
import { renderPipeline } from './pipeline.mjs';
import { activeSplit } from './plan.mjs';

/* ---- runs ---- */
export function rememberRun(r) {
	if (!r || r.id === undefined || r.id === null) return;
	S.runs.set(r.id, r);
	const cur = S.run;
	if (!cur || r.id >= cur.id) S.run = r;
	renderRuns();
	renderRunState();
}

export async function loadRuns() {
	try {
		const d = await api('GET', 'runs');
		for (const r of (d && d.runs) || []) S.runs.set(r.id, r);
		let latest = null;
		for (const r of S.runs.values()) if (!latest || r.id > latest.id) latest = r;
		if (latest && (!S.run || latest.id >= S.run.id)) S.run = latest;
		renderRuns();
		renderRunState();
		/* A page opened after a run still shows that run's charts. */
		if (latest && !runActive() && latest.state !== 'queued' && S.chartRun === null) showRun(latest.id, true);
	} catch (e) {
		/* the runs table is a convenience: the stream carries the rest */
	}
}

export function renderRuns() {
	const rows = [...S.runs.values()].sort((a, b) => b.id - a.id).slice(0, 12).map((r) => el('tr', {
		dataset: { run: str(r.id), state: str(r.state) }, tabindex: '0', class: 'pick' + (S.view && S.view.id === r.id ? ' viewing' : ''),
		title: `run ${r.id}: its charts and pipeline`,
	},
		el('td', null, str(r.id)),
		el('td', null, el('span', { class: 'state', dataset: { state: str(r.state) } }, str(r.state))),
		el('td', null, str(r.mode)),
		el('td', null, splitText(r.split)),
		el('td', null, str(r.wire)),
		el('td', null, str(r.batch_size)),
		el('td', { class: 'n' }, `${str(r.images_done)} / ${str(r.samples)}`),
		el('td', { class: 'n' }, pct(r.accuracy, 2)),
		el('td', { class: 'n' }, num(r.throughput_img_s)),
		el('td', { class: 'n' }, num(r.steady_img_s)),
		el('td', { class: 'n' }, r.latency_ms ? num(r.latency_ms.p50) : '–'),
		el('td', { class: 'note' }, str(r.error))));
	$('runs-body').replaceChildren(...(rows.length ? rows : [el('tr', null, el('td', { colspan: '12', class: 'muted' }, 'No runs yet.'))]));
}

export async function fetchHistory(id) {
	return Promise.all([api('GET', `runs/${id}/history`), api('GET', `runs/${id}`)]);
}

/* A run chosen in the runs table: its charts and its pipeline over the
 * whole run. Live figures go on in the KPIs; the charts stay on the
 * chosen run until "back to live" or the next run starts. */
export async function showRun(id, quiet) {
	let hist, run;
	try {
		[hist, run] = await fetchHistory(id);
	} catch (e) {
		if (!quiet) showError(...apiErrorText(e));
		return;
	}
	if (quiet && (runActive() || S.chartRun !== null)) return; /* live figures came first */
	S.view = { id, run };
	resetTimeCharts(id);
	fillCharts(hist, run);
	$('view-text').textContent = `showing run ${id} (${str(run.state)})`;
	$('view-note').hidden = false;
	renderRuns();
	renderPipeline();
}

export function leaveView() {
	if (!S.view) return;
	S.view = null;
	$('view-note').hidden = true;
	resetTimeCharts(null);
	renderRuns();
	renderPipeline();
	if (S.run && S.run.state === 'running') catchUp(S.run.id);
}

/* The live run's charts from its start, not only from when the page
 * began to listen; the stream's points go on from the run's start time. */
export async function catchUp(id) {
	try {
		const [hist, run] = await fetchHistory(id);
		if (S.view || (S.chartRun !== null && S.chartRun !== id) || !Number.isFinite(hist.start_time)) return;
		resetTimeCharts(id);
		S.t0 = hist.start_time;
		fillCharts(hist, run);
	} catch (e) {
		/* the stream goes on from now */
	}
}

export function runActive() {
	const r = S.run;
	return !!r && (r.state === 'running' || r.state === 'queued');
}

export function renderRunState() {
	const r = S.run;
	const pill = $('run-pill');
	const sum = S.summary;
	const state = r ? r.state : (sum && sum.state) || 'idle';
	pill.dataset.state = str(state);
	pill.textContent = r ? `run ${r.id} · ${str(r.state)}` : 'no run';
	$('cancel-run').disabled = !runActive();
	$('start-run').disabled = runActive();
}

/* ---- KPIs ---- */
export function renderKpis() {
	/* While a run goes the stream's figures; between runs the last run's. */
	const live = S.summary && S.summary.run !== null && S.summary.run !== undefined;
	const s = live ? S.summary : {};
	const r = S.run || {};
	$('k-now').textContent = s.state === 'running' ? num(s.img_s_now) : '–';
	$('k-overall').textContent = num(s.img_s_overall ?? r.throughput_img_s);
	$('k-pred').textContent = num(s.predicted_img_s);
	$('k-acc').textContent = pct(s.accuracy ?? r.accuracy, 2);
	const done = s.images_done ?? r.images_done;
	const total = s.samples ?? r.samples;
	$('k-images').textContent = done !== undefined ? `${done} / ${str(total)}` : '–';
	$('k-progress').style.width = total ? Math.min(100, (100 * done) / total).toFixed(1) + '%' : '0';
	const split = S.summary && Array.isArray(S.summary.split) ? S.summary.split : r.split;
	$('k-split').textContent = splitText(split);
	$('k-epoch').textContent = S.summary && S.summary.epoch !== undefined ? `epoch ${S.summary.epoch}` : '';
	$('k-inflight').textContent = s.inflight !== undefined && s.state === 'running' ? String(s.inflight) : '–';
	const bn = s.bottleneck;
	const bst = bn && bn.kind === 'stage' && Array.isArray(s.stages) ? s.stages.find((x) => x.index === bn.index) : null;
	$('k-bottleneck').textContent = bn && bn.kind ? `${str(bn.kind)} ${str(bn.index ?? '')}`.trim() : '–';
	$('k-bottleneck-unit').textContent = bst ? `${pct(bst.utilisation, 0)} busy` : '';
	const l = S.latencies.slice(-50).sort((a, b) => a - b);
	$('k-lat').textContent = l.length ? num(l[(l.length - 1) >> 1]) : '–';
}

/* The groups of the running run (a list when it has several, else null):
 * "Change the split" then names the group it re-splits. */
export function splitGroups() {
	const r = S.run;
	return r && r.state === 'running' && Array.isArray(r.groups) && r.groups.length > 1 ? r.groups : null;
}

export function syncSplitInput() {
	const groups = splitGroups(), sel = $('split-group');
	$('split-group-label').hidden = !groups;
	if (groups && sel.options.length !== groups.length) {
		const keep = Math.min(Number(sel.value) || 0, groups.length - 1);
		sel.replaceChildren(...groups.map((g, k) => {
			const o = document.createElement('option');
			o.value = String(k);
			o.textContent = `${k} (${Array.isArray(g.stages) ? g.stages.length : '?'} stages)`;
			return o;
		}));
		sel.value = String(keep);
	}
	const inp = $('split-input');
	if (S.splitEdited || document.activeElement === inp) return;
	const sp = groups ? (groups[Number(sel.value)] || {}).split || [] : activeSplit();
	if (sp.length) inp.value = sp.join(', ');
}

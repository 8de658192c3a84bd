/* The event stream (GET api/v1/events) and what each event changes. */
import { $, API, MAX_BATCH_POINTS, MAX_TP_POINTS, S, log, num, pct, showError, splitText, str } from './util.mjs';
import { charts, push, redraw, resetTimeCharts } from './charts.mjs';
import { renderPipeline } from './pipeline.mjs';
import { activeSplit, loadCluster, renderBlocks, renderModel, renderPlan, sameSplit, schedulePlan } from './plan.mjs';
import { catchUp, leaveView, rememberRun, renderKpis, renderRunState, renderRuns, showRun, syncSplitInput } from './runs.mjs';

/* ---- the event stream ---- */
export function parse(ev) {
	try {
		return JSON.parse(ev.data);
	} catch (e) {
		console.warn('pipenet: unreadable event', ev.type, e);
		return null;
	}
}

export function onHello(d) {
	if (d.version) $('version').textContent = 'v' + str(d.version);
	const st = d.cluster && Array.isArray(d.cluster.stages) ? d.cluster.stages.length : null;
	log(`connected to the coordinator` + (st !== null ? `: ${st} stage${st === 1 ? '' : 's'}` : '') +
		(d.run ? `, run ${str(d.run.id)} ${str(d.run.state)}` : ''));
	if (d.cluster) {
		S.cluster = d.cluster;
		renderModel();
	}
	if (d.run) {
		rememberRun(d.run);
		if (d.run.state === 'running' && d.run.id !== S.chartRun && !S.view) {
			resetTimeCharts(d.run.id);
			S.helloElapsed = { s: Number(d.run.elapsed_s) || 0, at: performance.now() };
			catchUp(d.run.id);
		}
		if (Array.isArray(d.run.split)) S.split = d.run.split;
	} else {
		renderRunState();
	}
	renderPipeline();
	renderKpis();
	syncSplitInput();
	schedulePlan(true);
	if (!d.cluster) loadCluster();
}

export function runTime(t) {
	if (S.t0 === null) {
		const h = S.helloElapsed;
		S.t0 = h ? t - h.s - (performance.now() - h.at) / 1000 : t;
		S.helloElapsed = null;
	}
	return t - S.t0;
}

export function onSummary(d) {
	S.summary = d;
	if (Array.isArray(d.split)) S.split = d.split;
	if (d.epoch !== undefined) S.epoch = d.epoch;
	const running = d.run !== null && d.run !== undefined && d.state === 'running';
	if (running && !S.view) {
		if (d.run !== S.chartRun) resetTimeCharts(d.run);
		if (S.run && S.run.id === d.run && S.run.state !== d.state) {
			S.run = Object.assign({}, S.run, { state: d.state });
			renderRunState();
		}
		if (charts.throughput && Number.isFinite(d.time)) {
			const x = runTime(d.time);
			const ds = charts.throughput.data.datasets;
			if (Number.isFinite(d.img_s_now)) push(ds[0].data, { x, y: d.img_s_now }, MAX_TP_POINTS);
			if (Number.isFinite(d.img_s_overall)) push(ds[1].data, { x, y: d.img_s_overall }, MAX_TP_POINTS);
			if (Number.isFinite(d.predicted_img_s)) push(ds[2].data, { x, y: d.predicted_img_s }, MAX_TP_POINTS);
			redraw(charts.throughput);
		}
	}
	if (running && S.view && S.run && S.run.id === d.run && S.run.state !== d.state) {
		S.run = Object.assign({}, S.run, { state: d.state });
		renderRunState();
	}
	const r = running ? S.runs.get(d.run) : null;
	if (r) {
		/* the runs table follows the stream between run events */
		if (Number.isFinite(d.images_done)) r.images_done = d.images_done;
		if (d.accuracy !== undefined) r.accuracy = d.accuracy;
		if (Number.isFinite(d.img_s_overall)) r.throughput_img_s = d.img_s_overall;
		if (Array.isArray(d.split)) r.split = d.split;
		renderRuns();
	}
	renderKpis();
	renderPipeline();
	syncSplitInput();
	if (!sameSplit(S.drawnSplit, activeSplit())) renderBlocks();
	renderPlan();
}

export function onBatch(d) {
	if (S.view) {
		if (Number.isFinite(d.latency_ms)) push(S.latencies, d.latency_ms, 200);
		scheduleKpis();
		return;
	}
	if (d.run !== undefined && d.run !== null && d.run !== S.chartRun) resetTimeCharts(d.run);
	if (Array.isArray(d.stages)) S.lastBatchStages = d.stages;
	const x = Number(d.images_done);
	if (Number.isFinite(d.latency_ms)) {
		push(S.latencies, d.latency_ms, 200);
		if (charts.latency && Number.isFinite(x)) {
			push(charts.latency.data.datasets[0].data, { x, y: d.latency_ms }, MAX_BATCH_POINTS);
			redraw(charts.latency);
		}
	}
	if (charts.accuracy && Number.isFinite(x) && d.accuracy !== null && Number.isFinite(d.accuracy)) {
		push(charts.accuracy.data.datasets[0].data, { x, y: d.accuracy * 100 }, MAX_BATCH_POINTS);
		redraw(charts.accuracy);
	}
	if (S.summary && S.summary.run === d.run) {
		/* keep the figures moving between summaries */
		if (d.images_done !== undefined) S.summary.images_done = d.images_done;
		if (d.accuracy !== undefined) S.summary.accuracy = d.accuracy;
	}
	scheduleKpis();
}

let kpiQueued = false;

export function scheduleKpis() {
	if (kpiQueued) return;
	kpiQueued = true;
	setTimeout(() => {
		kpiQueued = false;
		renderKpis();
	}, 200);
}

export function onResplit(d) {
	const label = `${splitText(d.from)} → ${splitText(d.to)}`;
	if (charts.throughput && !S.view && Number.isFinite(d.time) && (d.run === S.chartRun || S.chartRun === null)) {
		charts.throughput.pnMarks.push({ x: runTime(d.time), label });
		redraw(charts.throughput);
	}
	if (charts.latency && !S.view && S.summary && Number.isFinite(S.summary.images_done)) {
		charts.latency.pnMarks = (charts.latency.pnMarks || []).concat([{ x: S.summary.images_done, label: '' }]);
	}
	if (Array.isArray(d.to)) S.split = d.to;
	if (d.epoch !== undefined) S.epoch = d.epoch;
	S.splitEdited = false;
	syncSplitInput();
	const before = Number.isFinite(d.img_s_before) ? `; ${num(d.img_s_before)} img/s before` : '';
	const why = d.reason && d.reason !== 'PUT /api/v1/split' ? ` — ${str(d.reason)}` : '';
	log(`re-split ${label} (epoch ${str(d.epoch)})${before}${why}`, 'resplit');
	renderBlocks();
	renderPlan();
	schedulePlan(true, 1500);
}

export function onRun(r) {
	const prev = S.runs.get(r.id);
	rememberRun(r);
	if (!prev || prev.state !== r.state) {
		const what = r.state === 'running' || r.state === 'queued'
			? `run ${r.id} ${r.state}: ${str(r.samples)} images, ${str(r.mode)}, split ${splitText(r.split)}, batch ${str(r.batch_size)}, ${str(r.wire)}`
			: `run ${r.id} ${r.state}: ${str(r.images_done)} images, ${pct(r.accuracy, 2)}, ${num(r.throughput_img_s)} img/s` +
			  (r.error ? ` (${str(r.error)})` : '');
		log(what, r.state === 'failed' ? 'bad' : '');
		if (r.state === 'failed') showError(`Run ${str(r.id)} failed:`, str(r.error));
	}
	if (r.state === 'running' && (!prev || prev.state !== 'running')) leaveView(); /* a new run: live again */
	if (r.state === 'running' && r.id !== S.chartRun && !S.view) resetTimeCharts(r.id);
	if (S.view && S.view.id === r.id && r.state !== 'running' && r.state !== 'queued') showRun(r.id);
	if (Array.isArray(r.split) && (r.state === 'running' || r.state === 'queued')) S.split = r.split;
	if (!sameSplit(S.drawnSplit, activeSplit())) renderBlocks();
	renderKpis();
	renderPlan();
	schedulePlan(false, 300);
	if (r.state !== 'running' && r.state !== 'queued') loadCluster();
}

/* A stage went down, was refused or came back: the run re-plans. */
export function onStage(d) {
	const bad = d.state === 'down' || d.state === 'refused';
	log(`stage ${str(d.address)} ${str(d.state)}${bad && d.reason ? ': ' + str(d.reason) : ''}`, bad ? 'bad' : '');
	loadCluster();
}

let es = null;
let retryTimer = null;

export function setConn(state, text) {
	const c = $('conn');
	c.dataset.state = state;
	c.textContent = text || state;
}

export function connect() {
	clearTimeout(retryTimer);
	if (es) es.close();
	setConn('connecting');
	es = new EventSource(API + 'events');
	const on = (name, fn) => es.addEventListener(name, (ev) => {
		const d = parse(ev);
		if (d && typeof d === 'object') {
			try {
				fn(d);
			} catch (e) {
				console.error('pipenet: handling', name, e);
			}
		}
	});
	es.onopen = () => setConn('live');
	es.onerror = () => {
		if (es.readyState === EventSource.CLOSED) {
			setConn('offline', 'offline, retrying');
			retryTimer = setTimeout(connect, 3000);
		} else {
			setConn('connecting', 'reconnecting');
		}
	};
	on('hello', onHello);
	on('summary', onSummary);
	on('batch', onBatch);
	on('resplit', onResplit);
	on('stage', onStage);
	on('run', onRun);
}

/* The charts (Chart.js, served at /chart.js): set-up, redraw, the time series. */
import { $, S, hasChart, showError, splitText } from './util.mjs';
import { blockTooltip, planTooltip } from './plan.mjs';

/* ---- charts ---- */
export function cssVar(name, fallback) {
	const v = getComputedStyle(document.documentElement).getPropertyValue(name).trim();
	return v || fallback;
}

export const C = {};

export function readColours() {
	C.text = cssVar('--text', '#1d2430');
	C.muted = cssVar('--muted', '#5b6472');
	C.grid = cssVar('--grid', '#e3e7ee');
	C.accent = cssVar('--accent', '#2563eb');
	C.accent2 = cssVar('--accent-2', '#d97706');
	C.good = cssVar('--good', '#15803d');
	C.mark = cssVar('--mark', '#c0262d');
	C.bar = cssVar('--bar-idle', '#b8c2d1');
	C.stages = [0, 1, 2, 3, 4, 5, 6, 7].map((i) => cssVar('--stage-' + i, '#2563eb'));
}

export const stageColour = (i) => C.stages[((i % C.stages.length) + C.stages.length) % C.stages.length];

/* Our own plugin: vertical marks (x in the x scale's units; a category
 * scale takes fractional indexes, so s - 0.5 is the gap before bar s)
 * and horizontal lines (y in the y scale's units), each with a label. */
/* Text on a card-coloured box, so it stays legible over bars and lines. */
export function label(ctx, text, x, y, w) {
	const colour = ctx.fillStyle;
	ctx.fillStyle = cssVar('--card', '#fff');
	ctx.globalAlpha = 0.85;
	ctx.fillRect(x - 2, y - 1, w + 4, 14);
	ctx.globalAlpha = 1;
	ctx.fillStyle = colour;
	ctx.textAlign = 'left';
	ctx.textBaseline = 'top';
	ctx.fillText(text, x, y + 1);
}

export const marksPlugin = {
	id: 'pnMarks',
	afterDatasetsDraw(chart) {
		const { ctx, chartArea: a, scales } = chart;
		const vx = chart.pnMarks || [];
		const hy = chart.pnLines || [];
		if (!a) return;
		ctx.save();
		if (chart.pnEmpty && chart.data.datasets.every((d) => !d.data.length)) {
			ctx.fillStyle = C.muted;
			ctx.font = `14px ${cssVar('--font', 'system-ui, sans-serif')}`;
			ctx.textAlign = 'center';
			ctx.textBaseline = 'middle';
			ctx.fillText(chart.pnEmpty, (a.left + a.right) / 2, (a.top + a.bottom) / 2);
		}
		ctx.font = `600 11px ${cssVar('--font', 'system-ui, sans-serif')}`;
		ctx.lineWidth = 1.5;
		let row = 0;
		for (const m of vx) {
			const x = scales.x.getPixelForValue(m.x);
			if (!Number.isFinite(x) || x < a.left - 1 || x > a.right + 1) continue;
			ctx.strokeStyle = ctx.fillStyle = m.colour || C.mark;
			ctx.setLineDash([5, 4]);
			ctx.beginPath();
			ctx.moveTo(x, a.top);
			ctx.lineTo(x, a.bottom);
			ctx.stroke();
			if (m.label) {
				const w = ctx.measureText(m.label).width;
				const left = x + 4 + w > a.right;
				const tx = left ? x - 4 - w : x + 4;
				const ty = a.top + 2 + 14 * (row++ % 2);
				label(ctx, m.label, tx, ty, w);
			}
		}
		for (const l of hy) {
			const y = scales.y.getPixelForValue(l.y);
			if (!Number.isFinite(y) || y < a.top - 1 || y > a.bottom + 1) continue;
			ctx.strokeStyle = ctx.fillStyle = l.colour || C.mark;
			ctx.setLineDash(l.dash || []);
			ctx.beginPath();
			ctx.moveTo(a.left, y);
			ctx.lineTo(a.right, y);
			ctx.stroke();
			if (l.label) {
				const w = ctx.measureText(l.label).width;
				label(ctx, l.label, a.right - 4 - w, y - 15, w);
			}
		}
		ctx.restore();
	},
};

export const charts = {};
export const dirty = new Set();
let frameQueued = false;

export function redraw(chart) {
	if (!chart) return;
	dirty.add(chart);
	if (frameQueued) return;
	frameQueued = true;
	const flush = () => {
		frameQueued = false;
		for (const c of dirty) {
			/* An empty chart shows its message, not a bare 0..1 frame. */
			const empty = c.data.datasets.every((d) => !d.data.length);
			for (const sc of Object.values(c.options.scales)) sc.display = !empty;
			c.update('none');
		}
		dirty.clear();
	};
	/* A hidden tab gets no animation frames; a timer still runs. */
	if (document.hidden) setTimeout(flush, 250);
	else requestAnimationFrame(flush);
}

export function baseOptions(xTitle, yTitle) {
	return {
		responsive: true,
		maintainAspectRatio: false,
		animation: false,
		normalized: true,
		interaction: { mode: 'nearest', intersect: false, axis: 'x' },
		plugins: {
			legend: { labels: { color: C.text, boxWidth: 14, boxHeight: 2, usePointStyle: false } },
			tooltip: { enabled: true },
		},
		scales: {
			x: {
				type: 'linear',
				title: { display: !!xTitle, text: xTitle, color: C.muted },
				ticks: { color: C.muted, maxRotation: 0 },
				grid: { color: C.grid },
			},
			y: {
				beginAtZero: true,
				title: { display: !!yTitle, text: yTitle, color: C.muted },
				ticks: { color: C.muted },
				grid: { color: C.grid },
			},
		},
	};
}

export function line(label, colour, extra) {
	return Object.assign({
		label,
		data: [],
		borderColor: colour,
		backgroundColor: colour,
		borderWidth: 2,
		pointRadius: 0,
		pointHitRadius: 6,
		tension: 0.25,
	}, extra || {});
}

export function makeCharts() {
	if (!hasChart()) {
		showError('Charts are unavailable:', 'chart.js did not load (the coordinator serves it from Debian\'s libjs-chart.js).');
		return;
	}
	readColours();
	Chart.defaults.font.family = cssVar('--font', 'system-ui, sans-serif');
	Chart.defaults.color = C.text;

	const tp = baseOptions('seconds since the run started', 'images / s');
	charts.throughput = new Chart($('chart-throughput'), {
		type: 'line',
		data: {
			datasets: [
				line('now', C.accent),
				line('overall', C.accent2, { borderWidth: 1.5 }),
				line('planner', C.good, { borderDash: [6, 4], borderWidth: 1.5, stepped: true, tension: 0 }),
			],
		},
		options: tp,
		plugins: [marksPlugin],
	});
	charts.throughput.pnMarks = [];

	const lat = baseOptions('images done', 'ms per batch');
	lat.plugins.legend.display = false;
	charts.latency = new Chart($('chart-latency'), {
		type: 'line',
		data: { datasets: [line('latency', C.accent, { borderWidth: 1, tension: 0 })] },
		options: lat,
		plugins: [marksPlugin],
	});

	const acc = baseOptions('images done', 'top-1 %');
	acc.plugins.legend.display = false;
	acc.scales.y.beginAtZero = false;
	acc.scales.y.suggestedMax = 100;
	charts.accuracy = new Chart($('chart-accuracy'), {
		type: 'line',
		data: { datasets: [line('accuracy', C.good, { tension: 0 })] },
		options: acc,
	});

	const bl = baseOptions('block', 'ms per batch');
	bl.scales.x = { type: 'category', ticks: { color: C.muted, autoSkip: true, autoSkipPadding: 6, maxRotation: 0 }, grid: { display: false },
		title: { display: true, text: 'block', color: C.muted } };
	bl.plugins.legend.display = false;
	bl.interaction = { mode: 'index', intersect: false };
	bl.plugins.tooltip.callbacks = { label: blockTooltip };
	charts.blocks = new Chart($('chart-blocks'), {
		type: 'bar',
		data: { labels: [], datasets: [{ label: 'ms per batch', data: [], backgroundColor: [], borderRadius: 3 }] },
		options: bl,
		plugins: [marksPlugin],
	});
	charts.blocks.pnMarks = [];

	const pl = baseOptions('split', 'predicted images / s');
	pl.scales.x = { type: 'category', ticks: { color: C.muted, maxRotation: 0, autoSkip: true, autoSkipPadding: 6 }, grid: { display: false },
		title: { display: true, text: 'split point(s)', color: C.muted } };
	pl.plugins.legend.display = false;
	pl.interaction = { mode: 'index', intersect: false };
	pl.plugins.tooltip.callbacks = { label: planTooltip };
	pl.onClick = (evt, elements) => {
		if (!elements.length || !S.planShown) return;
		const c = S.planShown[elements[0].index];
		if (c && Array.isArray(c.split)) {
			$('split-input').value = c.split.join(', ');
			S.splitEdited = true;
			$('split-input').focus();
		}
	};
	charts.plan = new Chart($('chart-plan'), {
		type: 'bar',
		data: { labels: [], datasets: [{ label: 'predicted img/s', data: [], backgroundColor: [], borderRadius: 2 }] },
		options: pl,
		plugins: [marksPlugin],
	});
	charts.plan.pnLines = [];
	charts.throughput.pnEmpty = 'Points come once a second while a run goes.';
	charts.latency.pnEmpty = 'No batches yet.';
	charts.accuracy.pnEmpty = 'No batches yet.';
	charts.blocks.pnEmpty = 'No block costs yet.';
	charts.plan.pnEmpty = 'No planner figures yet.';
	for (const c of Object.values(charts)) redraw(c);
}

export function resetTimeCharts(runId) {
	S.chartRun = runId;
	S.t0 = null;
	S.latencies = [];
	if (!charts.throughput) return;
	for (const d of charts.throughput.data.datasets) d.data = [];
	charts.throughput.pnMarks = [];
	charts.latency.data.datasets[0].data = [];
	charts.accuracy.data.datasets[0].data = [];
	redraw(charts.throughput);
	redraw(charts.latency);
	redraw(charts.accuracy);
}

export function push(arr, point, max) {
	arr.push(point);
	if (arr.length > max) arr.splice(0, arr.length - max);
}

/* A run's charts from GET api/v1/runs/ID/history, which the coordinator
 * keeps after the run ends: throughput a point a second, latency and
 * accuracy a point a batch, re-splits marked from the run's epochs. */
export function fillCharts(hist, run) {
	if (!charts.throughput) return;
	const sec = hist.seconds || {};
	const t = sec.t_s || [];
	const series = (xs, ys, scale) => {
		const out = [];
		xs.forEach((x, j) => {
			const y = (ys || [])[j];
			if (y !== null && y !== undefined && Number.isFinite(y)) out.push({ x, y: y * (scale || 1) });
		});
		return out;
	};
	const ds = charts.throughput.data.datasets;
	['img_s_now', 'img_s_overall', 'predicted_img_s'].forEach((k, i) => {
		ds[i].data = series(t, sec[k]);
	});
	const eps = Array.isArray(run.epochs) ? run.epochs : [];
	const marks = [];
	for (let e = 1; e < eps.length; e++)
		if (Number.isFinite(eps[e].started_s)) marks.push({ x: eps[e].started_s, label: `${splitText(eps[e - 1].split)} → ${splitText(eps[e].split)}` });
	charts.throughput.pnMarks = marks;
	const b = hist.batches || {};
	const n = b.images_done || [];
	charts.latency.data.datasets[0].data = series(n, b.latency_ms);
	charts.accuracy.data.datasets[0].data = series(n, b.accuracy, 100);
	for (const c of [charts.throughput, charts.latency, charts.accuracy]) redraw(c);
}

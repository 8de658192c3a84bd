/* pipenet dashboard: live figures from the coordinator's event stream
 * (GET api/v1/events), the planner (api/v1/plan) and the cluster
 * (api/v1/cluster), and the controls that start a run and change the split.
 * Plain script, no build step; charts with Chart.js (served at /chart.js).
 * Everything the server sends is shown with textContent, never as HTML. */
'use strict';

(function () {
	const API = 'api/v1/';
	const TOKEN_KEY = 'pipenet.token';
	const FORM_KEY = 'pipenet.runform';
	const MAX_TP_POINTS = 900; /* one a second: 15 minutes */
	const MAX_BATCH_POINTS = 2000;
	const MAX_LOG = 60;
	const MAX_CANDIDATES = 40;

	const $ = (id) => document.getElementById(id);
	const hasChart = () => typeof window.Chart === 'function';

	/* ---- state ---- */
	const S = {
		cluster: null, /* GET api/v1/cluster */
		plan: null, /* GET api/v1/plan */
		planKey: '',
		planError: '',
		summary: null, /* the last summary event */
		run: null, /* the last RUN seen for the current run */
		runs: new Map(), /* id -> RUN */
		split: null, /* the split in force, from the stream */
		epoch: 0,
		chartRun: null, /* the run the time charts show */
		view: null, /* {id, run}: a run chosen in the runs table, shown instead of the live one */
		t0: null, /* event time of the run's start, in s */
		lastBatchStages: null,
		latencies: [],
		splitEdited: false,
	};

	/* ---- formatting ---- */
	function num(v, digits) {
		if (v === null || v === undefined || !Number.isFinite(Number(v))) return '–';
		return Number(v).toFixed(digits === undefined ? 1 : digits);
	}
	function pct(v, digits) {
		if (v === null || v === undefined || !Number.isFinite(Number(v))) return '–';
		return (Number(v) * 100).toFixed(digits === undefined ? 1 : digits) + ' %';
	}
	function bytes(v) {
		if (v === null || v === undefined || !Number.isFinite(Number(v))) return '–';
		let n = Number(v);
		const units = ['B', 'KiB', 'MiB', 'GiB'];
		let u = 0;
		while (n >= 1024 && u < units.length - 1) {
			n /= 1024;
			u++;
		}
		return (u === 0 ? n.toFixed(0) : n.toFixed(n < 10 ? 2 : 1)) + ' ' + units[u];
	}
	function splitText(split) {
		if (split === 'auto') return 'auto';
		if (!Array.isArray(split)) return '–';
		return split.length ? split.join(', ') : 'none';
	}
	function clock(d) {
		return (d || new Date()).toLocaleTimeString([], { hour12: false });
	}
	function str(v) {
		return v === null || v === undefined ? '' : String(v);
	}

	/* el('div', {class: 'x', dataset: {a: 1}}, 'text', child): text children
	 * become text nodes, so server data never becomes markup. */
	function el(tag, attrs, ...kids) {
		const e = document.createElement(tag);
		for (const [k, v] of Object.entries(attrs || {})) {
			if (v === null || v === undefined || v === false) continue;
			if (k === 'class') e.className = v;
			else if (k === 'dataset') Object.assign(e.dataset, v);
			else if (k === 'style') Object.assign(e.style, v);
			else e.setAttribute(k, v === true ? '' : String(v));
		}
		for (const k of kids) {
			if (k === null || k === undefined || k === false) continue;
			e.append(k instanceof Node ? k : document.createTextNode(String(k)));
		}
		return e;
	}

	/* ---- errors and the event log ---- */
	function showError(title, detail) {
		const box = $('errors');
		const close = el('button', { type: 'button', class: 'close', 'aria-label': 'dismiss' }, '×');
		const item = el('div', { class: 'error' },
			el('p', null, el('strong', null, title), detail ? ' ' + detail : null), close);
		close.addEventListener('click', () => item.remove());
		box.prepend(item);
		while (box.children.length > 4) box.lastChild.remove();
	}
	function apiErrorText(e) {
		if (!(e instanceof ApiError)) return [String(e && e.message ? e.message : e), ''];
		const what = e.status ? `${e.method} ${e.path}: ${e.status} ${e.error}` : `${e.method} ${e.path}: ${e.error}`;
		return [what, e.detail];
	}
	function log(text, kind) {
		const list = $('log');
		list.prepend(el('li', { class: kind || '' }, el('time', null, clock()), ' ', text));
		while (list.children.length > MAX_LOG) list.lastChild.remove();
	}

	/* ---- REST, with the token asked once and kept in sessionStorage ---- */
	class ApiError extends Error {
		constructor(method, path, status, error, detail) {
			super(`${method} ${path}: ${status} ${error}`);
			Object.assign(this, { method, path, status, error, detail });
		}
	}

	let tokenPrompt = null; /* one dialog at a time, shared by concurrent requests */
	function askToken(why) {
		if (tokenPrompt) return tokenPrompt;
		const dlg = $('token-dialog');
		const input = $('token-input');
		$('token-why').textContent = why;
		input.value = '';
		tokenPrompt = new Promise((resolve) => {
			const done = (value) => {
				dlg.removeEventListener('close', onClose);
				$('token-cancel').removeEventListener('click', onCancel);
				if (dlg.open) dlg.close();
				tokenPrompt = null;
				resolve(value);
			};
			const onClose = () => done(dlg.returnValue === 'ok' && input.value ? input.value : null);
			const onCancel = () => {
				dlg.returnValue = 'cancel';
				dlg.close();
			};
			dlg.addEventListener('close', onClose);
			$('token-cancel').addEventListener('click', onCancel);
			dlg.returnValue = '';
			dlg.showModal();
			input.focus();
		});
		return tokenPrompt;
	}
	function showTokenButton() {
		$('forget-token').hidden = !sessionStorage.getItem(TOKEN_KEY);
	}

	async function api(method, path, body) {
		const url = API + path;
		for (let attempt = 0;; attempt++) {
			const headers = { Accept: 'application/json' };
			if (body !== undefined) headers['Content-Type'] = 'application/json';
			const token = sessionStorage.getItem(TOKEN_KEY);
			if (token) headers.Authorization = 'Bearer ' + token;
			let res;
			try {
				res = await fetch(url, {
					method,
					headers,
					body: body === undefined ? undefined : JSON.stringify(body),
					cache: 'no-store',
				});
			} catch (e) {
				throw new ApiError(method, '/' + url, 0, 'the coordinator did not answer', String(e.message || e));
			}
			const text = await res.text();
			let data = null;
			try {
				data = text ? JSON.parse(text) : null;
			} catch (e) {
				data = null;
			}
			if (res.status === 401 && attempt < 2) {
				if (token) sessionStorage.removeItem(TOKEN_KEY);
				const t = await askToken(token ? 'The coordinator refused the token; enter it again.'
					: 'The coordinator needs its API token for this.');
				if (t) {
					sessionStorage.setItem(TOKEN_KEY, t.trim());
					showTokenButton();
					continue;
				}
			}
			showTokenButton();
			if (!res.ok) {
				const err = data && typeof data === 'object' ? data : {};
				throw new ApiError(method, '/' + url, res.status, str(err.error) || res.statusText || 'error',
					str(err.detail) || (data ? '' : text.slice(0, 200)));
			}
			return data;
		}
	}

	/* ---- charts ---- */
	function cssVar(name, fallback) {
		const v = getComputedStyle(document.documentElement).getPropertyValue(name).trim();
		return v || fallback;
	}
	const C = {};
	function readColours() {
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
	const stageColour = (i) => C.stages[((i % C.stages.length) + C.stages.length) % C.stages.length];

	/* Our own plugin: vertical marks (x in the x scale's units; a category
	 * scale takes fractional indexes, so s - 0.5 is the gap before bar s)
	 * and horizontal lines (y in the y scale's units), each with a label. */
	/* Text on a card-coloured box, so it stays legible over bars and lines. */
	function label(ctx, text, x, y, w) {
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
	const marksPlugin = {
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

	const charts = {};
	const dirty = new Set();
	let frameQueued = false;
	function redraw(chart) {
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

	function baseOptions(xTitle, yTitle) {
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

	function line(label, colour, extra) {
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

	function makeCharts() {
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

	function resetTimeCharts(runId) {
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

	function push(arr, point, max) {
		arr.push(point);
		if (arr.length > max) arr.splice(0, arr.length - max);
	}

	/* ---- the pipeline view ---- */
	/* The stages as the stream last described them, else as the cluster is. */
	function currentStages() {
		const sum = S.summary;
		if (sum && Array.isArray(sum.stages) && sum.stages.length) return sum.stages;
		const cl = S.cluster;
		if (cl && Array.isArray(cl.stages)) return cl.stages.map((s, i) => Object.assign({ index: i }, s));
		return [];
	}

	function renderPipeline() {
		const box = $('pipeline');
		const v = S.view && viewedPipeline(S.view.run);
		const stages = v ? v.stages : currentStages();
		const sum = v ? null : S.summary;
		const live = !!sum && sum.run !== null && sum.run !== undefined && sum.state === 'running';
		const hops = v ? v.hops : live && Array.isArray(sum.hops) ? sum.hops : [];
		const bn = v ? v.bottleneck : sum && sum.bottleneck;
		const cl = S.cluster && Array.isArray(S.cluster.stages) ? S.cluster.stages : [];
		const nblocks = (S.cluster && S.cluster.blocks) || 19;
		if (!stages.length) {
			box.replaceChildren(el('p', { class: 'muted' }, 'No stages: the coordinator computes every block itself.'));
			return;
		}
		const cc = v ? v.coordinator : live && sum.coordinator;
		const kids = [el('div', { class: 'node end' }, el('strong', null, 'coordinator'), el('span', { class: 'muted small' }, 'dataset → batches'),
			cc ? el('span', { class: 'coord-cpu muted small', title: "the coordinator's CPU over the run" },
				`CPU ${num(cc.cpu_ms_per_image, 3)} ms per image (${pct(cc.cpu_share, 1)} of a core)`) : null)];
		stages.forEach((s, i) => {
			kids.push(hopEl(hops[i], i, stages, false, bn));
			const info = cl.find((c) => c.address === s.address) || cl[i] || {};
			const first = s.first ?? info.first;
			const last = s.last ?? info.last;
			const ranged = Number.isInteger(first) && Number.isInteger(last);
			const isBn = bn && bn.kind === 'stage' && bn.index === (s.index ?? i);
			const u = Number(s.utilisation);
			const node = el('div', {
				class: 'node stage' + (isBn ? ' bottleneck' : ''),
				dataset: { index: String(s.index ?? i), first: ranged ? String(first) : '', last: ranged ? String(last) : '' },
				style: { borderTopColor: stageColour(s.index ?? i) },
			});
			const state = v ? '' : str(info.state || (live ? 'up' : ''));
			node.append(
				el('div', { class: 'stage-head' },
					el('strong', null, `Stage ${(s.index ?? i)}`),
					state ? el('span', { class: 'dot', dataset: { state }, title: state }, state) : null,
					isBn ? el('span', { class: 'tag' }, 'bottleneck') : null),
				el('div', { class: 'addr', title: 'address' }, str(s.address) || '–'),
				el('div', { class: 'range' }, ranged
					? `blocks ${first}–${last - 1}`
					: 'blocks not assigned',
				ranged ? el('span', { class: 'muted small' }, ` [${first}, ${last}) · ${last - first} of ${nblocks}`) : null));
			if (Number.isFinite(u)) {
				const w = Math.max(0, Math.min(1, u));
				node.append(el('div', { class: 'util', title: 'utilisation (busy fraction)' },
					el('div', { class: 'bar' }, el('span', { style: { width: (w * 100).toFixed(1) + '%', background: stageColour(s.index ?? i) } })),
					el('span', { class: 'util-text' }, pct(u, 0))));
			}
			const figs = [];
			if (s.compute_ms_per_batch !== undefined) figs.push(`${num(s.compute_ms_per_batch)} ms compute`);
			if (s.queue_ms_per_batch !== undefined) figs.push(`${num(s.queue_ms_per_batch)} ms queue`);
			if (!live && !v && info.last_contact_ms !== undefined && info.last_contact_ms !== null) figs.push(`seen ${num(info.last_contact_ms / 1000, 1)} s ago`);
			if (figs.length) node.append(el('div', { class: 'figs muted small' }, figs.join(' · ') + (live || v ? ' per batch' : '')));
			const cpu = (live || v) && s.cpu;
			if (cpu && cpu.overhead_ms_per_batch) {
				const o = cpu.overhead_ms_per_batch;
				const parts = ['preprocess', 'convert', 'crc', 'frame', 'other']
					.filter((k) => Number(o[k]) > 0).map((k) => `${k} ${num(o[k])}`);
				node.append(el('div', { class: 'overhead muted small', title: 'time per batch in the kernels and outside them, by kind; CPU of the stage process' },
					`kernels ${num(cpu.kernel_ms_per_batch)} ms · outside: ${parts.join(' · ') || 'none'} · CPU ${num(cpu.cpu_ms_per_batch)} ms` +
					(cpu.contended ? ' (core shared with other work)' : '')));
			}
			/* Why a stage is refused (another token or model), down or not reached yet. */
			if (state && state !== 'up' && info.reason) node.append(el('div', { class: 'reason muted small' }, str(info.reason)));
			kids.push(node);
		});
		kids.push(hopEl(hops[stages.length], stages.length, stages, true, bn));
		kids.push(el('div', { class: 'node end' }, el('strong', null, 'coordinator'), el('span', { class: 'muted small' }, 'logits → accuracy')));
		box.replaceChildren(...kids);
		renderLeftOut(live ? cl.filter((c) => !stages.some((s) => s.address === c.address)) : []);
		const note = [];
		if (v) note.push(`run ${S.view.id}, ${str(S.view.run.state)}, over the whole run`);
		const split = v ? S.view.run.split : sum && sum.split;
		if (Array.isArray(split)) note.push(`split ${splitText(split)}`);
		if (bn && bn.kind && bn.kind !== 'stage') note.push(`bottleneck: ${str(bn.kind)} ${str(bn.index ?? '')}`);
		$('pipe-note').textContent = note.join(' · ');
	}

	/* Members of the cluster the running plan does not use: down, refused,
	 * or back and waiting for the next re-plan. */
	function renderLeftOut(out) {
		const ul = $('left-out');
		ul.hidden = !out.length;
		ul.replaceChildren(...out.map((c) => {
			const state = str(c.state || 'unknown');
			return el('li', { dataset: { address: str(c.address), state } },
				el('span', { class: 'muted' }, 'not in the plan:'),
				el('span', { class: 'addr' }, str(c.address)),
				el('span', { class: 'dot', dataset: { state }, title: state }, state),
				c.reason ? el('span', { class: 'muted' }, str(c.reason)) : null);
		}));
	}

	/* A finished run's pipeline, in the shape of the stream's summary. */
	function viewedPipeline(run) {
		const st = Array.isArray(run.stages) ? run.stages : [];
		const inHop = run.input_hop || {};
		const perFrame = (bytesTotal, frames) => (frames ? bytesTotal / frames : undefined);
		return {
			stages: st.map((s, i) => ({
				index: i, address: s.address, first: s.first, last: s.last, utilisation: s.busy,
				compute_ms_per_batch: s.compute_ms_per_batch, queue_ms_per_batch: s.queue_wait_ms_per_batch, cpu: s.cpu,
			})),
			hops: [{ bytes_per_batch: perFrame(inHop.bytes, inHop.frames), transfer_ms_per_batch: inHop.transfer_ms_per_frame }]
				.concat(st.map((s) => ({ bytes_per_batch: perFrame(s.bytes_out, s.frames), transfer_ms_per_batch: s.transfer_ms_per_frame }))),
			bottleneck: Number.isInteger(run.bottleneck) ? { kind: 'stage', index: run.bottleneck } : null,
			coordinator: run.coordinator,
		};
	}

	function hopEl(h, i, stages, logits, bnNow) {
		let b = h ? h.bytes_per_batch : undefined;
		/* Between summaries the last batch tells the bytes a stage took in. */
		if (b === undefined && S.lastBatchStages) {
			const st = S.lastBatchStages[i];
			const prev = S.lastBatchStages[i - 1];
			if (!logits && st) b = st.bytes_in;
			else if (logits && prev) b = prev.bytes_out;
		}
		const bn = bnNow;
		const isBn = bn && bn.kind === 'hop' && bn.index === i;
		return el('div', { class: 'hop' + (isBn ? ' bottleneck' : ''), dataset: { hop: String(i) }, 'aria-label': 'hop' },
			el('span', { class: 'arrow', 'aria-hidden': 'true' }),
			el('span', { class: 'hop-bytes' }, b !== undefined && b !== null ? bytes(b) : (logits ? 'logits' : 'activations')),
			h && h.transfer_ms_per_batch !== undefined ? el('span', { class: 'muted small' }, `${num(h.transfer_ms_per_batch)} ms`) : null);
	}

	/* ---- per-block costs and the planner ---- */
	function stageOfBlock(b, split) {
		let s = 0;
		for (const p of split || []) if (b >= p) s++;
		return s;
	}
	function blockCosts() {
		/* [{ms, stagesMs, macs}] per block: from the plan, else from the cluster. */
		const out = [];
		const plan = S.plan;
		if (plan && Array.isArray(plan.blocks)) {
			for (const b of plan.blocks) {
				const ms = Array.isArray(b.ms) ? b.ms : (typeof b.ms === 'number' ? [b.ms] : []);
				out[b.block] = { stagesMs: ms, macs: b.macs, outBytes: b.out_bytes };
			}
		} else if (S.cluster && Array.isArray(S.cluster.stages)) {
			const n = S.cluster.blocks || 19;
			for (let b = 0; b < n; b++) {
				out[b] = { stagesMs: S.cluster.stages.map((s) => (Array.isArray(s.block_ms) ? s.block_ms[b] : null)) };
			}
		}
		return out;
	}
	function activeSplit() {
		if (Array.isArray(S.split)) return S.split;
		const st = currentStages();
		const pts = [];
		for (let i = 1; i < st.length; i++) if (Number.isInteger(st[i].first)) pts.push(st[i].first);
		return pts;
	}
	function blockTooltip(ctx) {
		const c = S.blockShown && S.blockShown[ctx.dataIndex];
		if (!c) return '';
		const parts = [`${num(ctx.parsed.y, 2)} ${S.blockUnit} on stage ${c.stage}`];
		if (c.stagesMs && c.stagesMs.length > 1) parts.push('all stages: ' + c.stagesMs.map((v) => num(v, 2)).join(' / ') + ' ms');
		if (c.outBytes) parts.push('out: ' + bytes(c.outBytes));
		return parts;
	}
	function renderBlocks() {
		if (!charts.blocks) return;
		const costs = blockCosts();
		const split = activeSplit();
		const shown = [];
		let anyMs = false;
		costs.forEach((c, b) => {
			if (!c) return;
			const st = stageOfBlock(b, split);
			let v = c.stagesMs[st];
			if (v === null || v === undefined) v = c.stagesMs.find((x) => x !== null && x !== undefined);
			if (v !== null && v !== undefined) anyMs = true;
			shown.push({ block: b, stage: st, ms: v, stagesMs: c.stagesMs, macs: c.macs, outBytes: c.outBytes });
		});
		S.blockUnit = anyMs ? 'ms' : 'M MACs';
		const ch = charts.blocks;
		ch.data.labels = shown.map((c) => String(c.block));
		ch.data.datasets[0].data = shown.map((c) => (anyMs ? c.ms ?? null : (c.macs || 0) / 1e6));
		ch.data.datasets[0].backgroundColor = shown.map((c) => stageColour(c.stage));
		ch.options.scales.y.title.text = anyMs ? 'ms per batch' : 'M MACs (no timings yet)';
		ch.pnMarks = split.map((p) => ({ x: p - 0.5, label: `split ${p}` }));
		S.drawnSplit = split.slice();
		S.blockShown = shown;
		redraw(ch);
		/* The legend: each stage's share of the time. */
		const sums = [];
		for (const c of shown) sums[c.stage] = (sums[c.stage] || 0) + (anyMs ? Number(c.ms) || 0 : (c.macs || 0) / 1e6);
		const total = sums.reduce((a, b) => a + (b || 0), 0);
		$('blocks-legend').replaceChildren(...sums.map((v, i) => el('span', { class: 'legend-item' },
			el('span', { class: 'swatch', style: { background: stageColour(i) } }),
			`stage ${i}: ${num(v, anyMs ? 1 : 0)} ${anyMs ? 'ms' : 'M MACs'}` + (total ? ` (${pct(v / total, 0)})` : ''))));
		const src = S.plan ? 'planner' : (S.cluster ? 'cluster' : '');
		$('blocks-note').textContent = shown.length ? (src ? `from the ${src}` : '') : (S.planError || 'no block costs yet');
	}

	function sameSplit(a, b) {
		return Array.isArray(a) && Array.isArray(b) && a.length === b.length && a.every((v, i) => v === b[i]);
	}
	function planTooltip(ctx) {
		const c = S.planShown && S.planShown[ctx.dataIndex];
		if (!c) return '';
		const parts = [`predicted ${num(c.predicted_img_s)} img/s`];
		if (c.predicted_latency_ms !== undefined && c.predicted_latency_ms !== null) parts.push(`latency ${num(c.predicted_latency_ms)} ms`);
		if (c.bottleneck !== undefined && c.bottleneck !== null) parts.push(`bottleneck ${typeof c.bottleneck === 'object' ? JSON.stringify(c.bottleneck) : str(c.bottleneck)}`);
		return parts;
	}
	function measuredImgS() {
		const sum = S.summary;
		if (sum && sum.state === 'running' && Number.isFinite(sum.img_s_now)) return { v: sum.img_s_now, what: 'now' };
		const r = S.run;
		if (r && Number.isFinite(r.steady_img_s) && r.steady_img_s > 0) return { v: r.steady_img_s, what: 'steady, run ' + r.id };
		return null;
	}
	function renderPlan() {
		const text = $('plan-text');
		const plan = S.plan;
		const split = activeSplit();
		if (!plan || !Array.isArray(plan.candidates) || !plan.candidates.length) {
			text.textContent = S.planError || 'The planner has no candidates yet.';
			if (charts.plan) {
				charts.plan.data.labels = [];
				charts.plan.data.datasets[0].data = [];
				charts.plan.pnLines = [];
				redraw(charts.plan);
			}
			$('use-best').disabled = true;
			return;
		}
		let cands = plan.candidates.filter((c) => Array.isArray(c.split));
		if (cands.length > MAX_CANDIDATES) {
			const keep = new Set([...cands].sort((a, b) => (b.predicted_img_s || 0) - (a.predicted_img_s || 0))
				.slice(0, MAX_CANDIDATES - 1));
			cands = cands.filter((c) => keep.has(c) || sameSplit(c.split, split));
		}
		const best = plan.best && Array.isArray(plan.best.split) ? plan.best : null;
		S.planShown = cands;
		const cur = cands.find((c) => sameSplit(c.split, split));
		const m = measuredImgS();
		if (charts.plan) {
			const ch = charts.plan;
			ch.data.labels = cands.map((c) => c.split.join(','));
			ch.data.datasets[0].data = cands.map((c) => c.predicted_img_s ?? null);
			ch.data.datasets[0].backgroundColor = cands.map((c) => (sameSplit(c.split, split) ? C.accent
				: best && sameSplit(c.split, best.split) ? C.good : C.bar));
			/* the best split keeps a green outline when it is also the current one */
			ch.data.datasets[0].borderColor = cands.map((c) => (best && sameSplit(c.split, best.split) ? C.good : 'transparent'));
			ch.data.datasets[0].borderWidth = cands.map((c) => (best && sameSplit(c.split, best.split) ? 2 : 0));
			ch.pnLines = m ? [{ y: m.v, label: `measured ${num(m.v)} img/s`, colour: C.mark, dash: [5, 4] }] : [];
			const top = Math.max(0, ...cands.map((c) => c.predicted_img_s || 0), m ? m.v : 0);
			ch.options.scales.y.suggestedMax = top * 1.12;
			redraw(ch);
		}
		const parts = [];
		if (best) parts.push(`Best: split ${splitText(best.split)} → ${num(best.predicted_img_s)} img/s predicted.`);
		if (cur) parts.push(`Current ${splitText(split)}: ${num(cur.predicted_img_s)} predicted` + (m ? `, ${num(m.v)} measured (${m.what}).` : '.'));
		else if (m) parts.push(`Measured ${num(m.v)} img/s (${m.what}).`);
		parts.push(`Batch ${str(plan.batch_size)}, wire ${str(plan.wire)}; click a bar to pick that split.`);
		text.textContent = parts.join(' ');
		$('use-best').disabled = !best;
	}

	let planTimer = null;
	async function loadPlan(force) {
		const run = S.run && S.run.state === 'running' ? S.run : null;
		const batch = (run && run.batch_size) || Number($('f-batch').value) || 8;
		const wire = (run && run.wire) || $('f-wire').value;
		const key = `batch_size=${encodeURIComponent(batch)}&wire=${encodeURIComponent(wire)}`;
		if (!force && key === S.planKey && S.plan) return;
		try {
			S.plan = await api('GET', 'plan?' + key);
			S.planKey = key;
			S.planError = '';
		} catch (e) {
			S.plan = null;
			S.planError = e instanceof ApiError && e.status === 404 ? 'the coordinator has no planner route'
				: 'planner: ' + apiErrorText(e).join(' ');
			/* 503: the stages are still timing their blocks; ask again. */
			if (e instanceof ApiError && e.status === 503)
				schedulePlan(true, 2000);
		}
		renderBlocks();
		renderPlan();
	}
	function schedulePlan(force, delay) {
		clearTimeout(planTimer);
		planTimer = setTimeout(() => loadPlan(force), delay || 0);
	}

	function renderModel() {
		const m = S.cluster && S.cluster.model;
		if (!m || typeof m !== 'object') return;
		const name = str(m.path).split('/').pop().replace(/\.safetensors$/, '');
		const sha = str(m.sha256).slice(0, 12);
		$('model').textContent = [name, m.input_size ? `${m.input_size}×${m.input_size}` : '', m.dtype === 'int8' ? 'int8' : ''].filter(Boolean).join(' · ');
		$('model').title = [str(m.path), sha ? 'sha256 ' + str(m.sha256) : ''].filter(Boolean).join('\n');
	}

	async function loadCluster() {
		try {
			S.cluster = await api('GET', 'cluster');
		} catch (e) {
			if (!S.cluster) $('pipe-note').textContent = apiErrorText(e).join(' ');
			return;
		}
		renderModel();
		renderPipeline();
		if (!S.plan) renderBlocks();
	}

	/* The datasets of the coordinator's data directory, offered by the form. */
	async function loadDatasets() {
		let d;
		try {
			d = await api('GET', 'datasets');
		} catch (e) {
			return; /* typing a name still works */
		}
		const list = (d && Array.isArray(d.datasets)) ? d.datasets : [];
		const count = (v, what) => (typeof v === 'number' ? `${v} ${what}` : null);
		$('datasets-list').replaceChildren(...list.map((x) => el('option', {
			value: str(x.name),
			label: [str(x.kind), count(x.records, 'images'), count(x.classes, 'classes')].filter(Boolean).join(', '),
		})));
		$('datasets-note').textContent = d && d.data_dir === false
			? 'the coordinator has no data directory: start it with --data-dir DIR'
			: list.length ? `${list.length} dataset${list.length === 1 ? '' : 's'} in the data directory`
				: 'no datasets in the data directory';
		if (!$('f-dataset').value && list.length) $('f-dataset').value = str(list[0].name);
	}

	/* ---- runs ---- */
	function rememberRun(r) {
		if (!r || r.id === undefined || r.id === null) return;
		S.runs.set(r.id, r);
		const cur = S.run;
		if (!cur || r.id >= cur.id) S.run = r;
		renderRuns();
		renderRunState();
	}
	async function loadRuns() {
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
	function renderRuns() {
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

	/* A run's charts from GET api/v1/runs/ID/history, which the coordinator
	 * keeps after the run ends: throughput a point a second, latency and
	 * accuracy a point a batch, re-splits marked from the run's epochs. */
	function fillCharts(hist, run) {
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
	async function fetchHistory(id) {
		return Promise.all([api('GET', `runs/${id}/history`), api('GET', `runs/${id}`)]);
	}

	/* A run chosen in the runs table: its charts and its pipeline over the
	 * whole run. Live figures go on in the KPIs; the charts stay on the
	 * chosen run until "back to live" or the next run starts. */
	async function showRun(id, quiet) {
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
	function leaveView() {
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
	async function catchUp(id) {
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
	function runActive() {
		const r = S.run;
		return !!r && (r.state === 'running' || r.state === 'queued');
	}
	function renderRunState() {
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
	function renderKpis() {
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

	function syncSplitInput() {
		const inp = $('split-input');
		if (S.splitEdited || document.activeElement === inp) return;
		const sp = activeSplit();
		if (sp.length) inp.value = sp.join(', ');
	}

	/* ---- the event stream ---- */
	function parse(ev) {
		try {
			return JSON.parse(ev.data);
		} catch (e) {
			console.warn('pipenet: unreadable event', ev.type, e);
			return null;
		}
	}

	function onHello(d) {
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

	function runTime(t) {
		if (S.t0 === null) {
			const h = S.helloElapsed;
			S.t0 = h ? t - h.s - (performance.now() - h.at) / 1000 : t;
			S.helloElapsed = null;
		}
		return t - S.t0;
	}

	function onSummary(d) {
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

	function onBatch(d) {
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
	function scheduleKpis() {
		if (kpiQueued) return;
		kpiQueued = true;
		setTimeout(() => {
			kpiQueued = false;
			renderKpis();
		}, 200);
	}

	function onResplit(d) {
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

	function onRun(r) {
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
	function onStage(d) {
		const bad = d.state === 'down' || d.state === 'refused';
		log(`stage ${str(d.address)} ${str(d.state)}${bad && d.reason ? ': ' + str(d.reason) : ''}`, bad ? 'bad' : '');
		loadCluster();
	}

	let es = null;
	let retryTimer = null;
	function setConn(state, text) {
		const c = $('conn');
		c.dataset.state = state;
		c.textContent = text || state;
	}
	function connect() {
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

	/* ---- controls ---- */
	function parseSplit(text, allowAuto) {
		const t = text.trim();
		if (allowAuto && (t === '' || t.toLowerCase() === 'auto')) return 'auto';
		if (t === '') throw new Error('give the split points, e.g. 12 or 6, 12');
		const parts = t.split(/[\s,;]+/).filter(Boolean);
		const pts = parts.map((p) => {
			if (!/^\d+$/.test(p)) throw new Error(`"${p}" is not a block number`);
			return Number(p);
		});
		return pts;
	}
	function intField(id, name, min, optional) {
		const v = $(id).value.trim();
		if (v === '' && optional) return undefined;
		if (!/^\d+$/.test(v) || Number(v) < min) throw new Error(`${name} must be a whole number ≥ ${min}`);
		return Number(v);
	}
	function setStatus(id, text, bad) {
		const p = $(id);
		p.textContent = text;
		p.classList.toggle('bad', !!bad);
	}

	function saveForm() {
		const f = {};
		for (const id of ['f-dataset', 'f-samples', 'f-batch', 'f-mode', 'f-wire', 'f-split', 'f-offset', 'f-stride', 'f-inflight']) f[id] = $(id).value;
		try {
			localStorage.setItem(FORM_KEY, JSON.stringify(f));
		} catch (e) { /* private mode */ }
	}
	function restoreForm() {
		let f = null;
		try {
			f = JSON.parse(localStorage.getItem(FORM_KEY) || 'null');
		} catch (e) {
			f = null;
		}
		if (!f || typeof f !== 'object') return;
		for (const [id, v] of Object.entries(f)) if ($(id) && typeof v === 'string') $(id).value = v;
	}

	async function startRun(ev) {
		ev.preventDefault();
		let body;
		try {
			const dataset = $('f-dataset').value.trim();
			if (!dataset) throw new Error('give the dataset path (a file on the coordinator)');
			body = {
				dataset,
				samples: intField('f-samples', 'samples', 1),
				batch_size: intField('f-batch', 'batch size', 1),
				mode: $('f-mode').value,
				wire: $('f-wire').value,
				split: parseSplit($('f-split').value, true),
				offset: intField('f-offset', 'offset', 0, true),
				stride: intField('f-stride', 'stride', 1, true),
				max_inflight: intField('f-inflight', 'max in flight', 1, true),
			};
			for (const k of Object.keys(body)) if (body[k] === undefined) delete body[k];
		} catch (e) {
			setStatus('run-status', e.message, true);
			return;
		}
		saveForm();
		$('start-run').disabled = true;
		setStatus('run-status', 'starting…');
		try {
			const r = await api('POST', 'runs', body);
			if (r && r.state === 'failed') setStatus('run-status', `run ${str(r.id)} failed: ${str(r.error)}`, true);
			else if (r && r.waiting) setStatus('run-status', `run ${str(r.id)} started; ${str(r.waiting)}: waiting for it.`);
			else setStatus('run-status', `run ${str(r && r.id)} ${r && r.state === 'queued' ? 'queued' : 'started'}.`);
			if (r) onRun(r);
		} catch (e) {
			const [what, detail] = apiErrorText(e);
			setStatus('run-status', `${what}${detail ? ': ' + detail : ''}`, true);
			showError(what, detail);
		} finally {
			renderRunState();
		}
	}

	async function cancelRun() {
		const r = S.run;
		if (!r) return;
		$('cancel-run').disabled = true;
		try {
			const d = await api('DELETE', 'runs/' + encodeURIComponent(r.id));
			setStatus('run-status', `run ${str(r.id)} cancelled.`);
			if (d) onRun(d);
		} catch (e) {
			const [what, detail] = apiErrorText(e);
			showError(what, detail);
		} finally {
			renderRunState();
		}
	}

	async function changeSplit(ev) {
		ev.preventDefault();
		let split;
		try {
			split = parseSplit($('split-input').value, false);
		} catch (e) {
			setStatus('split-status', e.message, true);
			return;
		}
		$('apply-split').disabled = true;
		setStatus('split-status', 'changing…');
		try {
			const d = await api('PUT', 'split', { split });
			S.splitEdited = false;
			setStatus('split-status', `split ${splitText(d && d.split)} (epoch ${str(d && d.epoch)})` +
				(runActive() ? ': the stages switch once the batches in flight are done.' : '.'));
		} catch (e) {
			const [what, detail] = apiErrorText(e);
			setStatus('split-status', `${what}${detail ? ': ' + detail : ''}`, true);
			showError(what, detail);
		} finally {
			$('apply-split').disabled = false;
		}
	}

	function init() {
		restoreForm();
		makeCharts();
		renderRuns();
		renderRunState();
		renderKpis();
		showTokenButton();
		$('run-form').addEventListener('submit', startRun);
		$('cancel-run').addEventListener('click', cancelRun);
		$('view-live').addEventListener('click', leaveView);
		const pick = (ev) => {
			const tr = ev.target.closest('tr[data-run]');
			if (tr && (ev.type === 'click' || ev.key === 'Enter' || ev.key === ' ')) {
				ev.preventDefault();
				showRun(Number(tr.dataset.run));
			}
		};
		$('runs-body').addEventListener('click', pick);
		$('runs-body').addEventListener('keydown', pick);
		$('split-form').addEventListener('submit', changeSplit);
		$('split-input').addEventListener('input', () => {
			S.splitEdited = true;
		});
		$('use-best').addEventListener('click', () => {
			const b = S.plan && S.plan.best;
			if (b && Array.isArray(b.split)) {
				$('split-input').value = b.split.join(', ');
				S.splitEdited = true;
			}
		});
		$('forget-token').addEventListener('click', () => {
			sessionStorage.removeItem(TOKEN_KEY);
			showTokenButton();
		});
		for (const id of ['f-batch', 'f-wire']) $(id).addEventListener('change', () => {
			if (!runActive()) schedulePlan(false, 300);
		});
		$('f-dataset').addEventListener('focus', loadDatasets);
		connect();
		loadRuns();
		loadDatasets();
		/* The cluster's state and the planner's measured costs drift slowly. */
		setInterval(() => {
			if (!runActive()) loadCluster();
			else schedulePlan(true);
		}, 10000);
	}

	if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', init);
	else init();
})();

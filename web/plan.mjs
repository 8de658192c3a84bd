/* Per-block costs, the planner against the measurement, the model and the cluster. */
import { $, MAX_CANDIDATES, S, bytes, el, num, pct, splitText, str } from './util.mjs';
import { ApiError, api, apiErrorText } from './api.mjs';
import { C, charts, label, redraw, stageColour } from './charts.mjs';
import { currentStages, renderPipeline } from './pipeline.mjs';

/* ---- per-block costs and the planner ---- */
export function stageOfBlock(b, split) {
	let s = 0;
	for (const p of split || []) if (b >= p) s++;
	return s;
}

export function blockCosts() {
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

export function activeSplit() {
	if (Array.isArray(S.split)) return S.split.some(Array.isArray) ? S.split[0] || [] : S.split; /* groups: the first's */
	const st = currentStages();
	const pts = [];
	for (let i = 1; i < st.length; i++) if (Number.isInteger(st[i].first)) pts.push(st[i].first);
	return pts;
}

export function blockTooltip(ctx) {
	const c = S.blockShown && S.blockShown[ctx.dataIndex];
	if (!c) return '';
	const parts = [`${num(ctx.parsed.y, 2)} ${S.blockUnit} on stage ${c.stage}`];
	if (c.stagesMs && c.stagesMs.length > 1) parts.push('all stages: ' + c.stagesMs.map((v) => num(v, 2)).join(' / ') + ' ms');
	if (c.outBytes) parts.push('out: ' + bytes(c.outBytes));
	return parts;
}

export function renderBlocks() {
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

export function sameSplit(a, b) {
	return Array.isArray(a) && Array.isArray(b) && a.length === b.length && a.every((v, i) => v === b[i]);
}

export function planTooltip(ctx) {
	const c = S.planShown && S.planShown[ctx.dataIndex];
	if (!c) return '';
	const parts = [`predicted ${num(c.predicted_img_s)} img/s`];
	if (c.predicted_latency_ms !== undefined && c.predicted_latency_ms !== null) parts.push(`latency ${num(c.predicted_latency_ms)} ms`);
	if (c.bottleneck !== undefined && c.bottleneck !== null) parts.push(`bottleneck ${typeof c.bottleneck === 'object' ? JSON.stringify(c.bottleneck) : str(c.bottleneck)}`);
	return parts;
}

export function measuredImgS() {
	const sum = S.summary;
	if (sum && sum.state === 'running' && Number.isFinite(sum.img_s_now)) return { v: sum.img_s_now, what: 'now' };
	const r = S.run;
	if (r && Number.isFinite(r.steady_img_s) && r.steady_img_s > 0) return { v: r.steady_img_s, what: 'steady, run ' + r.id };
	return null;
}

export function renderPlan() {
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

export async function loadPlan(force) {
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

export function schedulePlan(force, delay) {
	clearTimeout(planTimer);
	planTimer = setTimeout(() => loadPlan(force), delay || 0);
}

export function renderModel() {
	const m = S.cluster && S.cluster.model;
	if (!m || typeof m !== 'object') return;
	const name = str(m.path).split('/').pop().replace(/\.safetensors$/, '');
	const sha = str(m.sha256).slice(0, 12);
	$('model').textContent = [name, m.input_size ? `${m.input_size}×${m.input_size}` : '', m.dtype === 'int8' ? 'int8' : ''].filter(Boolean).join(' · ');
	$('model').title = [str(m.path), sha ? 'sha256 ' + str(m.sha256) : ''].filter(Boolean).join('\n');
}

export async function loadCluster() {
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

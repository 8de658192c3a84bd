/* Shared state, constants, formatting, DOM building, errors and the event log. */

export const API = 'api/v1/';
export const TOKEN_KEY = 'pipenet.token';
export const FORM_KEY = 'pipenet.runform';
export const MAX_TP_POINTS = 900; /* one a second: 15 minutes */
export const MAX_BATCH_POINTS = 2000;
export const MAX_LOG = 60;
export const MAX_CANDIDATES = 40;
export const $ = (id) => document.getElementById(id);
export const hasChart = () => typeof window.Chart === 'function';

/* ---- state ---- */
export const S = {
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
export function num(v, digits) {
	if (v === null || v === undefined || !Number.isFinite(Number(v))) return '–';
	return Number(v).toFixed(digits === undefined ? 1 : digits);
}

export function pct(v, digits) {
	if (v === null || v === undefined || !Number.isFinite(Number(v))) return '–';
	return (Number(v) * 100).toFixed(digits === undefined ? 1 : digits) + ' %';
}

export function bytes(v) {
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

export function splitText(split) {
	if (split === 'auto') return 'auto';
	if (!Array.isArray(split)) return '–';
	if (split.some(Array.isArray)) return split.map(splitText).join(' | '); /* one list per group */
	return split.length ? split.join(', ') : 'none';
}

export function clock(d) {
	return (d || new Date()).toLocaleTimeString([], { hour12: false });
}

export function str(v) {
	return v === null || v === undefined ? '' : String(v);
}

/* el('div', {class: 'x', dataset: {a: 1}}, 'text', child): text children
 * become text nodes, so server data never becomes markup. */
export function el(tag, attrs, ...kids) {
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
export function showError(title, detail) {
	const box = $('errors');
	const close = el('button', { type: 'button', class: 'close', 'aria-label': 'dismiss' }, '×');
	const item = el('div', { class: 'error' },
		el('p', null, el('strong', null, title), detail ? ' ' + detail : null), close);
	close.addEventListener('click', () => item.remove());
	box.prepend(item);
	while (box.children.length > 4) box.lastChild.remove();
}

export function log(text, kind) {
	const list = $('log');
	list.prepend(el('li', { class: kind || '' }, el('time', null, clock()), ' ', text));
	while (list.children.length > MAX_LOG) list.lastChild.remove();
}

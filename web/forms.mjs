/* The run form and the split form. */
import { $, FORM_KEY, S, el, showError, splitText, str } from './util.mjs';
import { api, apiErrorText } from './api.mjs';
import { label } from './charts.mjs';
import { renderRunState, runActive, splitGroups } from './runs.mjs';
import { onRun } from './stream.mjs';

/* The datasets of the coordinator's data directory, offered by the form. */
export async function loadDatasets() {
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

/* ---- controls ---- */
export function parseSplit(text, allowAuto) {
	const t = text.trim();
	if (allowAuto && (t === '' || t.toLowerCase() === 'auto')) return 'auto';
	/* groups: one list of cuts each, "8 | 8"; an empty one runs every block */
	if (t.includes('|')) return t.split('|').map((g) => (g.trim() === '' ? [] : parseSplit(g, false)));
	if (t === '') throw new Error('give the split points, e.g. 12 or 6, 12');
	const parts = t.split(/[\s,;]+/).filter(Boolean);
	const pts = parts.map((p) => {
		if (!/^\d+$/.test(p)) throw new Error(`"${p}" is not a block number`);
		return Number(p);
	});
	return pts;
}

/* "2, 2": the stages of each replicated pipeline; empty: one pipeline. */
export function parseGroups(text) {
	const t = text.trim();
	if (t === '') return undefined;
	return t.split(/[\s,;]+/).filter(Boolean).map((p) => {
		if (!/^[1-9]\d*$/.test(p)) throw new Error(`groups: "${p}" is not a number of stages`);
		return Number(p);
	});
}

export function intField(id, name, min, optional) {
	const v = $(id).value.trim();
	if (v === '' && optional) return undefined;
	if (!/^\d+$/.test(v) || Number(v) < min) throw new Error(`${name} must be a whole number ≥ ${min}`);
	return Number(v);
}

export function setStatus(id, text, bad) {
	const p = $(id);
	p.textContent = text;
	p.classList.toggle('bad', !!bad);
}

export function saveForm() {
	const f = {};
	for (const id of ['f-dataset', 'f-samples', 'f-batch', 'f-mode', 'f-wire', 'f-split', 'f-offset', 'f-stride', 'f-inflight', 'f-groups']) f[id] = $(id).value;
	try {
		localStorage.setItem(FORM_KEY, JSON.stringify(f));
	} catch (e) { /* private mode */ }
}

export function restoreForm() {
	let f = null;
	try {
		f = JSON.parse(localStorage.getItem(FORM_KEY) || 'null');
	} catch (e) {
		f = null;
	}
	if (!f || typeof f !== 'object') return;
	for (const [id, v] of Object.entries(f)) if ($(id) && typeof v === 'string') $(id).value = v;
}

export async function startRun(ev) {
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
			groups: parseGroups($('f-groups').value),
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

export async function cancelRun() {
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

export async function changeSplit(ev) {
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
		const groups = splitGroups();
		const d = await api('PUT', 'split', groups ? { group: Number($('split-group').value), split } : { split });
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

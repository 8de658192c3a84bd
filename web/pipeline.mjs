/* The pipeline view: stages, hops, utilisation, what the plan leaves out. */
import { $, S, bytes, el, num, pct, splitText, str } from './util.mjs';
import { stageColour } from './charts.mjs';

/* ---- the pipeline view ---- */
/* The stages as the stream last described them, else as the cluster is. */
export function currentStages() {
	const sum = S.summary;
	if (sum && Array.isArray(sum.stages) && sum.stages.length) return sum.stages;
	const cl = S.cluster;
	if (cl && Array.isArray(cl.stages)) return cl.stages.map((s, i) => Object.assign({ index: i }, s));
	return [];
}

export function renderPipeline() {
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
	/* One row per pipeline: coordinator, stages and hops, coordinator. */
	const row = (stages, hops) => {
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
		return kids;
	};
	const groupOf = (x) => (Number.isInteger(x.group) ? x.group : 0);
	/* The run's groups (a dropped one has no stage left), else the stages'. */
	const glist = (v ? v.groups : sum && sum.groups) || [];
	const groups = glist.length > 1 ? glist.map((x) => x.index) : [...new Set(stages.map(groupOf))];
	box.classList.toggle('grouped', groups.length > 1);
	if (groups.length > 1) {
		box.replaceChildren(...groups.map((g) => {
			const o = glist.find((x) => x.index === g) || {};
			const mine = stages.filter((x) => groupOf(x) === g);
			return el('div', { class: 'group-row', dataset: { group: String(g), state: str(o.state) } },
				el('div', { class: 'group-label' }, `group ${g}${o.state ? ' · ' + str(o.state) : ''}`),
				mine.length ? el('div', { class: 'pipeline' }, ...row(mine, hops.filter((x) => groupOf(x) === g)))
					: el('p', { class: 'muted small' }, 'no stage left: its batches go to the other groups'));
		}));
	} else {
		box.replaceChildren(...row(stages, hops));
	}
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
export function renderLeftOut(out) {
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
export function viewedPipeline(run) {
	const st = Array.isArray(run.stages) ? run.stages : [];
	const inHop = run.input_hop || {};
	const perFrame = (bytesTotal, frames) => (frames ? bytesTotal / frames : undefined);
	return {
		stages: st.map((s, i) => ({
			index: i, group: s.group, address: s.address, first: s.first, last: s.last, utilisation: s.busy,
			compute_ms_per_batch: s.compute_ms_per_batch, queue_ms_per_batch: s.queue_wait_ms_per_batch, cpu: s.cpu,
		})),
		groups: run.groups,
		/* with groups the run gives no per-group input hop: arrows only */
		hops: Array.isArray(run.groups) && run.groups.length > 1 ? [] : [{ bytes_per_batch: perFrame(inHop.bytes, inHop.frames), transfer_ms_per_batch: inHop.transfer_ms_per_frame }]
			.concat(st.map((s) => ({ bytes_per_batch: perFrame(s.bytes_out, s.frames), transfer_ms_per_batch: s.transfer_ms_per_frame }))),
		bottleneck: Number.isInteger(run.bottleneck) ? { kind: 'stage', index: run.bottleneck } : null,
		coordinator: run.coordinator,
	};
}

export function hopEl(h, i, stages, logits, bnNow) {
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

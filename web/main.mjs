/* pipenet dashboard: live figures from the coordinator's event stream
 * (GET api/v1/events), the planner (api/v1/plan) and the cluster
 * (api/v1/cluster), and the controls that start a run and change the split.
 * ES modules, no build step; charts with Chart.js (served at /chart.js).
 * Everything the server sends is shown with textContent, never as HTML. */
import { $, S, TOKEN_KEY } from './util.mjs';
import { showTokenButton } from './api.mjs';
import { makeCharts } from './charts.mjs';
import { loadCluster, schedulePlan } from './plan.mjs';
import { leaveView, loadRuns, renderKpis, renderRunState, renderRuns, runActive, showRun, syncSplitInput } from './runs.mjs';
import { connect } from './stream.mjs';
import { cancelRun, changeSplit, loadDatasets, restoreForm, startRun } from './forms.mjs';

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
	$('split-group').addEventListener('change', () => {
		S.splitEdited = false; /* show the chosen group's split */
		syncSplitInput();
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

# web/: the dashboard, static files the coordinator serves at / (--web-root).
# Chart.js is not here: the coordinator serves Debian's libjs-chart.js.
webdir = $(pkgdatadir)/web
dist_web_DATA = web/index.html web/style.css web/main.mjs web/util.mjs \
	web/api.mjs web/charts.mjs web/pipeline.mjs web/plan.mjs web/runs.mjs \
	web/stream.mjs web/forms.mjs

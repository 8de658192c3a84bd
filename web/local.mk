# web/: the dashboard, static files the coordinator serves at / (--web-root).
# Chart.js is not here: the coordinator serves Debian's libjs-chart.js.
webdir = $(pkgdatadir)/web
dist_web_DATA = web/index.html web/app.js web/style.css

/* pipenetd: one stage or the coordinator of a pipenet cluster, on one
 * single-threaded event loop. */
#include <errno.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pipenet-config.h"
#include "coord.h"
#include "crc32c.h"
#include "http.h"
#include "log.h"
#include "loop.h"
#include "model.h"
#include "notify.h"
#include "sha256.h"
#include "settings.h"
#include "stage.h"

struct daemon {
	struct pn_config cfg;
	struct pn_loop *loop;
	struct pn_http *http;
	struct pn_model *model;
	const struct pn_ops *ops;
	struct pn_stage *stage;
	struct pn_coord *coord;
	char sha[65];
	char address[300];
	struct pn_timer *watchdog;
	uint64_t watchdog_ms;
	uint64_t t_start;
	int signals;
};

/* Health also tells whether this daemon has a token and whether the
 * request carried it (never the token itself): the coordinator sends its
 * own, and so learns whether the stage and it would take each other's
 * requests and frames. */
static void health_route(struct pn_req *r, void *arg)
{
	struct daemon *d = arg;
	pn_reply_json(r, 200,
		      json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:f, s:b, s:b, s:i}", "status",
				d->signals ? "stopping" : "ok", "version", PACKAGE_VERSION, "role",
				d->cfg.role, "model", d->cfg.model, "model_sha256", d->sha, "isa",
				d->model ? pn_model_isa(d->model) : d->ops->name, "dtype",
				d->model ? pn_model_dtype(d->model) : "f32", "uptime_s",
				(double)(pn_now_ns() - d->t_start) / 1e9, "token_set",
				d->cfg.token && *d->cfg.token, "token_match", pn_req_token_match(r),
				"block_times_generation",
				d->stage ? (int)pn_stage_block_times_generation(d->stage) : 0));
}

/* Ready: the model is loaded; on a stage, a coordinator has configured a
 * run; on the coordinator, every stage has been reached once. 503 with
 * the reason otherwise. */
static void ready_route(struct pn_req *r, void *arg)
{
	struct daemon *d = arg;
	char wait[400];
	const char *why = NULL;
	if (d->signals)
		why = "stopping";
	else if (d->stage && !pn_stage_configured(d->stage))
		why = "not configured by a coordinator yet";
	else if (d->coord && pn_coord_reaching(d->coord, wait, sizeof(wait)))
		why = wait;
	pn_reply_json(r, why ? 503 : 200,
		      json_pack("{s:b, s:s, s:s?}", "ready", why == NULL, "role", d->cfg.role,
				"reason", why));
}

static const struct pn_route common_routes[] = {
	{PN_GET, "/api/v1/health", health_route, 0},
	{PN_GET, "/api/v1/ready", ready_route, 0},
};

/* systemd's watchdog: ping at half the interval it set. */
static void watchdog_cb(void *arg)
{
	struct daemon *d = arg;
	pn_notify("WATCHDOG=1");
	pn_timer_arm(d->watchdog, (int64_t)d->watchdog_ms);
}

/* First signal: stop taking work, cancel what runs, leave shortly after
 * (replies in flight still go out). Second: leave now. */
static void on_signal(int signo, void *arg)
{
	struct daemon *d = arg;
	if (d->signals++) {
		pn_loop_stop(d->loop, 0);
		return;
	}
	pn_info("signal %d: stopping", signo);
	pn_notify("STOPPING=1");
	pn_http_set_closing(d->http, 1);
	if (d->stage)
		pn_stage_stop(d->stage);
	if (d->coord)
		pn_coord_stop(d->coord);
	pn_loop_stop(d->loop, 200);
}

static int write_port_file(const char *path, int port)
{
	char tmp[4096];
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	FILE *f = fopen(tmp, "w");
	if (!f || fprintf(f, "%d\n", port) < 0 || fclose(f) != 0 || rename(tmp, path) != 0) {
		pn_error("%s: cannot write the port: %s", path, strerror(errno));
		return -1;
	}
	return 0;
}

/* Reads --config first so that flags override the file. */
static int load_settings(struct pn_config *c, int argc, char **argv)
{
	char err[512];
	for (int i = 1; i < argc; i++) {
		const char *path = NULL;
		if (strcmp(argv[i], "--config") == 0 && i + 1 < argc)
			path = argv[++i];
		else if (strncmp(argv[i], "--config=", 9) == 0)
			path = argv[i] + 9;
		else if (strcmp(argv[i], "--config") == 0) {
			fprintf(stderr, "pipenetd: --config needs a file\n");
			return -1;
		}
		if (path && pn_config_load(c, path, err, sizeof(err)) != 0) {
			fprintf(stderr, "pipenetd: %s\n", err);
			return -1;
		}
	}
	if (pn_config_args(c, argc, argv, err, sizeof(err)) != 0 ||
	    pn_config_check(c, err, sizeof(err)) != 0) {
		fprintf(stderr, "pipenetd: %s\n", err);
		return -1;
	}
	for (int i = 1; i < argc; i++) {
		const char *a = strncmp(argv[i], "--", 2) == 0 ? argv[i] + 2 : "";
		a += strncmp(a, "api-", 4) == 0 ? 4 : 0; /* --api-token */
		if (strncmp(a, "token", 5) == 0 && (!a[5] || a[5] == '='))
			pn_warn("--token on the command line shows in ps to every local user; put "
				"it in a file read through --token-file FILE (or token_file)");
	}
	return 0;
}

static int start(struct daemon *d)
{
	struct pn_config *c = &d->cfg;
	int coordinator = strcmp(c->role, "coordinator") == 0;
	char err[512];
	const char *listen = c->listen	   ? c->listen
			     : coordinator ? "127.0.0.1:9000"
					   : "127.0.0.1:9001";
	d->ops = pn_ops_select(err, sizeof(err));
	if (!d->ops) {
		pn_error("%s", err);
		return -1;
	}
	d->model = pn_model_load(c->model, d->ops, err, sizeof(err));
	if (!d->model) {
		pn_error("%s", err);
		return -1;
	}
	if (pn_sha256_file(c->model, d->sha, err, sizeof(err)) != 0) {
		pn_error("%s", err);
		return -1;
	}
	d->loop = pn_loop_new();
	if (!d->loop) {
		pn_error("cannot create the event loop");
		return -1;
	}
	struct pn_http_limits lim = {
		.max_header_bytes = c->max_header_bytes,
		.max_connections = c->max_connections,
		.idle_timeout_s = c->idle_timeout_s,
		.api_reads_per_s = c->api_reads_per_s,
		.head_timeout_s = c->head_timeout_s,
		.max_connections_per_peer = c->max_connections_per_peer,
		.max_body_bytes = (size_t)c->max_body_bytes,
		.allowed_hosts = c->allowed_hosts,
		.advertise = c->advertise,
	};
	d->http = pn_http_new(d->loop, listen, c->token, &lim, err, sizeof(err));
	if (!d->http) {
		pn_error("%s", err);
		return -1;
	}
	/* The address others reach us at: the listen host and the real port. */
	char host[256];
	int port;
	pn_parse_hostport(listen, host, sizeof(host), &port, err, sizeof(err));
	if ((!c->token || !*c->token) && strncmp(host, "127.", 4) != 0 &&
	    strcmp(host, "localhost") != 0 && strcmp(host, "::1") != 0 &&
	    strcmp(host, "[::1]") != 0)
		pn_warn("listening on %s without a token: anyone on the network who reaches this "
			"address can start runs, send frames and reconfigure this %s (set --token, "
			"the same on every node)",
			listen, c->role);
	snprintf(d->address, sizeof(d->address), "%s:%d",
		 strcmp(host, "0.0.0.0") == 0 ? "127.0.0.1" : host, pn_http_port(d->http));
	pn_http_add_routes(d->http, common_routes, sizeof common_routes / sizeof common_routes[0],
			   d);
	size_t n;
	if (coordinator) {
		struct pn_coord_opts o = {
			.stages = c->stages,
			.advertise = c->advertise ? c->advertise : d->address,
			.token = c->token,
			.web_root = c->web_root,
			.chartjs = c->chartjs,
			.data_dir = c->data_dir,
			.max_body_bytes = (size_t)c->max_body_bytes,
			.events_buffer_bytes = (size_t)c->events_buffer_bytes,
			.stall_s = c->stall_s,
			.batch_deadline_s = c->batch_deadline_s,
			.retry_s = c->retry_s,
			.max_batch = c->max_batch,
			.queue_depth = c->queue_depth,
			.out_depth = c->out_depth,
		};
		d->coord = pn_coord_new(d->loop, d->http, d->model, c->model, d->sha, &o, err,
					sizeof(err));
		if (!d->coord) {
			pn_error("%s", err);
			return -1;
		}
		const struct pn_route *routes = pn_coord_routes(&n);
		pn_http_add_routes(d->http, routes, n, d->coord);
	} else {
		struct pn_stage_opts o = {
			.queue_depth = c->queue_depth,
			.out_depth = c->out_depth,
			.retry_s = c->retry_s,
			.max_batch = c->max_batch,
			.token = c->token,
		};
		d->stage = pn_stage_new(d->loop, d->http, d->model, c->model, d->sha, &o);
		if (!d->stage) {
			pn_error("out of memory");
			return -1;
		}
		const struct pn_route *routes = pn_stage_routes(&n);
		pn_http_add_routes(d->http, routes, n, d->stage);
	}
	if (pn_loop_on_signal(d->loop, SIGINT, on_signal, d) != 0 ||
	    pn_loop_on_signal(d->loop, SIGTERM, on_signal, d) != 0) {
		pn_error("cannot watch SIGINT and SIGTERM");
		return -1;
	}
	if (c->port_file && *c->port_file &&
	    write_port_file(c->port_file, pn_http_port(d->http)) != 0)
		return -1;
	pn_info("%s listening on %s:%d (model %s, sha256 %.12s, kernels %s, frame CRC32C %s)",
		c->role, host, pn_http_port(d->http), c->model, d->sha, pn_model_isa(d->model),
		pn_crc32c_impl()->name);
	uint64_t usec = pn_notify_watchdog_usec();
	if (usec) {
		d->watchdog_ms = usec / 2000 ? usec / 2000 : 1;
		d->watchdog = pn_timer_new(d->loop, watchdog_cb, d);
		if (!d->watchdog)
			return -1;
		pn_timer_arm(d->watchdog, (int64_t)d->watchdog_ms);
	}
	if (pn_notify("READY=1") != 0)
		pn_warn("could not notify systemd (NOTIFY_SOCKET=%s)", getenv("NOTIFY_SOCKET"));
	return 0;
}

static void stop(struct daemon *d)
{
	pn_timer_free(d->watchdog);
	pn_coord_free(d->coord);
	pn_stage_free(d->stage);
	pn_http_free(d->http);
	if (d->loop)
		pn_loop_flush(d->loop); /* deferred frees */
	pn_loop_free(d->loop);
	pn_model_free(d->model);
	pn_config_free(&d->cfg);
}

/* Frames of megabytes (12.8 MB at split 1, batch 8, 224) are allocated
 * and freed every batch, in and out. glibc serves such sizes with mmap,
 * or hands freed heap back to the kernel, so every batch paid a page
 * fault per 4 KiB of every frame: most of a stage's time at the early
 * splits. Keep them in the heap, and the heap, instead; the queues bound
 * how much that is. */
static void keep_frames_in_heap(void)
{
#ifdef __GLIBC__
	mallopt(M_MMAP_THRESHOLD, (int)(4 * 1024 * 1024 * sizeof(long))); /* glibc's maximum */
	mallopt(M_TRIM_THRESHOLD, 512 * 1024 * 1024);
#endif
}

int main(int argc, char **argv)
{
	struct daemon d = {0};
	keep_frames_in_heap();
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			pn_config_usage(stdout);
			return 0;
		}
		if (strcmp(argv[i], "--version") == 0) {
			printf("pipenetd %s\n", PACKAGE_VERSION);
			return 0;
		}
	}
	pn_config_init(&d.cfg);
	if (load_settings(&d.cfg, argc, argv) != 0) {
		pn_config_free(&d.cfg);
		return 2;
	}
	pn_log_set_level(pn_log_level_parse(d.cfg.log_level));
	signal(SIGPIPE, SIG_IGN);
	d.t_start = pn_now_ns();
	int rc = 1;
	if (start(&d) == 0 && pn_loop_run(d.loop) == 0)
		rc = 0;
	if (rc == 0)
		pn_info("stopped");
	stop(&d);
	return rc;
}

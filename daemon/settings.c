/* The settings table (see settings.h). */
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "settings.h"
#include "log.h"

#ifndef PN_PKGDATADIR
#define PN_PKGDATADIR "/usr/local/share/pipenet"
#endif
#ifndef PN_CHARTJS
#define PN_CHARTJS "/usr/share/javascript/chart.js/chart.min.js"
#endif

enum kind {
	STR,
	INT,
	LIST, /* a string flag, or a JSON array of strings, kept comma-joined */
	NUM, /* a double from min to max */
};

struct key {
	const char *name; /* JSON key; the flag is --name with '_' as '-' */
	enum kind kind;
	size_t off;
	int min, max;
	const char *metavar;
	const char *help;
};

#define KEY(n, k, lo, hi, mv, h)                                                                   \
	{                                                                                          \
#n, k, offsetof(struct pn_config, n), lo, hi, mv, h                                \
	}

static const struct key keys[] = {
	KEY(role, STR, 0, 0, "ROLE", "coordinator or stage (default stage)"),
	KEY(listen, STR, 0, 0, "HOST:PORT",
	    "address to serve (default 127.0.0.1:9000 coordinator, 127.0.0.1:9001 stage; port 0 "
	    "picks one)"),
	KEY(advertise, STR, 0, 0, "HOST:PORT",
	    "coordinator: the address stages send logits to (default: the listen address)"),
	KEY(model, STR, 0, 0, "FILE",
	    "the model (default: the installed mobilenetv2_cifar10.safetensors, else models/)"),
	KEY(stages, LIST, 0, 0, "H:P,H:P", "coordinator: the stage daemons, in pipeline order"),
	KEY(token, STR, 0, 0, "TOKEN",
	    "cluster token: required on control routes and between nodes"),
	{"api_token", STR, offsetof(struct pn_config, token), 0, 0, "TOKEN", "the same as token"},
	KEY(token_file, STR, 0, 0, "FILE",
	    "read the token from the first line of FILE (not writable by group or others, not "
	    "readable by others); under systemd the credential \"token\" is read instead"),
	KEY(web_root, STR, 0, 0, "DIR",
	    "coordinator: the dashboard's files (default: the installed ones)"),
	KEY(chartjs, STR, 0, 0, "FILE",
	    "coordinator: the Chart.js served at /chart.js (default " PN_CHARTJS ")"),
	KEY(data_dir, STR, 0, 0, "DIR",
	    "coordinator: the folder runs read datasets from; a run's \"dataset\" is a name in "
	    "it (default: none, and runs are refused)"),
	KEY(log_level, STR, 0, 0, "LEVEL", "error, warn, info (default) or debug"),
	KEY(port_file, STR, 0, 0, "FILE", "write the port actually listened on to FILE"),
	KEY(queue_depth, INT, 1, 1024, "N",
	    "frames a stage queues before it answers 503 (default 4)"),
	KEY(out_depth, INT, 1, 1024, "N",
	    "output frames a stage holds unsent before it stops computing (default 2)"),
	KEY(retry_s, INT, 1, 3600, "S",
	    "how long a frame is retried towards the next node (default 30)"),
	KEY(stall_s, INT, 1, 86400, "S",
	    "coordinator: fail a run after S seconds without a finished batch (default 120)"),
	KEY(batch_deadline_s, INT, 1, 86400, "S",
	    "coordinator: a batch without logits for at least S seconds (more when its plan "
	    "predicts a long latency) while every stage answers is sent again (default 10)"),
	KEY(max_batch, INT, 1, 4096, "N", "largest batch_size a run may ask for (default 256)"),
	KEY(max_body_bytes, INT, 1024, 1 << 30, "BYTES",
	    "largest request body, e.g. a JPEG to classify; frames may be as large as the "
	    "stage's plan when their head carries the token (default 1048576)"),
	KEY(max_header_bytes, INT, 1024, 1 << 20, "BYTES",
	    "largest request line and headers; a longer one is refused (default 16384)"),
	KEY(max_connections, INT, 4, 65536, "N",
	    "client connections at once; past it a new one gets 503 and is closed, but "
	    "node-to-node requests (/v1/) with the token have 16 more (default 512)"),
	KEY(idle_timeout_s, INT, 1, 86400, "S",
	    "close a connection that moves no byte for S seconds (default 120)"),
	KEY(head_timeout_s, INT, 1, 3600, "S",
	    "close a connection whose request line and headers take longer than S seconds "
	    "from their first byte (default 5)"),
	KEY(max_connections_per_peer, INT, 1, 65536, "N",
	    "connections one address may have open at once; more are closed as they come "
	    "(default 64)"),
	KEY(allowed_hosts, LIST, 0, 0, "NAME,NAME",
	    "names this daemon answers to in Host and Origin, besides localhost, its host "
	    "name, the listen and advertise hosts and IP addresses; \"*\" for any"),
	KEY(api_reads_per_s, INT, 0, 1000000, "N",
	    "reads of the user-facing API (GET outside /v1/, but for health) served per second; "
	    "more wait their turn, so that a crowd of clients leaves the pipeline its CPU; 0 "
	    "for no limit (default 4000)"),
	KEY(events_buffer_bytes, INT, 16384, 1 << 26, "BYTES",
	    "coordinator: unsent bytes an event stream client may have before it is dropped "
	    "(default 262144)"),
	KEY(slowdown, NUM, 1, 1000, "FACTOR",
	    "stage, debug: compute takes FACTOR times as long (default 1; PUT /v1/debug changes "
	    "it)"),
};

#define NKEYS (sizeof(keys) / sizeof(keys[0]))

static char **str_at(struct pn_config *c, const struct key *k)
{
	return (char **)(void *)((char *)c + k->off);
}

static int *int_at(struct pn_config *c, const struct key *k)
{
	return (int *)(void *)((char *)c + k->off);
}

static double *num_at(struct pn_config *c, const struct key *k)
{
	return (double *)(void *)((char *)c + k->off);
}

static double checked_slowdown = 1.0;

double pn_config_slowdown(void)
{
	return checked_slowdown;
}

void pn_config_init(struct pn_config *c)
{
	memset(c, 0, sizeof(*c));
	c->role = strdup("stage");
	c->log_level = strdup("info");
	c->queue_depth = 4;
	c->out_depth = 2;
	c->retry_s = 30;
	c->stall_s = 120;
	c->batch_deadline_s = 10;
	c->max_batch = 256;
	c->max_body_bytes = 1024 * 1024;
	c->max_header_bytes = 16 * 1024;
	c->max_connections = 512;
	c->idle_timeout_s = 120;
	c->head_timeout_s = 5;
	c->max_connections_per_peer = 64;
	c->api_reads_per_s = 4000;
	c->events_buffer_bytes = 256 * 1024;
	c->chartjs = strdup(PN_CHARTJS);
	c->slowdown = 1.0;
}

void pn_config_free(struct pn_config *c)
{
	for (size_t i = 0; i < NKEYS; i++)
		if (keys[i].kind != INT && keys[i].kind != NUM && *str_at(c, &keys[i])) {
			free(*str_at(c, &keys[i]));
			*str_at(c, &keys[i]) = NULL;
		}
}

static const struct key *find(const char *name, size_t len)
{
	for (size_t i = 0; i < NKEYS; i++)
		if (strlen(keys[i].name) == len && strncmp(keys[i].name, name, len) == 0)
			return &keys[i];
	return NULL;
}

static int set_str(struct pn_config *c, const struct key *k, const char *v, char *err,
		   size_t errlen)
{
	char *s = strdup(v);
	if (!s) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	free(*str_at(c, k));
	*str_at(c, k) = s;
	return 0;
}

static int set_int(struct pn_config *c, const struct key *k, const char *v, char *err,
		   size_t errlen)
{
	char *end;
	errno = 0;
	long n = strtol(v, &end, 10);
	if (!*v || *end || errno || n < k->min || n > k->max) {
		snprintf(err, errlen, "%s: \"%s\" is not a whole number from %d to %d", k->name, v,
			 k->min, k->max);
		return -1;
	}
	*int_at(c, k) = (int)n;
	return 0;
}

static int set_num(struct pn_config *c, const struct key *k, const char *v, char *err,
		   size_t errlen)
{
	char *end;
	errno = 0;
	double x = strtod(v, &end);
	if (!*v || *end || errno || !(x >= k->min && x <= k->max)) {
		snprintf(err, errlen, "%s: \"%s\" is not a number from %d to %d", k->name, v,
			 k->min, k->max);
		return -1;
	}
	*num_at(c, k) = x;
	return 0;
}

static int set_text(struct pn_config *c, const struct key *k, const char *v, char *err,
		    size_t errlen)
{
	return k->kind == INT	? set_int(c, k, v, err, errlen)
	       : k->kind == NUM ? set_num(c, k, v, err, errlen)
				: set_str(c, k, v, err, errlen);
}

/* A JSON array of strings as one comma-joined string. */
static int set_list(struct pn_config *c, const struct key *k, json_t *arr, char *err, size_t errlen)
{
	size_t total = 1, i;
	json_t *v;
	json_array_foreach(arr, i, v)
	{
		if (!json_is_string(v) || strchr(json_string_value(v), ',')) {
			snprintf(err, errlen, "%s: item %zu must be a HOST:PORT string", k->name,
				 i);
			return -1;
		}
		total += json_string_length(v) + 1;
	}
	char *s = calloc(1, total);
	if (!s) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	json_array_foreach(arr, i, v)
	{
		if (i)
			strcat(s, ",");
		strcat(s, json_string_value(v));
	}
	free(*str_at(c, k));
	*str_at(c, k) = s;
	return 0;
}

int pn_config_load(struct pn_config *c, const char *path, char *err, size_t errlen)
{
	json_error_t jerr;
	json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
	if (!root) {
		snprintf(err, errlen, "%s:%d:%d: %s", path, jerr.line, jerr.column, jerr.text);
		return -1;
	}
	int rc = -1;
	if (!json_is_object(root)) {
		snprintf(err, errlen, "%s: the configuration must be a JSON object", path);
		goto out;
	}
	const char *name;
	json_t *v;
	char buf[32];
	json_object_foreach(root, name, v)
	{
		if (name[0] == '_')
			continue;
		const struct key *k = find(name, strlen(name));
		char sub[256];
		if (!k) {
			snprintf(err, errlen, "%s: unknown key \"%s\"", path, name);
			goto out;
		}
		int bad;
		if (k->kind == LIST && json_is_array(v))
			bad = set_list(c, k, v, sub, sizeof(sub));
		else if (k->kind == INT && json_is_integer(v)) {
			snprintf(buf, sizeof(buf), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
			bad = set_int(c, k, buf, sub, sizeof(sub));
		} else if (k->kind == NUM && json_is_number(v)) {
			snprintf(buf, sizeof(buf), "%.17g", json_number_value(v));
			bad = set_num(c, k, buf, sub, sizeof(sub));
		} else if (k->kind != INT && k->kind != NUM && json_is_string(v))
			bad = set_str(c, k, json_string_value(v), sub, sizeof(sub));
		else {
			snprintf(sub, sizeof(sub), "%s: must be %s", name,
				 k->kind == INT	  ? "an integer"
				 : k->kind == NUM ? "a number"
				 : k->kind == LIST
					 ? "an array of strings or a comma-separated string"
					 : "a string");
			bad = -1;
		}
		if (bad) {
			snprintf(err, errlen, "%s: %s", path, sub);
			goto out;
		}
	}
	rc = 0;
out:
	json_decref(root);
	return rc;
}

int pn_config_args(struct pn_config *c, int argc, char **argv, char *err, size_t errlen)
{
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (strncmp(a, "--", 2) != 0) {
			snprintf(err, errlen, "unexpected argument \"%s\" (try --help)", a);
			return -1;
		}
		a += 2;
		size_t len = strcspn(a, "=");
		const char *value = a[len] == '=' ? a + len + 1 : NULL;
		if ((len == 4 && strncmp(a, "help", 4) == 0) ||
		    (len == 7 && strncmp(a, "version", 7) == 0))
			continue;
		if (len == 6 && strncmp(a, "config", 6) == 0) {
			if (!value)
				i++;
			continue;
		}
		char name[64];
		if (len >= sizeof(name)) {
			snprintf(err, errlen, "unknown option --%s (try --help)", a);
			return -1;
		}
		for (size_t k = 0; k < len; k++)
			name[k] = a[k] == '-' ? '_' : a[k];
		const struct key *k = find(name, len);
		if (!k) {
			snprintf(err, errlen, "unknown option --%.*s (try --help)", (int)len, a);
			return -1;
		}
		if (!value) {
			if (i + 1 >= argc) {
				snprintf(err, errlen, "--%.*s needs a value", (int)len, a);
				return -1;
			}
			value = argv[++i];
		}
		if (set_text(c, k, value, err, errlen) != 0)
			return -1;
	}
	return 0;
}

/* The first line of a token file, trimmed. The file must be a regular
 * file that only its owner (and group, for reading) can see and change:
 * a token others can read is no secret, one they can write lets them in. */
static int read_token(const char *path, char **out, char *err, size_t errlen)
{
	char buf[4096];
	ssize_t n = 0;
	struct stat st;
	int fd = open(path, O_RDONLY | O_NOCTTY | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0) {
		snprintf(err, errlen, "token file %s: %s", path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "token file %s: not a regular file", path);
		goto fail;
	}
	if (st.st_mode & (S_IWGRP | S_IWOTH | S_IROTH)) {
		snprintf(err, errlen,
			 "token file %s: mode %03o lets %s; make it 0600 or 0640 (chmod 640 %s)",
			 path, (unsigned)(st.st_mode & 0777),
			 st.st_mode & (S_IWGRP | S_IWOTH) ? "others change it" : "anyone read it",
			 path);
		goto fail;
	}
	for (ssize_t got; n < (ssize_t)sizeof(buf) - 1; n += got) {
		got = read(fd, buf + n, sizeof(buf) - 1 - (size_t)n);
		if (got < 0 && errno == EINTR)
			got = 0;
		else if (got < 0) {
			snprintf(err, errlen, "token file %s: %s", path, strerror(errno));
			goto fail;
		} else if (got == 0)
			break;
	}
	close(fd);
	buf[n] = '\0';
	char *t = buf + strspn(buf, " \t\r");
	size_t len = strcspn(t, "\n");
	while (len && strchr(" \t\r", t[len - 1]))
		len--;
	if (len == 0) {
		snprintf(err, errlen, "token file %s: the first line holds no token", path);
		return -1;
	}
	for (size_t i = 0; i < len; i++)
		if (t[i] < 0x21 || t[i] > 0x7e || len > PN_TOKEN_MAX) {
			snprintf(err, errlen,
				 "token file %s: the token must be 1 to %d printable ASCII "
				 "characters without spaces",
				 path, PN_TOKEN_MAX);
			return -1;
		}
	free(*out);
	*out = strndup(t, len);
	if (!*out) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	return 0;
fail:
	close(fd);
	return -1;
}

/* The token: given, else systemd's credential "token" (LoadCredential=;
 * an empty one counts as none), else token_file. */
static int resolve_token(struct pn_config *c, char *err, size_t errlen)
{
	int given = c->token && *c->token, file = c->token_file && *c->token_file;
	if (given && file) {
		snprintf(err, errlen, "token and token_file (%s) are both set; keep one",
			 c->token_file);
		return -1;
	}
	if (given)
		return 0;
	const char *creds = getenv("CREDENTIALS_DIRECTORY");
	char path[4096];
	struct stat st;
	if (creds && *creds &&
	    (size_t)snprintf(path, sizeof(path), "%s/token", creds) < sizeof(path) &&
	    stat(path, &st) == 0 && st.st_size > 0)
		return read_token(path, &c->token, err, errlen);
	return file ? read_token(c->token_file, &c->token, err, errlen) : 0;
}

int pn_config_check(struct pn_config *c, char *err, size_t errlen)
{
	/* pn_config_init's defaults are copies that may have failed. */
	if (!c->role || !c->log_level || !c->chartjs) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	if (!c->model || !*c->model) {
		const char *installed = PN_PKGDATADIR "/models/mobilenetv2_cifar10.safetensors";
		free(c->model);
		c->model = strdup(access(installed, R_OK) == 0
					  ? installed
					  : "models/mobilenetv2_cifar10.safetensors");
		if (!c->model) {
			snprintf(err, errlen, "out of memory");
			return -1;
		}
	}
	if (!c->web_root && access(PN_PKGDATADIR "/web/index.html", R_OK) == 0 &&
	    !(c->web_root = strdup(PN_PKGDATADIR "/web"))) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	int coord = strcmp(c->role, "coordinator") == 0;
	if (!coord && strcmp(c->role, "stage") != 0) {
		snprintf(err, errlen, "role \"%s\": must be coordinator or stage", c->role);
		return -1;
	}
	if (pn_log_level_parse(c->log_level) < 0) {
		snprintf(err, errlen, "log_level \"%s\": must be error, warn, info or debug",
			 c->log_level);
		return -1;
	}
	if (!coord && c->stages && *c->stages) {
		snprintf(err, errlen, "stages is a coordinator setting; this is a stage");
		return -1;
	}
	if (resolve_token(c, err, errlen) != 0)
		return -1;
	checked_slowdown = c->slowdown;
	return 0;
}

void pn_config_usage(FILE *f)
{
	fprintf(f, "usage: pipenetd [--config FILE] [OPTIONS]\n\n"
		   "  --config FILE         a JSON file of the settings below (keys as named,\n"
		   "                        '-' written '_'); flags override it\n");
	for (size_t i = 0; i < NKEYS; i++) {
		char flag[64];
		snprintf(flag, sizeof(flag), "--%s %s", keys[i].name, keys[i].metavar);
		for (char *p = flag + 2; *p && *p != ' '; p++)
			if (*p == '_')
				*p = '-';
		fprintf(f, "  %-21s %s\n", flag, keys[i].help);
	}
	fprintf(f, "  --help                this text\n"
		   "  --version             the version\n");
}

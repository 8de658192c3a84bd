/* pipenetd settings: one table serves the JSON config file (key
 * "queue_depth") and the command line (flag --queue-depth). */
#ifndef PN_SETTINGS_H
#define PN_SETTINGS_H

#include <stddef.h>
#include <stdio.h>

struct pn_config {
	char *role;
	char *listen;
	char *advertise;
	char *model;
	char *stages; /* comma-separated HOST:PORT list */
	char *token; /* after pn_config_check: also what token_file held */
	char *token_file; /* the token's first line, see pn_config_check */
	char *web_root;
	char *log_level;
	char *port_file;
	char *chartjs; /* the Chart.js file served at /chart.js */
	char *data_dir; /* coordinator: runs' datasets are named in it */
	int queue_depth;
	int out_depth;
	int retry_s;
	int stall_s;
	int batch_deadline_s; /* the least time a batch waits before it is sent again */
	int max_batch;
	int max_body_bytes; /* API request bodies (frames have their own cap) */
	int max_header_bytes; /* request line and headers */
	int max_connections; /* client connections at once */
	int idle_timeout_s; /* a silent connection is closed after it */
	int head_timeout_s; /* a request head must arrive within it */
	int max_connections_per_peer; /* connections from one address at once */
	char *allowed_hosts; /* comma-separated names for Host and Origin */
	int api_reads_per_s; /* API reads served per second, 0 for no limit */
	int events_buffer_bytes; /* unsent bytes an event stream client may have */
	double slowdown; /* debug: a stage's compute takes this many times as long */
};

/* Defaults for every key. */
void pn_config_init(struct pn_config *c);
void pn_config_free(struct pn_config *c);
/* Applies a JSON object file: unknown keys and wrong types are errors;
 * keys starting with '_' are comments. 0 or -1 with a message. */
int pn_config_load(struct pn_config *c, const char *path, char *err, size_t errlen);
/* Applies "--key value" / "--key=value" flags over what is set. --config,
 * --help and --version are left to the caller (it skips them). */
int pn_config_args(struct pn_config *c, int argc, char **argv, char *err, size_t errlen);
/* The longest token (it travels in an Authorization header). */
#define PN_TOKEN_MAX 256
/* Cross-key checks, and the default model: the installed one, else
 * models/ under the current folder. The token is read: `token` as given,
 * else the first line of $CREDENTIALS_DIRECTORY/token when that exists and
 * is not empty (systemd's LoadCredential=), else of token_file; token and
 * token_file both set is an error, and so is a token file that is not a
 * regular file, is writable by group or others or readable by others. */
int pn_config_check(struct pn_config *c, char *err, size_t errlen);
void pn_config_usage(FILE *f);
/* The slowdown of the last configuration pn_config_check accepted (1 when
 * none): process-wide, so that a stage created later starts with it. */
double pn_config_slowdown(void);

#endif

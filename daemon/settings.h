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
	char *token;
	char *web_root;
	char *log_level;
	char *port_file;
	char *chartjs; /* the Chart.js file served at /chart.js */
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
/* Cross-key checks, and the default model: the installed one, else
 * models/ under the current folder. */
int pn_config_check(struct pn_config *c, char *err, size_t errlen);
void pn_config_usage(FILE *f);
/* The slowdown of the last configuration pn_config_check accepted (1 when
 * none): process-wide, so that a stage created later starts with it. */
double pn_config_slowdown(void);

#endif

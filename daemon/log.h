/* Log lines to stderr: "2024-11-26T12:00:00.123Z pipenetd[pid] LEVEL: message". */
#ifndef PN_LOG_H
#define PN_LOG_H

enum pn_log_level {
	PN_LOG_ERROR,
	PN_LOG_WARN,
	PN_LOG_INFO,
	PN_LOG_DEBUG,
};

/* "error", "warn", "info", "debug"; -1 for anything else. */
int pn_log_level_parse(const char *name);
void pn_log_set_level(int level);
int pn_log_enabled(int level);
void pn_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define pn_error(...) pn_log(PN_LOG_ERROR, __VA_ARGS__)
#define pn_warn(...) pn_log(PN_LOG_WARN, __VA_ARGS__)
#define pn_info(...) pn_log(PN_LOG_INFO, __VA_ARGS__)
#define pn_debug(...) pn_log(PN_LOG_DEBUG, __VA_ARGS__)

#endif

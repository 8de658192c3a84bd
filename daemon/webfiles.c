/* Static files (see webfiles.h). The path is decoded, checked segment by
 * segment, then resolved with realpath and required to stay inside the
 * resolved root, so neither ".." nor a symbolic link leads out of it. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "http.h"
#include "webfiles.h"

#define MAX_FILE (16 * 1024 * 1024)

static const struct {
	const char *ext, *type;
} types[] = {
	{".html", "text/html; charset=utf-8"},
	{".js", "text/javascript; charset=utf-8"},
	{".mjs", "text/javascript; charset=utf-8"},
	{".css", "text/css; charset=utf-8"},
	{".json", "application/json"},
	{".svg", "image/svg+xml"},
	{".png", "image/png"},
	{".jpg", "image/jpeg"},
	{".ico", "image/x-icon"},
	{".txt", "text/plain; charset=utf-8"},
	{".map", "application/json"},
};

static const char *content_type(const char *path)
{
	const char *dot = strrchr(path, '.');
	for (size_t i = 0; dot && i < sizeof(types) / sizeof(types[0]); i++)
		if (strcmp(dot, types[i].ext) == 0)
			return types[i].type;
	return "application/octet-stream";
}

static int hexval(int c)
{
	return c >= '0' && c <= '9'   ? c - '0'
	       : c >= 'a' && c <= 'f' ? c - 'a' + 10
	       : c >= 'A' && c <= 'F' ? c - 'A' + 10
				      : -1;
}

/* Percent-decodes `in` into out; -1 for a bad escape or a NUL byte. */
static int decode(const char *in, char *out, size_t outlen)
{
	size_t o = 0;
	for (; *in; in++) {
		int c = (unsigned char)*in;
		if (c == '%') {
			int hi = hexval(in[1]), lo = hi < 0 ? -1 : hexval(in[2]);
			if (lo < 0)
				return -1;
			c = hi * 16 + lo;
			in += 2;
		}
		if (c == 0 || o + 1 >= outlen)
			return -1;
		out[o++] = (char)c;
	}
	out[o] = '\0';
	return 0;
}

/* Every segment is non-empty, does not start with '.', has no backslash. */
static int safe(const char *rel)
{
	const char *p = rel;
	while (*p) {
		size_t n = strcspn(p, "/");
		if (n == 0 || p[0] == '.' || memchr(p, '\\', n))
			return 0;
		p += n;
		if (*p == '/')
			p++;
		if (*p == '\0' && p[-1] == '/')
			return 0;
	}
	return 1;
}

void pn_web_serve_file(struct pn_req *r, const char *path)
{
	struct stat st;
	char *buf = NULL;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > MAX_FILE) {
		if (fd >= 0)
			close(fd);
		pn_reply_error(r, 404, "not found", "no file for %s", pn_req_path(r));
		return;
	}
	size_t len = (size_t)st.st_size, got = 0;
	buf = malloc(len ? len : 1);
	while (buf && got < len) {
		ssize_t n = read(fd, buf + got, len - got);
		if (n <= 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	close(fd);
	if (!buf || got != len) {
		free(buf);
		pn_reply_error(r, 500, "cannot read", "%s could not be read", pn_req_path(r));
		return;
	}
	pn_reply_header(r, "Cache-Control", "no-cache");
	pn_reply_header(r, "X-Content-Type-Options", "nosniff");
	pn_reply_bytes(r, 200, content_type(path), buf, len);
	free(buf);
}

void pn_web_serve(struct pn_req *r, const char *root, const char *rel)
{
	char name[1024], joined[PATH_MAX + 1024], realroot[PATH_MAX], real[PATH_MAX];
	if (!root || !*root) {
		pn_reply_error(r, 404, "not found",
			       "no dashboard: start the coordinator with --web-root DIR");
		return;
	}
	if (decode(rel, name, sizeof(name)) != 0 || !safe(name)) {
		pn_reply_error(r, 404, "not found", "no file for %s", pn_req_path(r));
		return;
	}
	if (!*name)
		snprintf(name, sizeof(name), "index.html");
	if (!realpath(root, realroot)) {
		pn_reply_error(r, 404, "not found", "the web root %s is missing", root);
		return;
	}
	snprintf(joined, sizeof(joined), "%s/%s", realroot, name);
	size_t n = strlen(realroot);
	if (!realpath(joined, real) || strncmp(real, realroot, n) != 0 || real[n] != '/') {
		pn_reply_error(r, 404, "not found", "no file for %s", pn_req_path(r));
		return;
	}
	pn_web_serve_file(r, real);
}

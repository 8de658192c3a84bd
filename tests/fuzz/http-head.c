/* Fuzz target: an HTTP request head as the server reads it before evhttp
 * does (pn_http_parse_head decides a body's limit from it), with the
 * invariants its callers rely on checked. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pn_http_head hd, again;
	int rc = pn_http_parse_head((const char *)data, size, &hd);
	if (rc < -1 || rc > 1)
		abort();
	if (memchr(hd.path, '\0', sizeof(hd.path)) == NULL ||
	    (hd.auth_len && hd.auth_off + hd.auth_len > size))
		abort();
	if (hd.path[0] && (hd.path[0] != '/' || strpbrk(hd.path, "?# ")))
		abort();
	if (rc != 1)
		return 0;
	if (hd.len == 0 || hd.len > size || data[hd.len - 1] != '\n' || hd.content_length < -1 ||
	    hd.auth_off + hd.auth_len > hd.len)
		abort();
	/* The head alone says the same; one byte less is not a whole head. */
	if (pn_http_parse_head((const char *)data, hd.len, &again) != 1 ||
	    again.content_length != hd.content_length || again.chunked != hd.chunked ||
	    again.method != hd.method || strcmp(again.path, hd.path) != 0 ||
	    again.auth_off != hd.auth_off || again.auth_len != hd.auth_len)
		abort();
	if (pn_http_parse_head((const char *)data, hd.len - 1, &again) == 1)
		abort();
	return 0;
}

/* Static files for the dashboard: GET of a path under a root folder. */
#ifndef PN_WEBFILES_H
#define PN_WEBFILES_H

struct pn_req;

/* Answers `r` with the file `rel` (the URL path after the first '/',
 * still percent-encoded; "" means index.html) under `root`: only regular
 * files inside the root, no ".." or hidden segments, a content type by
 * extension; 404 otherwise (also when root is NULL). */
void pn_web_serve(struct pn_req *r, const char *root, const char *rel);
/* Answers `r` with one file at `path` (e.g. Chart.js), 404 if missing. */
void pn_web_serve_file(struct pn_req *r, const char *path);

#endif

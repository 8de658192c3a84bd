/* Reading safetensors files: an 8-byte little-endian header length, a
 * JSON header (parsed with jansson) naming each tensor's dtype, shape and
 * byte range, then the raw little-endian data. Everything is checked at
 * open; errors name the file and the tensor or key. */
#ifndef PN_SAFETENSORS_H
#define PN_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#define PN_ST_MAX_DIMS 8

struct pn_st;

struct pn_st *pn_st_open(const char *path, char *err, size_t errlen);
/* The same from memory: takes ownership of buf (malloc'ed), even on
 * failure; `name` stands for the path in messages. */
struct pn_st *pn_st_from_buffer(const char *name, uint8_t *buf, size_t size, char *err,
				size_t errlen);
void pn_st_free(struct pn_st *st);
const char *pn_st_path(const struct pn_st *st);

/* A string from __metadata__, or NULL when the key is absent. */
const char *pn_st_meta(const struct pn_st *st, const char *key);

/* Shape of tensor `name`: returns its number of dimensions (filling dims),
 * or -1 when there is no such tensor. */
int pn_st_shape(const struct pn_st *st, const char *name, int64_t dims[PN_ST_MAX_DIMS]);

/* Copies F32 tensor `name` into out after checking its dtype and that
 * its shape is exactly dims[0..ndim). Returns 0, or -1 with a message
 * naming the tensor and what was expected. */
int pn_st_read_f32(const struct pn_st *st, const char *name, int ndim, const int64_t *dims,
		   float *out, char *err, size_t errlen);

#endif

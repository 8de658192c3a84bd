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
/* Calls fn for each metadata key and value, in file order; stops at and
 * returns fn's first nonzero result, else 0. */
int pn_st_meta_each(const struct pn_st *st,
		    int (*fn)(const char *key, const char *value, void *arg), void *arg);

/* Shape of tensor `name`: returns its number of dimensions (filling dims),
 * or -1 when there is no such tensor. */
int pn_st_shape(const struct pn_st *st, const char *name, int64_t dims[PN_ST_MAX_DIMS]);

/* Copies F32 tensor `name` into out after checking its dtype and that
 * its shape is exactly dims[0..ndim). Returns 0, or -1 with a message
 * naming the tensor and what was expected. */
int pn_st_read_f32(const struct pn_st *st, const char *name, int ndim, const int64_t *dims,
		   float *out, char *err, size_t errlen);
/* The same for any dtype ("F32", "I32", "I8", ...): out receives the raw
 * little-endian elements. */
int pn_st_read(const struct pn_st *st, const char *name, const char *dtype, int ndim,
	       const int64_t *dims, void *out, char *err, size_t errlen);

/* Writing: tensors and metadata are laid out in the order they are added
 * (the header's keys too), so the same calls give the same bytes. The
 * header is padded with spaces to a multiple of 8 bytes. */
struct pn_st_writer;
struct pn_st_writer *pn_st_writer_new(void);
void pn_st_writer_free(struct pn_st_writer *w);
/* Each returns 0, or -1 when out of memory or given a duplicate name. */
int pn_st_writer_meta(struct pn_st_writer *w, const char *key, const char *value);
int pn_st_writer_add(struct pn_st_writer *w, const char *name, const char *dtype, int ndim,
		     const int64_t *dims, const void *data);
/* The file image (malloc'ed, the caller's), or NULL when out of memory. */
uint8_t *pn_st_writer_finish(struct pn_st_writer *w, size_t *len);

#endif

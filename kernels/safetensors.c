/* safetensors reader; see safetensors.h. The whole file is read once into
 * memory: the largest model is 9 MB and is released after packing. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "safetensors.h"

/* Headers are small (25 kB for MobileNetV2); this bounds hostile input. */
#define PN_ST_MAX_HEADER (16u << 20)

struct pn_st_tensor {
	const char *name;
	const char *dtype;
	int ndim;
	int64_t dims[PN_ST_MAX_DIMS];
	uint64_t begin, end;
};

struct pn_st {
	char *path;
	uint8_t *file;
	size_t size;
	const uint8_t *data;
	size_t data_size;
	json_t *header;
	struct pn_st_tensor *tensors;
	size_t ntensors;
};

static size_t dtype_size(const char *dtype)
{
	static const struct {
		const char *name;
		size_t size;
	} sizes[] = {
		{"F64", 8}, {"F32", 4}, {"F16", 2}, {"BF16", 2},    {"I64", 8},
		{"I32", 4}, {"I16", 2}, {"I8", 1},  {"U8", 1},	    {"BOOL", 1},
		{"U16", 2}, {"U32", 4}, {"U64", 8}, {"F8_E4M3", 1}, {"F8_E5M2", 1},
	};
	for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
		if (strcmp(dtype, sizes[i].name) == 0)
			return sizes[i].size;
	return 0;
}

static int read_file(const char *path, uint8_t **out, size_t *size, char *err, size_t errlen)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
		return -1;
	}
	struct stat sb;
	if (fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode)) {
		snprintf(err, errlen, "%s: not a regular file", path);
		close(fd);
		return -1;
	}
	size_t n = (size_t)sb.st_size;
	uint8_t *buf = malloc(n ? n : 1);
	if (!buf) {
		snprintf(err, errlen, "%s: out of memory reading %zu bytes", path, n);
		close(fd);
		return -1;
	}
	size_t got = 0;
	while (got < n) {
		ssize_t r = read(fd, buf + got, n - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			snprintf(err, errlen, "%s: read failed after %zu of %zu bytes: %s", path,
				 got, n, r < 0 ? strerror(errno) : "unexpected end of file");
			free(buf);
			close(fd);
			return -1;
		}
		got += (size_t)r;
	}
	close(fd);
	*out = buf;
	*size = n;
	return 0;
}

static int cmp_begin(const void *a, const void *b)
{
	const struct pn_st_tensor *x = a, *y = b;
	return x->begin < y->begin ? -1 : x->begin > y->begin;
}

static int parse_tensor(struct pn_st *st, const char *name, json_t *v, struct pn_st_tensor *t,
			char *err, size_t errlen)
{
	json_t *dtype = json_object_get(v, "dtype");
	json_t *shape = json_object_get(v, "shape");
	json_t *offs = json_object_get(v, "data_offsets");

	t->name = name;
	if (!json_is_object(v) || !json_is_string(dtype) || !json_is_array(shape) ||
	    !json_is_array(offs)) {
		snprintf(err, errlen,
			 "%s: tensor %s: expected an object with dtype, shape and data_offsets",
			 st->path, name);
		return -1;
	}
	t->dtype = json_string_value(dtype);
	size_t esize = dtype_size(t->dtype);
	if (!esize) {
		snprintf(err, errlen, "%s: tensor %s: unknown dtype \"%s\"", st->path, name,
			 t->dtype);
		return -1;
	}
	if (json_array_size(shape) > PN_ST_MAX_DIMS) {
		snprintf(err, errlen, "%s: tensor %s: %zu dimensions, at most %d supported",
			 st->path, name, json_array_size(shape), PN_ST_MAX_DIMS);
		return -1;
	}
	t->ndim = (int)json_array_size(shape);
	uint64_t count = 1;
	for (int i = 0; i < t->ndim; i++) {
		json_t *d = json_array_get(shape, (size_t)i);
		if (!json_is_integer(d) || json_integer_value(d) < 0 ||
		    json_integer_value(d) > (1ll << 40)) {
			snprintf(err, errlen,
				 "%s: tensor %s: shape[%d] is not a non-negative integer", st->path,
				 name, i);
			return -1;
		}
		t->dims[i] = json_integer_value(d);
		if (t->dims[i] && count > UINT64_MAX / 8 / (uint64_t)t->dims[i]) {
			snprintf(err, errlen, "%s: tensor %s: shape too large", st->path, name);
			return -1;
		}
		count *= (uint64_t)t->dims[i];
	}
	json_t *b = json_array_get(offs, 0), *e = json_array_get(offs, 1);
	if (json_array_size(offs) != 2 || !json_is_integer(b) || !json_is_integer(e) ||
	    json_integer_value(b) < 0 || json_integer_value(e) < json_integer_value(b)) {
		snprintf(err, errlen,
			 "%s: tensor %s: data_offsets must be two integers [begin, end] with "
			 "0 <= begin <= end",
			 st->path, name);
		return -1;
	}
	t->begin = (uint64_t)json_integer_value(b);
	t->end = (uint64_t)json_integer_value(e);
	if (t->end > st->data_size) {
		snprintf(err, errlen,
			 "%s: tensor %s: data_offsets [%" PRIu64 ", %" PRIu64
			 "] run past the end of the data (%zu bytes)",
			 st->path, name, t->begin, t->end, st->data_size);
		return -1;
	}
	if (t->end - t->begin != count * esize) {
		snprintf(err, errlen,
			 "%s: tensor %s: %" PRIu64 " bytes of data for %" PRIu64
			 " elements of %s (expected %" PRIu64 ")",
			 st->path, name, t->end - t->begin, count, t->dtype, count * esize);
		return -1;
	}
	return 0;
}

static int parse_header(struct pn_st *st, char *err, size_t errlen)
{
	json_error_t jerr;
	uint64_t hlen = 0;
	for (int i = 7; i >= 0; i--)
		hlen = hlen << 8 | st->file[i];
	if (hlen > st->size - 8) {
		snprintf(err, errlen,
			 "%s: header length %" PRIu64 " runs past the end of the file (%zu bytes)",
			 st->path, hlen, st->size);
		return -1;
	}
	if (hlen > PN_ST_MAX_HEADER) {
		snprintf(err, errlen, "%s: header length %" PRIu64 " exceeds the limit of %u bytes",
			 st->path, hlen, PN_ST_MAX_HEADER);
		return -1;
	}
	st->header =
		json_loadb((const char *)st->file + 8, (size_t)hlen, JSON_REJECT_DUPLICATES, &jerr);
	if (!st->header) {
		snprintf(err, errlen, "%s: header is not valid JSON: %s (header byte %d)", st->path,
			 jerr.text, jerr.position);
		return -1;
	}
	if (!json_is_object(st->header)) {
		snprintf(err, errlen, "%s: header is not a JSON object", st->path);
		return -1;
	}
	st->data = st->file + 8 + hlen;
	st->data_size = st->size - 8 - (size_t)hlen;

	json_t *meta = json_object_get(st->header, "__metadata__");
	if (meta) {
		const char *key;
		json_t *v;
		if (!json_is_object(meta)) {
			snprintf(err, errlen, "%s: __metadata__ is not an object", st->path);
			return -1;
		}
		json_object_foreach(meta, key, v)
		{
			if (!json_is_string(v)) {
				snprintf(err, errlen, "%s: metadata key %s: value is not a string",
					 st->path, key);
				return -1;
			}
		}
	}

	size_t n = json_object_size(st->header) - (meta ? 1 : 0);
	st->tensors = calloc(n ? n : 1, sizeof *st->tensors);
	if (!st->tensors) {
		snprintf(err, errlen, "%s: out of memory", st->path);
		return -1;
	}
	const char *name;
	json_t *v;
	json_object_foreach(st->header, name, v)
	{
		if (strcmp(name, "__metadata__") == 0)
			continue;
		if (parse_tensor(st, name, v, &st->tensors[st->ntensors], err, errlen) < 0)
			return -1;
		st->ntensors++;
	}

	/* No two tensors may share bytes. */
	struct pn_st_tensor *sorted = malloc((n ? n : 1) * sizeof *sorted);
	if (!sorted) {
		snprintf(err, errlen, "%s: out of memory", st->path);
		return -1;
	}
	memcpy(sorted, st->tensors, st->ntensors * sizeof *sorted);
	qsort(sorted, st->ntensors, sizeof *sorted, cmp_begin);
	for (size_t i = 1; i < st->ntensors; i++) {
		if (sorted[i].begin < sorted[i - 1].end) {
			snprintf(err, errlen,
				 "%s: tensors %s and %s overlap (bytes %" PRIu64 "..%" PRIu64
				 " and %" PRIu64 "..%" PRIu64 ")",
				 st->path, sorted[i - 1].name, sorted[i].name, sorted[i - 1].begin,
				 sorted[i - 1].end, sorted[i].begin, sorted[i].end);
			free(sorted);
			return -1;
		}
	}
	free(sorted);
	return 0;
}

struct pn_st *pn_st_from_buffer(const char *name, uint8_t *buf, size_t size, char *err,
				size_t errlen)
{
	struct pn_st *st = calloc(1, sizeof *st);
	if (!st || !(st->path = strdup(name))) {
		snprintf(err, errlen, "%s: out of memory", name);
		free(st);
		free(buf);
		return NULL;
	}
	st->file = buf;
	st->size = size;
	if (st->size < 8) {
		snprintf(err, errlen,
			 "%s: %zu bytes is too short for a safetensors file (8-byte header length "
			 "missing)",
			 name, st->size);
		goto fail;
	}
	if (parse_header(st, err, errlen) < 0)
		goto fail;
	return st;
fail:
	pn_st_free(st);
	return NULL;
}

struct pn_st *pn_st_open(const char *path, char *err, size_t errlen)
{
	uint8_t *buf;
	size_t size;
	if (read_file(path, &buf, &size, err, errlen) < 0)
		return NULL;
	return pn_st_from_buffer(path, buf, size, err, errlen);
}

void pn_st_free(struct pn_st *st)
{
	if (!st)
		return;
	json_decref(st->header);
	free(st->tensors);
	free(st->file);
	free(st->path);
	free(st);
}

const char *pn_st_path(const struct pn_st *st)
{
	return st->path;
}

const char *pn_st_meta(const struct pn_st *st, const char *key)
{
	json_t *meta = json_object_get(st->header, "__metadata__");
	return json_string_value(json_object_get(meta, key));
}

int pn_st_meta_each(const struct pn_st *st,
		    int (*fn)(const char *key, const char *value, void *arg), void *arg)
{
	json_t *meta = json_object_get(st->header, "__metadata__"), *v;
	const char *key;
	json_object_foreach(meta, key, v)
	{
		int rc = fn(key, json_string_value(v), arg);
		if (rc)
			return rc;
	}
	return 0;
}

static const struct pn_st_tensor *find(const struct pn_st *st, const char *name)
{
	for (size_t i = 0; i < st->ntensors; i++)
		if (strcmp(st->tensors[i].name, name) == 0)
			return &st->tensors[i];
	return NULL;
}

int pn_st_shape(const struct pn_st *st, const char *name, int64_t dims[PN_ST_MAX_DIMS])
{
	const struct pn_st_tensor *t = find(st, name);
	if (!t)
		return -1;
	memcpy(dims, t->dims, sizeof t->dims);
	return t->ndim;
}

static void format_dims(char *buf, size_t len, int ndim, const int64_t *dims)
{
	size_t used = (size_t)snprintf(buf, len, "[");
	for (int i = 0; i < ndim && used < len; i++)
		used += (size_t)snprintf(buf + used, len - used, "%s%" PRId64, i ? ", " : "",
					 dims[i]);
	if (used < len)
		snprintf(buf + used, len - used, "]");
}

int pn_st_read(const struct pn_st *st, const char *name, const char *dtype, int ndim,
	       const int64_t *dims, void *out, char *err, size_t errlen)
{
	const struct pn_st_tensor *t = find(st, name);
	if (!t) {
		snprintf(err, errlen, "%s: tensor %s is missing", st->path, name);
		return -1;
	}
	if (strcmp(t->dtype, dtype) != 0) {
		snprintf(err, errlen, "%s: tensor %s has dtype %s, expected %s", st->path, name,
			 t->dtype, dtype);
		return -1;
	}
	int same = t->ndim == ndim;
	for (int i = 0; same && i < ndim; i++)
		same = t->dims[i] == dims[i];
	if (!same) {
		char want[96], got[96];
		format_dims(want, sizeof want, ndim, dims);
		format_dims(got, sizeof got, t->ndim, t->dims);
		snprintf(err, errlen, "%s: tensor %s has shape %s, expected %s", st->path, name,
			 got, want);
		return -1;
	}
	/* Little-endian on disk; every target we build for is little-endian. */
	memcpy(out, st->data + t->begin, (size_t)(t->end - t->begin));
	return 0;
}

int pn_st_read_f32(const struct pn_st *st, const char *name, int ndim, const int64_t *dims,
		   float *out, char *err, size_t errlen)
{
	return pn_st_read(st, name, "F32", ndim, dims, out, err, errlen);
}

/* ---- writing ---- */

struct pn_st_writer {
	json_t *header, *meta;
	uint8_t *data;
	size_t used, cap;
	int failed;
};

struct pn_st_writer *pn_st_writer_new(void)
{
	struct pn_st_writer *w = calloc(1, sizeof *w);
	if (!w)
		return NULL;
	w->header = json_object();
	w->meta = json_object();
	if (!w->header || !w->meta || json_object_set(w->header, "__metadata__", w->meta) < 0) {
		pn_st_writer_free(w);
		return NULL;
	}
	return w;
}

void pn_st_writer_free(struct pn_st_writer *w)
{
	if (!w)
		return;
	json_decref(w->header);
	json_decref(w->meta);
	free(w->data);
	free(w);
}

int pn_st_writer_meta(struct pn_st_writer *w, const char *key, const char *value)
{
	if (json_object_get(w->meta, key) ||
	    json_object_set_new(w->meta, key, json_string(value)) < 0) {
		w->failed = 1;
		return -1;
	}
	return 0;
}

int pn_st_writer_add(struct pn_st_writer *w, const char *name, const char *dtype, int ndim,
		     const int64_t *dims, const void *data)
{
	size_t bytes = dtype_size(dtype);
	json_t *shape = json_array(), *t = NULL;
	for (int i = 0; i < ndim; i++) {
		bytes *= (size_t)dims[i];
		json_array_append_new(shape, json_integer(dims[i]));
	}
	if (!dtype_size(dtype) || json_object_get(w->header, name))
		goto fail;
	if (w->used + bytes > w->cap) {
		size_t cap = w->cap ? w->cap : 4096;
		while (cap < w->used + bytes)
			cap *= 2;
		uint8_t *p = realloc(w->data, cap);
		if (!p)
			goto fail;
		w->data = p;
		w->cap = cap;
	}
	t = json_pack("{s:s, s:O, s:[I, I]}", "dtype", dtype, "shape", shape, "data_offsets",
		      (json_int_t)w->used, (json_int_t)(w->used + bytes));
	if (!t || json_object_set_new(w->header, name, t) < 0)
		goto fail;
	memcpy(w->data + w->used, data, bytes);
	w->used += bytes;
	json_decref(shape);
	return 0;
fail:
	json_decref(shape);
	w->failed = 1;
	return -1;
}

uint8_t *pn_st_writer_finish(struct pn_st_writer *w, size_t *len)
{
	if (w->failed)
		return NULL;
	char *text = json_dumps(w->header, JSON_COMPACT | JSON_PRESERVE_ORDER);
	if (!text)
		return NULL;
	size_t hlen = strlen(text), padded = (hlen + 7) / 8 * 8;
	uint8_t *out = malloc(8 + padded + w->used + 1);
	if (!out) {
		free(text);
		return NULL;
	}
	for (int i = 0; i < 8; i++)
		out[i] = (uint8_t)((uint64_t)padded >> (8 * i));
	memcpy(out + 8, text, hlen);
	memset(out + 8 + hlen, ' ', padded - hlen);
	if (w->used)
		memcpy(out + 8 + padded, w->data, w->used);
	free(text);
	*len = 8 + padded + w->used;
	return out;
}

/* The wire format (see frame.h for the layout) and CRC32C. */
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "frame.h"
#include "quant.h" /* pn_q_from_float, pn_q_to_float */

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "payloads are copied as host floats: a little-endian host is assumed"
#endif

size_t pn_dtype_size(int dtype)
{
	switch (dtype) {
	case PN_DTYPE_F32:
		return 4;
	case PN_DTYPE_F16:
		return 2;
	case PN_DTYPE_U8:
	case PN_DTYPE_I8:
		return 1;
	}
	return 0;
}

const char *pn_dtype_name(int dtype)
{
	switch (dtype) {
	case PN_DTYPE_F32:
		return "f32";
	case PN_DTYPE_F16:
		return "f16";
	case PN_DTYPE_U8:
		return "u8";
	case PN_DTYPE_I8:
		return "i8";
	}
	return "?";
}

int pn_dtype_parse(const char *name)
{
	if (strcmp(name, "f32") == 0)
		return PN_DTYPE_F32;
	if (strcmp(name, "f16") == 0)
		return PN_DTYPE_F16;
	if (strcmp(name, "u8") == 0)
		return PN_DTYPE_U8;
	if (strcmp(name, "i8") == 0)
		return PN_DTYPE_I8;
	return 0;
}

int pn_wire_dtype(int dtype)
{
	return dtype == PN_DTYPE_F32 || dtype == PN_DTYPE_F16 || dtype == PN_DTYPE_I8;
}

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static void put32(uint8_t *p, uint32_t v)
{
	put16(p, (uint16_t)v);
	put16(p + 2, (uint16_t)(v >> 16));
}

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)get16(p) | (uint32_t)get16(p + 2) << 16;
}

void pn_frame_header_put(const struct pn_frame_header *h, uint8_t out[PN_FRAME_HEADER])
{
	put32(out, PN_FRAME_MAGIC);
	put16(out + 4, PN_FRAME_VERSION);
	put16(out + 6, PN_FRAME_HEADER);
	put32(out + 8, (uint32_t)h->run);
	put32(out + 12, (uint32_t)(h->run >> 32));
	put32(out + 16, h->seq);
	put16(out + 20, h->first_block);
	out[22] = h->dtype;
	out[23] = h->epoch;
	put32(out + 24, h->n);
	put32(out + 28, h->h);
	put32(out + 32, h->w);
	put32(out + 36, h->c);
	put32(out + 40, h->payload_len);
	put32(out + 44, h->crc);
}

/* Bytes of payload before the values. */
static size_t params_size(int dtype)
{
	return dtype == PN_DTYPE_I8 ? PN_FRAME_I8_PARAMS : 0;
}

size_t pn_frame_size(int dtype, size_t n, size_t h, size_t w, size_t c)
{
	size_t es = pn_dtype_size(dtype), ps = params_size(dtype);
	if (!es || !n || !h || !w || !c)
		return 0;
	if (h > UINT32_MAX / w || h * w > UINT32_MAX / c || h * w * c > UINT32_MAX / es ||
	    h * w * c * es > (UINT32_MAX - ps) / n)
		return 0;
	return PN_FRAME_HEADER + ps + n * h * w * c * es;
}

static int fail(struct pn_frame_error *e, const char *field, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int fail(struct pn_frame_error *e, const char *field, const char *fmt, ...)
{
	va_list ap;
	e->field = field;
	va_start(ap, fmt);
	vsnprintf(e->detail, sizeof(e->detail), fmt, ap);
	va_end(ap);
	return -1;
}

/* One header field against what the plan expects. */
static int expect_field(struct pn_frame_error *e, const char *field, uint64_t got, uint64_t want)
{
	if (got == want)
		return 0;
	return fail(e, field, "%s is %" PRIu64 ", this stage expects %" PRIu64, field, got, want);
}

static float get_f32(const uint8_t *p)
{
	uint32_t u = get32(p);
	float f;
	memcpy(&f, &u, sizeof f);
	return f;
}

/* The scale and zero point at the start of an i8 payload. */
static int check_i8_params(const uint8_t *payload, const struct pn_frame_expect *x,
			   struct pn_frame_header *h, struct pn_frame_error *e)
{
	h->scale = get_f32(payload);
	h->zero_point = (int32_t)get32(payload + 4);
	if (!isfinite(h->scale) || !(h->scale > 0))
		return fail(e, "scale", "i8 scale is %g, expected a finite number > 0",
			    (double)h->scale);
	if (h->zero_point < -128 || h->zero_point > 127)
		return fail(e, "zero_point", "i8 zero_point is %" PRId32 ", expected -128 .. 127",
			    h->zero_point);
	if (x && x->scale > 0 && (h->scale != x->scale || h->zero_point != x->zero_point))
		return fail(e, h->scale != x->scale ? "scale" : "zero_point",
			    "i8 scale %.9g and zero_point %" PRId32
			    " are not the model's %.9g and %" PRId32 " at block %d",
			    (double)h->scale, h->zero_point, (double)x->scale, x->zero_point,
			    x->first_block);
	return 0;
}

int pn_frame_validate(const uint8_t *buf, size_t len, const struct pn_frame_expect *x,
		      struct pn_frame_header *h, struct pn_frame_error *e)
{
	memset(h, 0, sizeof(*h));
	if (len < 4)
		return fail(e, "magic", "body of %zu bytes is shorter than the magic number", len);
	if (get32(buf) != PN_FRAME_MAGIC)
		return fail(e, "magic", "magic is 0x%08" PRIx32 ", not 0x%08x (\"PNFR\")",
			    get32(buf), PN_FRAME_MAGIC);
	if (len < PN_FRAME_HEADER)
		return fail(e, "header_len", "body of %zu bytes is shorter than the %d-byte header",
			    len, PN_FRAME_HEADER);
	if (get16(buf + 4) != PN_FRAME_VERSION)
		return fail(e, "version", "version is %u, this daemon speaks version %d",
			    get16(buf + 4), PN_FRAME_VERSION);
	if (get16(buf + 6) != PN_FRAME_HEADER)
		return fail(e, "header_len", "header_len is %u, version 1 headers are %d bytes",
			    get16(buf + 6), PN_FRAME_HEADER);
	h->run = get32(buf + 8) | (uint64_t)get32(buf + 12) << 32;
	h->seq = get32(buf + 16);
	h->first_block = get16(buf + 20);
	h->dtype = buf[22];
	h->epoch = buf[23];
	h->n = get32(buf + 24);
	h->h = get32(buf + 28);
	h->w = get32(buf + 32);
	h->c = get32(buf + 36);
	h->payload_len = get32(buf + 40);
	h->crc = get32(buf + 44);
	if (!pn_dtype_size(h->dtype))
		return fail(e, "dtype", "dtype %u is not 1 (f32), 2 (f16), 3 (u8) or 4 (i8)",
			    h->dtype);
	if ((uint64_t)h->payload_len != (uint64_t)len - PN_FRAME_HEADER)
		return fail(e, "payload_len",
			    "payload_len is %" PRIu32
			    " but the body holds %zu bytes after the header",
			    h->payload_len, len - PN_FRAME_HEADER);
	if (pn_frame_size(h->dtype, h->n, h->h, h->w, h->c) != len)
		return fail(e, "payload_len",
			    "payload_len %" PRIu32 " does not match n x h x w x c = %" PRIu32
			    " x %" PRIu32 " x %" PRIu32 " x %" PRIu32 " %s elements%s",
			    h->payload_len, h->n, h->h, h->w, h->c, pn_dtype_name(h->dtype),
			    h->dtype == PN_DTYPE_I8 ? " after 8 bytes of scale and zero point"
						    : "");
	if (x) {
		if (expect_field(e, "run", h->run, x->run) ||
		    (x->epoch >= 0 && expect_field(e, "epoch", h->epoch, (uint64_t)x->epoch)) ||
		    expect_field(e, "first_block", h->first_block, (uint64_t)x->first_block) ||
		    expect_field(e, "dtype", h->dtype, (uint64_t)x->dtype) ||
		    expect_field(e, "h", h->h, (uint64_t)x->h) ||
		    expect_field(e, "w", h->w, (uint64_t)x->w) ||
		    expect_field(e, "c", h->c, (uint64_t)x->c))
			return -1;
		if (h->n < 1 || h->n > (uint32_t)x->max_n)
			return fail(e, "n", "n is %" PRIu32 ", this stage takes 1 to %d images",
				    h->n, x->max_n);
	}
	uint32_t crc = pn_crc32c(0, buf + PN_FRAME_HEADER, h->payload_len);
	if (crc != h->crc)
		return fail(e, "crc", "payload CRC32C is 0x%08" PRIx32 ", header says 0x%08" PRIx32,
			    crc, h->crc);
	return h->dtype == PN_DTYPE_I8 ? check_i8_params(buf + PN_FRAME_HEADER, x, h, e) : 0;
}

void pn_frame_seal(struct pn_frame_header *hd, uint8_t *buf)
{
	size_t count = (size_t)hd->n * hd->h * hd->w * hd->c;
	hd->payload_len = (uint32_t)(params_size(hd->dtype) + count * pn_dtype_size(hd->dtype));
	hd->crc = pn_crc32c(0, buf + PN_FRAME_HEADER, hd->payload_len);
	pn_frame_header_put(hd, buf);
}

/* A scale and zero point for values in [min(x, 0), max(x, 0)], as
 * `pipenet quantize` calibrates a tensor (quantize.h); non-finite values
 * are left out of the range (they saturate). */
static void i8_range(const float *x, size_t n, float *scale, int32_t *zero_point)
{
	float lo = 0, hi = 0;
	for (size_t i = 0; i < n; i++)
		if (isfinite(x[i])) {
			lo = x[i] < lo ? x[i] : lo;
			hi = x[i] > hi ? x[i] : hi;
		}
	float s = (float)(((double)hi - lo) / 255.0);
	if (!(s >= 1e-30f) || !isfinite(s)) { /* all zeros, or next to it */
		*scale = 1;
		*zero_point = 0;
		return;
	}
	double zp = round(-128.0 - (double)lo / s);
	*scale = s;
	*zero_point = zp < -128 ? -128 : zp > 127 ? 127 : (int32_t)zp;
}

static void put_i8_params(const struct pn_frame_header *hd, uint8_t *payload)
{
	uint32_t u;
	memcpy(&u, &hd->scale, sizeof u);
	put32(payload, u);
	put32(payload + 4, (uint32_t)hd->zero_point);
}

void pn_frame_put_i8(const struct pn_frame_header *hd, const int8_t *q, uint8_t *out)
{
	put_i8_params(hd, out + PN_FRAME_HEADER);
	memcpy(out + PN_FRAME_HEADER + PN_FRAME_I8_PARAMS, q,
	       (size_t)hd->n * hd->h * hd->w * hd->c);
}

static void put_i8(struct pn_frame_header *hd, const float *data, size_t count, uint8_t *payload)
{
	if (!(hd->scale > 0))
		i8_range(data, count, &hd->scale, &hd->zero_point);
	put_i8_params(hd, payload);
	int8_t *q = (int8_t *)(payload + PN_FRAME_I8_PARAMS);
	const float inv = 1.0f / hd->scale;
	for (size_t i = 0; i < count; i++)
		q[i] = pn_q_from_float(data[i], inv, hd->zero_point);
}

void pn_frame_put_payload(struct pn_frame_header *hd, const float *data,
			  void (*to_f16)(const float *, uint16_t *, size_t), uint8_t *out)
{
	size_t count = (size_t)hd->n * hd->h * hd->w * hd->c;
	uint8_t *payload = out + PN_FRAME_HEADER;
	if (hd->dtype == PN_DTYPE_F16)
		to_f16(data, (uint16_t *)(void *)payload, count);
	else if (hd->dtype == PN_DTYPE_I8)
		put_i8(hd, data, count, payload);
	else
		memcpy(payload, data, count * sizeof(float));
}

void pn_frame_encode(struct pn_frame_header *hd, const float *data,
		     void (*to_f16)(const float *, uint16_t *, size_t), uint8_t *out)
{
	pn_frame_put_payload(hd, data, to_f16, out);
	pn_frame_seal(hd, out);
}

void pn_frame_decode(const struct pn_frame_header *hd, const uint8_t *payload,
		     void (*from_f16)(const uint16_t *, float *, size_t), float *out)
{
	size_t count = (size_t)hd->n * hd->h * hd->w * hd->c;
	if (hd->dtype == PN_DTYPE_F16) {
		from_f16((const uint16_t *)(const void *)payload, out, count);
	} else if (hd->dtype == PN_DTYPE_I8) {
		const int8_t *q = (const int8_t *)(payload + PN_FRAME_I8_PARAMS);
		for (size_t i = 0; i < count; i++)
			out[i] = pn_q_to_float(q[i], hd->scale, hd->zero_point);
	} else {
		memcpy(out, payload, count * sizeof(float));
	}
}

static double now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

double pn_frame_cpu_ns_per_byte(void)
{
	/* Larger than the caches, as big frames are; the fastest of a few. */
	const size_t n = (size_t)8 << 20;
	uint8_t *a = malloc(n), *b = malloc(n);
	double copy = -1, crc = -1;
	if (!a || !b) {
		free(a);
		free(b);
		return 0;
	}
	memset(a, 1, n);
	memset(b, 2, n);
	volatile uint32_t sink = 0;
	for (int rep = 0; rep < 3; rep++) {
		double t0 = now_ns();
		memcpy(b, a, n);
		double t1 = now_ns();
		sink ^= pn_crc32c(0, b, n);
		double t2 = now_ns();
		a[rep] = b[n - 1 - (size_t)rep]; /* the copy is used */
		if (copy < 0 || t1 - t0 < copy)
			copy = t1 - t0;
		if (crc < 0 || t2 - t1 < crc)
			crc = t2 - t1;
	}
	(void)sink;
	free(a);
	free(b);
	return (2.5 * copy + crc) / (double)n;
}

/* The wire format: CRC32C, encode/validate round trips, and every field
 * that pn_frame_validate must refuse, by name. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "frame.h"
#include "ops.h"
#include "tap.h"

static const struct pn_frame_expect expect = {
	.run = 42,
	.first_block = 8,
	.dtype = PN_DTYPE_F32,
	.max_n = 4,
	.h = 3,
	.w = 5,
	.c = 7,
};

/* A valid frame for `expect` with n images; caller frees. */
static uint8_t *make(int dtype, int n, size_t *len)
{
	struct pn_frame_header h = {
		.run = 42,
		.seq = 9,
		.first_block = 8,
		.dtype = (uint8_t)dtype,
		.n = (uint32_t)n,
		.h = 3,
		.w = 5,
		.c = 7,
	};
	size_t count = (size_t)n * 3 * 5 * 7;
	float *data = malloc(count * sizeof(float));
	for (size_t i = 0; i < count; i++)
		data[i] = (float)i * 0.25f - 3.0f;
	*len = pn_frame_size(dtype, (size_t)n, 3, 5, 7);
	uint8_t *buf = malloc(*len);
	pn_frame_encode(&h, data, pn_ops_scalar.f32_to_f16, buf);
	free(data);
	return buf;
}

static void put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

/* Applies `mutate` at byte `off` (a u32 when size is 4, a byte when 1),
 * and checks that validation names `field`. */
static void refuse(const char *what, size_t off, int size, uint32_t value, const char *field)
{
	size_t len;
	uint8_t *buf = make(PN_DTYPE_F32, 2, &len);
	if (size == 4)
		put32(buf + off, value);
	else if (size == 2) {
		buf[off] = (uint8_t)value;
		buf[off + 1] = (uint8_t)(value >> 8);
	} else
		buf[off] = (uint8_t)value;
	struct pn_frame_header h;
	struct pn_frame_error e;
	int r = pn_frame_validate(buf, len, &expect, &h, &e);
	tap_ok(r == -1 && strcmp(e.field, field) == 0, "%s is refused as field %s (%s: %s)", what,
	       field, r ? e.field : "accepted", r ? e.detail : "");
	free(buf);
}

/* An i8 frame of n images for `expect` at dtype i8, quantised with
 * scale/zp (0: the data's range); *h gets the header it was sealed with. */
static uint8_t *make_i8(int n, float scale, int32_t zp, const float *data, size_t *len,
			struct pn_frame_header *h)
{
	*h = (struct pn_frame_header){.run = 42,
				      .first_block = 8,
				      .dtype = PN_DTYPE_I8,
				      .n = (uint32_t)n,
				      .h = 3,
				      .w = 5,
				      .c = 7,
				      .scale = scale,
				      .zero_point = zp};
	*len = pn_frame_size(PN_DTYPE_I8, (size_t)n, 3, 5, 7);
	uint8_t *buf = malloc(*len);
	pn_frame_encode(h, data, NULL, buf);
	return buf;
}

/* Rewrites the scale and zero point of an i8 frame and seals it again, so
 * that only they are wrong; returns what validation names. */
static const char *i8_refused(float scale, uint32_t zp, const struct pn_frame_expect *x,
			      const char **detail)
{
	static struct pn_frame_error e;
	float data[105] = {0};
	size_t len;
	struct pn_frame_header h;
	uint8_t *buf = make_i8(1, 0, 0, data, &len, &h);
	memcpy(buf + PN_FRAME_HEADER, &scale, 4);
	put32(buf + PN_FRAME_HEADER + 4, zp);
	pn_frame_seal(&h, buf);
	int r = pn_frame_validate(buf, len, x, &h, &e);
	free(buf);
	*detail = r ? e.detail : "accepted";
	return r ? e.field : "none";
}

static void test_i8(void)
{
	struct pn_frame_expect x = expect;
	x.dtype = PN_DTYPE_I8;
	struct pn_frame_header h;
	struct pn_frame_error e;
	size_t len;
	float data[3 * 105], out[3 * 105];
	for (int i = 0; i < 3 * 105; i++)
		data[i] = (float)((i * 37) % 101) * 0.07f - 2.1f;

	/* A float model's frame: its own range, within half a step. */
	uint8_t *buf = make_i8(3, 0, 0, data, &len, &h);
	int r = pn_frame_validate(buf, len, &x, &h, &e);
	tap_ok(r == 0 && len == PN_FRAME_HEADER + 8 + 3 * 105 && h.payload_len == 8 + 3 * 105 &&
		       buf[22] == 4,
	       "i8 frame round trip: 8 bytes of scale and zero point, 1 byte an element (%s)",
	       r ? e.detail : "ok");
	float lo = -2.1f, hi = 100 * 0.07f - 2.1f, step = (hi - lo) / 255;
	tap_ok(fabsf(h.scale - step) < 1e-6f && h.zero_point == (int32_t)lroundf(-128 - lo / step),
	       "its range [%g, %g] gives scale %g and zero point %d", (double)lo, (double)hi,
	       (double)h.scale, (int)h.zero_point);
	pn_frame_decode(&h, buf + PN_FRAME_HEADER, NULL, out);
	float worst = 0;
	for (int i = 0; i < 3 * 105; i++)
		worst = fmaxf(worst, fabsf(out[i] - data[i]));
	tap_ok(worst <= h.scale * 0.5f * 1.001f,
	       "i8 payload decodes within half a step (%g, step %g)", (double)worst,
	       (double)h.scale);
	free(buf);

	/* An int8 model's frame: the given parameters, values on the grid come
	 * back exactly. */
	for (int i = 0; i < 3 * 105; i++)
		data[i] = (float)((i % 256) - 128 + 5) * 0.03125f;
	buf = make_i8(3, 0.03125f, -5, data, &len, &h);
	x.scale = 0.03125f;
	x.zero_point = -5;
	r = pn_frame_validate(buf, len, &x, &h, &e);
	pn_frame_decode(&h, buf + PN_FRAME_HEADER, NULL, out);
	tap_ok(r == 0 && h.scale == 0.03125f && h.zero_point == -5 &&
		       memcmp(out, data, sizeof data) == 0,
	       "i8 with the model's scale and zero point: every integer comes back exactly");
	x.zero_point = -4;
	tap_ok(pn_frame_validate(buf, len, &x, &h, &e) == -1 && !strcmp(e.field, "zero_point"),
	       "another zero point than the plan's is refused as zero_point (%s)", e.detail);
	x.zero_point = -5;
	x.scale = 0.0625f;
	tap_ok(pn_frame_validate(buf, len, &x, &h, &e) == -1 && !strcmp(e.field, "scale"),
	       "another scale than the plan's is refused as scale (%s)", e.detail);
	x.scale = 0;
	tap_ok(pn_frame_validate(buf, len, &x, &h, &e) == 0, "scale 0 in the plan takes any");

	/* All zeros: a valid scale all the same. */
	memset(data, 0, sizeof data);
	free(buf);
	buf = make_i8(1, 0, 0, data, &len, &h);
	tap_ok(pn_frame_validate(buf, len, &x, &h, &e) == 0 && h.scale > 0,
	       "an all-zero frame gets a valid scale (%g)", (double)h.scale);
	free(buf);

	/* Bad parameters, sealed with a good CRC, named by field. */
	static const struct {
		float scale;
		uint32_t zp;
		const char *field, *what;
	} bad[] = {
		{0.0f, 0, "scale", "scale 0"},
		{-0.5f, 0, "scale", "a negative scale"},
		{NAN, 0, "scale", "a NaN scale"},
		{INFINITY, 0, "scale", "an infinite scale"},
		{0.1f, 128, "zero_point", "zero point 128"},
		{0.1f, (uint32_t)-129, "zero_point", "zero point -129"},
		{0.1f, 0x80000000u, "zero_point", "zero point INT32_MIN"},
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		const char *detail, *field = i8_refused(bad[i].scale, bad[i].zp, NULL, &detail);
		tap_ok(!strcmp(field, bad[i].field), "i8 with %s is refused as field %s (%s: %s)",
		       bad[i].what, bad[i].field, field, detail);
	}
	const char *detail;
	tap_ok(!strcmp(i8_refused(0.1f, (uint32_t)-128, &x, &detail), "none") &&
		       !strcmp(i8_refused(1e-38f, 127, &x, &detail), "none"),
	       "zero points -128 and 127 and a tiny scale are valid");

	/* The parameters are part of the payload: without them the length is
	 * wrong, and a flipped bit in them is a CRC error. */
	memset(data, 0, sizeof data);
	buf = make_i8(2, 0, 0, data, &len, &h);
	h.payload_len -= 8;
	pn_frame_header_put(&h, buf);
	tap_ok(pn_frame_validate(buf, len - 8, NULL, &h, &e) == -1 &&
		       !strcmp(e.field, "payload_len") && strstr(e.detail, "8 bytes of scale"),
	       "an i8 frame without its 8 bytes of parameters is refused as payload_len (%s)",
	       e.detail);
	free(buf);
	buf = make_i8(2, 0, 0, data, &len, &h);
	buf[PN_FRAME_HEADER + 2] ^= 0x10;
	tap_ok(pn_frame_validate(buf, len, NULL, &h, &e) == -1 && !strcmp(e.field, "crc"),
	       "the CRC covers the scale");
	int all = 1;
	for (size_t cut = 0; cut < len; cut++)
		all &= pn_frame_validate(buf, cut, NULL, &h, &e) == -1;
	tap_ok(all, "every truncation of a %zu-byte i8 frame is refused", len);
	free(buf);
	tap_ok(pn_frame_size(PN_DTYPE_I8, 2, 3, 5, 7) == PN_FRAME_HEADER + 8 + 210 &&
		       pn_frame_size(PN_DTYPE_I8, 1, 1u << 16, 1u << 16, 1) == 0 &&
		       pn_frame_size(PN_DTYPE_I8, 1, 1, 1, UINT32_MAX - 8) ==
			       PN_FRAME_HEADER + (size_t)UINT32_MAX,
	       "i8 frame sizes: header, 8 bytes, a byte an element, at most 4 GiB of payload");
}

int main(void)
{
	tap_ok(pn_crc32c(0, "123456789", 9) == 0xe3069283u, "CRC32C check value");
	tap_ok(pn_crc32c(pn_crc32c(0, "1234", 4), "56789", 5) == 0xe3069283u,
	       "CRC32C continues across calls");
	uint8_t zeros[32] = {0};
	tap_ok(pn_crc32c(0, zeros, 32) == 0x8a9136aau, "CRC32C of 32 zero bytes (RFC 3720)");

	size_t len;
	struct pn_frame_header h;
	struct pn_frame_error e;
	for (int dtype = PN_DTYPE_F32; dtype <= PN_DTYPE_F16; dtype++) {
		uint8_t *buf = make(dtype, 3, &len);
		struct pn_frame_expect x = expect;
		x.dtype = dtype;
		int r = pn_frame_validate(buf, len, &x, &h, &e);
		tap_ok(r == 0 && h.run == 42 && h.seq == 9 && h.n == 3 &&
			       len == PN_FRAME_HEADER + 3 * 105 * pn_dtype_size(dtype),
		       "%s frame round trip (%s)", pn_dtype_name(dtype), r ? e.detail : "ok");
		float out[3 * 105];
		pn_frame_decode(&h, buf + PN_FRAME_HEADER, pn_ops_scalar.f16_to_f32, out);
		int same = 1;
		for (int i = 0; i < 3 * 105; i++)
			same &= out[i] == (float)i * 0.25f - 3.0f;
		tap_ok(same, "%s payload decodes to the same values", pn_dtype_name(dtype));
		free(buf);
	}

	/* Source images travel as u8 records, sealed in place. */
	uint8_t img[PN_FRAME_HEADER + 2 * 3 * 4 * 4];
	for (size_t i = PN_FRAME_HEADER; i < sizeof(img); i++)
		img[i] = (uint8_t)(i * 7);
	struct pn_frame_header u = {
		.run = 42, .dtype = PN_DTYPE_U8, .n = 2, .h = 4, .w = 4, .c = 3};
	pn_frame_seal(&u, img);
	struct pn_frame_expect ux = {.run = 42,
				     .first_block = 0,
				     .dtype = PN_DTYPE_U8,
				     .max_n = 2,
				     .h = 4,
				     .w = 4,
				     .c = 3};
	tap_ok(pn_frame_validate(img, sizeof(img), &ux, &h, &e) == 0 && h.payload_len == 96 &&
		       img[22] == 3,
	       "u8 image frame: sealed in place, 1 byte an element");

	/* The plan epoch travels in byte 23; a stage checks it, the
	 * coordinator's logits route (epoch -1) takes any. */
	struct pn_frame_header eh = {
		.run = 42, .epoch = 201, .dtype = PN_DTYPE_U8, .n = 2, .h = 4, .w = 4, .c = 3};
	pn_frame_seal(&eh, img);
	ux.epoch = 201;
	int at201 = pn_frame_validate(img, sizeof(img), &ux, &h, &e) == 0 && h.epoch == 201 &&
		    img[23] == 201;
	ux.epoch = 200;
	int at200 = pn_frame_validate(img, sizeof(img), &ux, &h, &e) == -1 &&
		    strcmp(e.field, "epoch") == 0;
	ux.epoch = -1;
	int any = pn_frame_validate(img, sizeof(img), &ux, &h, &e) == 0;
	tap_ok(at201 && at200 && any,
	       "epoch 201 is written to byte 23, checked, and ignored for -1");

	/* Byte offsets are the contract: check them directly. */
	uint8_t *buf = make(PN_DTYPE_F32, 2, &len);
	tap_ok(memcmp(buf, "PNFR", 4) == 0 && buf[4] == 1 && buf[6] == 48 && buf[8] == 42 &&
		       buf[16] == 9 && buf[20] == 8 && buf[22] == 1 && buf[24] == 2 &&
		       buf[28] == 3 && buf[32] == 5 && buf[36] == 7 && buf[40] == 2 * 105 * 4 % 256,
	       "header fields sit at their documented offsets");
	free(buf);

	refuse("wrong magic", 0, 4, 0x12345678u, "magic");
	refuse("wrong version", 4, 2, 2, "version");
	refuse("wrong header_len", 6, 2, 64, "header_len");
	refuse("another run", 8, 4, 41, "run");
	refuse("another block", 20, 2, 9, "first_block");
	refuse("unknown dtype", 22, 1, 5, "dtype");
	refuse("an older plan epoch", 23, 1, 1, "epoch");
	refuse("too many images", 24, 4, 5, "payload_len");
	refuse("wrong height", 28, 4, 4, "payload_len");
	refuse("payload_len off by one", 40, 4, 2 * 105 * 4 + 1, "payload_len");
	refuse("bad CRC", 44, 4, 0xdeadbeefu, "crc");
	refuse("flipped payload byte", PN_FRAME_HEADER + 17, 1, 0x55, "crc");

	/* A consistent frame of another shape or batch names the field. */
	struct pn_frame_header g = {
		.run = 42, .first_block = 8, .dtype = PN_DTYPE_F32, .n = 5, .h = 3, .w = 5, .c = 7};
	size_t glen = pn_frame_size(PN_DTYPE_F32, 5, 3, 5, 7);
	float *zf = calloc(5 * 105, sizeof(float));
	uint8_t *gb = malloc(glen);
	pn_frame_encode(&g, zf, NULL, gb);
	tap_ok(pn_frame_validate(gb, glen, &expect, &h, &e) == -1 && strcmp(e.field, "n") == 0,
	       "a batch larger than the plan is refused as n");
	g.n = 1;
	g.c = 8;
	glen = pn_frame_size(PN_DTYPE_F32, 1, 3, 5, 8);
	pn_frame_encode(&g, zf, NULL, gb);
	tap_ok(pn_frame_validate(gb, glen, &expect, &h, &e) == -1 && strcmp(e.field, "c") == 0,
	       "another channel count is refused as c");
	tap_ok(pn_frame_validate(gb, glen, NULL, &h, &e) == 0,
	       "the same frame is structurally valid without a plan");
	free(gb);
	free(zf);

	/* Every truncation is refused, none is read past its end. */
	buf = make(PN_DTYPE_F16, 2, &len);
	int all = 1;
	for (size_t cut = 0; cut < len; cut++) {
		uint8_t *t = malloc(cut ? cut : 1);
		memcpy(t, buf, cut);
		all &= pn_frame_validate(t, cut, NULL, &h, &e) == -1;
		free(t);
	}
	tap_ok(all, "every truncation of a %zu-byte frame is refused", len);
	free(buf);

	/* Garbage: random bytes, with and without a valid magic. */
	srand(1);
	int refused = 0;
	for (int i = 0; i < 2000; i++) {
		size_t n = (size_t)(rand() % 200);
		uint8_t *t = malloc(n ? n : 1);
		for (size_t k = 0; k < n; k++)
			t[k] = (uint8_t)rand();
		if (i % 2 && n >= 8)
			memcpy(t, "PNFR\1\0\60\0", 8);
		refused += pn_frame_validate(t, n, &expect, &h, &e) == -1;
		free(t);
	}
	tap_ok(refused == 2000, "2000 garbage bodies are refused");

	tap_ok(pn_frame_size(PN_DTYPE_F32, 1u << 20, 1u << 10, 1u << 10, 4) == 0,
	       "frame sizes past 4 GiB are refused");
	tap_ok(pn_dtype_parse("f16") == PN_DTYPE_F16 && pn_dtype_parse("f64") == 0 &&
		       pn_dtype_parse("i8") == PN_DTYPE_I8 && !strcmp(pn_dtype_name(4), "i8") &&
		       pn_wire_dtype(PN_DTYPE_I8) && !pn_wire_dtype(PN_DTYPE_U8),
	       "dtype names; f32, f16 and i8 are wire dtypes, u8 is not");
	test_i8();
	return tap_done();
}

/* make-frame: writes a wire frame to stdout for the shell tests.
 *
 *   make-frame RUN SEQ FIRST DTYPE N H W C [FAULT]
 *
 * The payload is a ramp of values (i8: quantised with its own range).
 * FAULT spoils one thing: magic, version, crc, length (payload_len one
 * more than the body), truncate (the body cut in half), scale (an i8
 * frame's scale made 0) or zero_point (made 300), both sealed again with
 * a good CRC, or nothing when absent. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frame.h"
#include "ops.h"

int main(int argc, char **argv)
{
	if (argc != 9 && argc != 10) {
		fprintf(stderr, "usage: make-frame RUN SEQ FIRST DTYPE N H W C [FAULT]\n");
		return 2;
	}
	struct pn_frame_header h = {
		.run = strtoull(argv[1], NULL, 10),
		.seq = (uint32_t)atoi(argv[2]),
		.first_block = (uint16_t)atoi(argv[3]),
		.dtype = (uint8_t)pn_dtype_parse(argv[4]),
		.n = (uint32_t)atoi(argv[5]),
		.h = (uint32_t)atoi(argv[6]),
		.w = (uint32_t)atoi(argv[7]),
		.c = (uint32_t)atoi(argv[8]),
	};
	size_t len = pn_frame_size(h.dtype, h.n, h.h, h.w, h.c);
	if (!len) {
		fprintf(stderr, "make-frame: bad dtype or shape\n");
		return 2;
	}
	size_t count = (size_t)h.n * h.h * h.w * h.c;
	float *data = malloc(count * sizeof(float));
	uint8_t *buf = malloc(len);
	if (!data || !buf)
		return 1;
	for (size_t i = 0; i < count; i++)
		data[i] = (float)(i % 1000) / 500.0f - 1.0f;
	if (h.dtype == PN_DTYPE_U8) {
		for (size_t i = 0; i < count; i++)
			buf[PN_FRAME_HEADER + i] = (uint8_t)(i * 13);
		pn_frame_seal(&h, buf);
	} else {
		pn_frame_encode(&h, data, pn_ops_scalar.f32_to_f16, buf);
	}
	const char *fault = argc == 10 ? argv[9] : "";
	if (strcmp(fault, "magic") == 0)
		buf[0] ^= 0xff;
	else if (strcmp(fault, "version") == 0)
		buf[4] = 9;
	else if (strcmp(fault, "crc") == 0)
		buf[len - 1] ^= 0x01;
	else if (strcmp(fault, "length") == 0) {
		h.payload_len++;
		pn_frame_header_put(&h, buf);
	} else if (strcmp(fault, "truncate") == 0)
		len /= 2;
	else if (h.dtype == PN_DTYPE_I8 && strcmp(fault, "scale") == 0) {
		memset(buf + PN_FRAME_HEADER, 0, 4);
		pn_frame_seal(&h, buf);
	} else if (h.dtype == PN_DTYPE_I8 && strcmp(fault, "zero_point") == 0) {
		const uint8_t zp300[4] = {300 & 0xff, 300 >> 8, 0, 0};
		memcpy(buf + PN_FRAME_HEADER + 4, zp300, 4);
		pn_frame_seal(&h, buf);
	} else if (*fault) {
		fprintf(stderr, "make-frame: unknown fault %s\n", fault);
		return 2;
	}
	fwrite(buf, 1, len, stdout);
	free(data);
	free(buf);
	return 0;
}

/* Fuzz target: a frame body as POST /v1/frames receives it, validated
 * structurally and against a stage's plan (a 224 model's block 8 input). */
#include <stddef.h>
#include <stdint.h>

#include "frame.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct pn_frame_expect plan = {
		.run = 7,
		.first_block = 8,
		.dtype = 1,
		.max_n = 8,
		.h = 14,
		.w = 14,
		.c = 64,
	};
	struct pn_frame_header h;
	struct pn_frame_error e;
	pn_frame_validate(data, size, NULL, &h, &e);
	pn_frame_validate(data, size, &plan, &h, &e);
	return 0;
}

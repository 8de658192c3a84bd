/* Fuzz target: a frame body as POST /v1/frames receives it, validated
 * structurally and against a stage's plan (a 224 model's block 8 input),
 * in f32 and in i8 with an int8 model's quantisation. */
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
	struct pn_frame_expect plan_i8 = plan;
	plan_i8.dtype = 4;
	plan_i8.scale = 0.0235f;
	plan_i8.zero_point = -3;
	struct pn_frame_header h;
	struct pn_frame_error e;
	pn_frame_validate(data, size, NULL, &h, &e);
	pn_frame_validate(data, size, &plan, &h, &e);
	pn_frame_validate(data, size, &plan_i8, &h, &e);
	return 0;
}

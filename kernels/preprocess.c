/* See preprocess.h. The resize follows PyTorch's CPU bilinear kernel step
 * by step in float (source index, clamping, lambdas, blend order) so that
 * the input matches the reference logits' input to the last bit where
 * possible. */
#include <stddef.h>

#include "preprocess.h"

struct tap {
	int i0, i1;
	float l0, l1;
};

static struct tap source_tap(int dst, int src_size, int dst_size)
{
	float scale = (float)src_size / (float)dst_size;
	float s = scale * ((float)dst + 0.5f) - 0.5f;
	if (s < 0.0f)
		s = 0.0f;
	struct tap t;
	t.i0 = (int)s;
	if (t.i0 > src_size - 1)
		t.i0 = src_size - 1;
	t.i1 = t.i0 < src_size - 1 ? t.i0 + 1 : t.i0;
	t.l1 = s - (float)t.i0;
	t.l0 = 1.0f - t.l1;
	return t;
}

void pn_preprocess(const uint8_t *rgb, int src, int dst, const float mean[3], const float std[3],
		   float *out)
{
	const int plane = src * src;
	if (dst == src) {
		for (int p = 0; p < plane; p++)
			for (int c = 0; c < 3; c++)
				out[p * 3 + c] =
					((float)rgb[c * plane + p] / 255.0f - mean[c]) / std[c];
		return;
	}
	for (int y = 0; y < dst; y++) {
		struct tap ty = source_tap(y, src, dst);
		for (int x = 0; x < dst; x++) {
			struct tap tx = source_tap(x, src, dst);
			for (int c = 0; c < 3; c++) {
				const uint8_t *pl = rgb + c * plane;
#define PN_NORM(yy, xx) (((float)pl[(yy)*src + (xx)] / 255.0f - mean[c]) / std[c])
				float v = ty.l0 * (tx.l0 * PN_NORM(ty.i0, tx.i0) +
						   tx.l1 * PN_NORM(ty.i0, tx.i1)) +
					  ty.l1 * (tx.l0 * PN_NORM(ty.i1, tx.i0) +
						   tx.l1 * PN_NORM(ty.i1, tx.i1));
#undef PN_NORM
				out[((size_t)y * dst + x) * 3 + c] = v;
			}
		}
	}
}

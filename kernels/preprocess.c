/* See preprocess.h. The taps follow PyTorch's CPU bilinear kernel step by
 * step in float (source index, clamping, lambdas, blend order) so that the
 * input matches the reference logits' input to the last bit where
 * possible. */
#include <stdlib.h>

#include "preprocess.h"

struct tap {
	int i0, i1;
	float l0, l1;
};

struct pn_prep {
	int src, dst, row_floats; /* row_floats = dst * 3 */
	float lut[3 * 256]; /* lut[c * 256 + byte]: the normalised value */
	struct tap *rows; /* [dst] */
	/* Per output element j = x * 3 + c of a row: the two source bytes'
	 * offsets within a source row of the planar image, the table entry
	 * of the channel, and the column weights. */
	int *off0, *off1, *lut_base;
	float *w0, *w1;
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

struct pn_prep *pn_prep_new(int src, int dst, const float mean[3], const float std[3])
{
	if (src < 1 || src > PN_PREP_MAX_SIDE || dst < 1 || dst > PN_PREP_MAX_SIDE)
		return NULL;
	struct pn_prep *p = calloc(1, sizeof *p);
	if (!p)
		return NULL;
	p->src = src;
	p->dst = dst;
	p->row_floats = dst * 3;
	size_t n = (size_t)p->row_floats;
	p->rows = malloc((size_t)dst * sizeof *p->rows);
	p->off0 = malloc(n * sizeof *p->off0);
	p->off1 = malloc(n * sizeof *p->off1);
	p->lut_base = malloc(n * sizeof *p->lut_base);
	p->w0 = malloc(n * sizeof *p->w0);
	p->w1 = malloc(n * sizeof *p->w1);
	if (!p->rows || !p->off0 || !p->off1 || !p->lut_base || !p->w0 || !p->w1) {
		pn_prep_free(p);
		return NULL;
	}
	for (int c = 0; c < 3; c++)
		for (int v = 0; v < 256; v++)
			p->lut[c * 256 + v] = ((float)v / 255.0f - mean[c]) / std[c];
	const int plane = src * src;
	for (int x = 0; x < dst; x++) {
		struct tap tx = source_tap(x, src, dst);
		for (int c = 0; c < 3; c++) {
			int j = x * 3 + c;
			p->off0[j] = c * plane + tx.i0;
			p->off1[j] = c * plane + tx.i1;
			p->lut_base[j] = c * 256;
			p->w0[j] = tx.l0;
			p->w1[j] = tx.l1;
		}
	}
	for (int y = 0; y < dst; y++)
		p->rows[y] = source_tap(y, src, dst);
	return p;
}

void pn_prep_free(struct pn_prep *p)
{
	if (!p)
		return;
	free(p->rows);
	free(p->off0);
	free(p->off1);
	free(p->lut_base);
	free(p->w0);
	free(p->w1);
	free(p);
}

/* Source row `row` blended across columns: h[j] for every output element
 * j of a row. */
static void horizontal(const struct pn_prep *p, const uint8_t *rgb, int row, float *h)
{
	const uint8_t *r = rgb + (size_t)row * p->src;
	const float *lut = p->lut;
	for (int j = 0; j < p->row_floats; j++)
		h[j] = p->w0[j] * lut[p->lut_base[j] + r[p->off0[j]]] +
		       p->w1[j] * lut[p->lut_base[j] + r[p->off1[j]]];
}

void pn_prep_run(const struct pn_prep *p, const struct pn_ops *ops, const uint8_t *rgb, float *out)
{
	if (p->dst == p->src) {
		const int plane = p->src * p->src;
		for (int q = 0; q < plane; q++)
			for (int c = 0; c < 3; c++)
				out[q * 3 + c] = p->lut[c * 256 + rgb[c * plane + q]];
		return;
	}
	/* Two blended source rows, by parity: a row's neighbour (i0 + 1) has
	 * the other parity, and i0 never decreases down the image, so each
	 * source row is blended at most once. */
	float h[2][PN_PREP_MAX_SIDE * 3];
	int held[2] = {-1, -1};
	const size_t n = (size_t)p->row_floats;
	for (int y = 0; y < p->dst; y++) {
		const struct tap ty = p->rows[y];
		const int need[2] = {ty.i0, ty.i1};
		for (int k = 0; k < 2; k++) {
			int slot = need[k] & 1;
			if (held[slot] != need[k]) {
				horizontal(p, rgb, need[k], h[slot]);
				held[slot] = need[k];
			}
		}
		ops->lerp(h[ty.i0 & 1], h[ty.i1 & 1], ty.l0, ty.l1, out + (size_t)y * n, n);
	}
}

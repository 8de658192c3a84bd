/* Post-training int8 quantisation (quantize.h): a float twin of the
 * network on whole tensors with the scalar reference kernels (vectorised
 * without changing a bit where the CPU can: ref.h), whose
 * activations are observed at every quantisation point, then the int8
 * file written for each calibration method and the better one kept. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fold.h"
#include "model.h"
#include "qmodel.h"
#include "quant.h"
#include "quantize.h"
#include "ref.h"
#include "safetensors.h"

#define QZ_MAX_BLOCKS 64
#define QZ_BINS 4096
/* Each tail left out by the percentile method: 99.99 % kept inside. */
#define QZ_TAIL 0.00005
#define QZ_IMAGE 3072

enum { K_STEM, K_IR, K_LAST };

struct fconv {
	char prefix[96], wname[112];
	int ndim, cin, cout;
	int64_t dims[4];
	size_t inner;
	float *w, *b; /* folded, [cout][inner], [cout] */
	float *packed; /* for the reference kernels */
	int point; /* its output */
};

struct fblock {
	int kind, stride, cin, hid, cout, expand, residual;
	struct pn_shape in, out;
	struct fconv conv, exp, dw, proj; /* conv: stem; proj: also the last */
	int add_point;
};

struct point {
	char name[96];
	double min, max;
	uint64_t *hist, count; /* hist: 2 x QZ_BINS while observed (observe) */
	float scale;
	int32_t zp;
};

struct qz {
	const struct pn_st *st;
	const struct pn_model *m;
	const struct pn_ref_vec *ref; /* the reference, vectorised where it can be */
	int nb, classes, head_c, npoints, pass;
	struct fblock b[QZ_MAX_BLOCKS];
	float *head_w, *head_b;
	struct point *pts;
	float *bufs[5], *pooled, *logits;
};

/* ---- the float twin ---- */

static int fold(struct qz *z, struct fconv *c, const char *prefix, const char *wname,
		const char *bn, int cin, int k, char *err, size_t errlen)
{
	int64_t d[PN_ST_MAX_DIMS];
	float eps = 1e-5f;
	const char *e = pn_st_meta(z->st, "bn_eps");
	if (e)
		eps = strtof(e, NULL);
	snprintf(c->prefix, sizeof c->prefix, "%s", prefix);
	snprintf(c->wname, sizeof c->wname, "%s", wname);
	if (pn_st_shape(z->st, wname, d) != 4 || d[1] != cin || d[2] != k || d[3] != k) {
		snprintf(err, errlen, "%s: tensor %s: expected shape [out, %d, %d, %d]",
			 pn_st_path(z->st), wname, cin, k, k);
		return -1;
	}
	c->ndim = 4;
	memcpy(c->dims, d, sizeof c->dims);
	c->cout = (int)d[0];
	c->inner = (size_t)cin * k * k;
	c->point = z->npoints++;
	return pn_fold_conv_bn(z->st, wname, 4, d, bn, eps, &c->w, &c->b, err, errlen);
}

static int pack_pw(struct fconv *c, int cin)
{
	c->cin = cin;
	c->packed = malloc(pn_pw_packed_floats_ref(cin, c->cout) * sizeof(float));
	if (!c->packed)
		return -1;
	pn_pw_pack_ref(c->w, c->b, cin, c->cout, c->packed);
	return 0;
}

static int build(struct qz *z, const int *strides, char *err, size_t errlen)
{
	char p[96], w[112], bn[96], probe[112];
	int64_t d[PN_ST_MAX_DIMS];
	z->npoints = 1; /* 0: the input */
	for (int i = 0; i < z->nb; i++) {
		struct fblock *b = &z->b[i];
		b->kind = i == 0 ? K_STEM : i == z->nb - 1 ? K_LAST : K_IR;
		b->stride = strides[i];
		b->in = pn_model_shape(z->m, i);
		b->out = pn_model_shape(z->m, i + 1);
		b->cin = b->in.c;
		b->hid = b->cin;
		if (b->kind == K_STEM) {
			if (fold(z, &b->conv, "features.0.0", "features.0.0.weight", "features.0.1",
				 3, 3, err, errlen) < 0)
				return -1;
			struct fconv *c = &b->conv;
			c->cin = 3;
			b->cout = c->cout;
			c->packed = malloc((size_t)27 * c->cout * sizeof(float));
			if (!c->packed)
				goto oom;
			for (int o = 0; o < c->cout; o++)
				for (int ci = 0; ci < 3; ci++)
					for (int k = 0; k < 9; k++)
						c->packed[((size_t)k * 3 + ci) * c->cout + o] =
							c->w[((size_t)o * 3 + ci) * 9 + k];
			continue;
		}
		if (b->kind == K_LAST) {
			snprintf(p, sizeof p, "features.%d.0", i);
			snprintf(w, sizeof w, "%s.weight", p);
			snprintf(bn, sizeof bn, "features.%d.1", i);
			if (fold(z, &b->proj, p, w, bn, b->cin, 1, err, errlen) < 0 ||
			    pack_pw(&b->proj, b->cin) < 0)
				goto fail_or_oom;
			b->cout = b->proj.cout;
			b->out = (struct pn_shape){b->in.h, b->in.w, b->cout};
			continue;
		}
		snprintf(probe, sizeof probe, "features.%d.conv.3.weight", i);
		b->expand = pn_st_shape(z->st, probe, d) >= 0;
		int conv = 0;
		if (b->expand) {
			snprintf(p, sizeof p, "features.%d.conv.0.0", i);
			snprintf(w, sizeof w, "%s.weight", p);
			snprintf(bn, sizeof bn, "features.%d.conv.0.1", i);
			if (fold(z, &b->exp, p, w, bn, b->cin, 1, err, errlen) < 0 ||
			    pack_pw(&b->exp, b->cin) < 0)
				goto fail_or_oom;
			b->hid = b->exp.cout;
			conv = 1;
		}
		snprintf(p, sizeof p, "features.%d.conv.%d.0", i, conv);
		snprintf(w, sizeof w, "%s.weight", p);
		snprintf(bn, sizeof bn, "features.%d.conv.%d.1", i, conv);
		if (fold(z, &b->dw, p, w, bn, 1, 3, err, errlen) < 0)
			return -1;
		b->dw.cin = b->hid;
		b->dw.packed = malloc((size_t)9 * b->hid * sizeof(float));
		if (!b->dw.packed)
			goto oom;
		for (int c = 0; c < b->hid; c++)
			for (int k = 0; k < 9; k++)
				b->dw.packed[(size_t)k * b->hid + c] = b->dw.w[(size_t)c * 9 + k];
		snprintf(p, sizeof p, "features.%d.conv.%d", i, conv + 1);
		snprintf(w, sizeof w, "%s.weight", p);
		snprintf(bn, sizeof bn, "features.%d.conv.%d", i, conv + 2);
		if (fold(z, &b->proj, p, w, bn, b->hid, 1, err, errlen) < 0 ||
		    pack_pw(&b->proj, b->hid) < 0)
			goto fail_or_oom;
		b->cout = b->proj.cout;
		b->residual = b->stride == 1 && b->cin == b->cout;
		b->add_point = b->residual ? z->npoints++ : -1;
	}
	z->head_c = z->b[z->nb - 1].cout;
	z->npoints++; /* the pool */
	z->head_w = malloc((size_t)z->classes * z->head_c * sizeof(float));
	z->head_b = malloc((size_t)z->classes * sizeof(float));
	if (!z->head_w || !z->head_b)
		goto oom;
	int64_t hd[2] = {z->classes, z->head_c}, bd = z->classes;
	if (pn_st_read_f32(z->st, "classifier.1.weight", 2, hd, z->head_w, err, errlen) < 0 ||
	    pn_st_read_f32(z->st, "classifier.1.bias", 1, &bd, z->head_b, err, errlen) < 0)
		return -1;
	return 0;
fail_or_oom:
	if (err[0])
		return -1;
oom:
	snprintf(err, errlen, "%s: out of memory", pn_st_path(z->st));
	return -1;
}

#define QZ_CHUNK 512

#if defined(__GNUC__) && !defined(__clang__)
__attribute__((optimize("tree-vectorize", "vect-cost-model=dynamic")))
#endif
static void
bin_chunk(const float *x, size_t m, double base, double span, int *bins)
{
	for (size_t i = 0; i < m; i++) {
		int bin = (int)((x[i] - base) / span * QZ_BINS);
		bins[i] = bin < 0 ? 0 : bin >= QZ_BINS ? QZ_BINS - 1 : bin;
	}
}

static void observe(struct qz *z, int point, const float *x, size_t n)
{
	struct point *p = &z->pts[point];
	if (z->pass == 0) {
		/* Eight running extremes in floats, kept apart from *p: no chain
		 * of dependent compares, and the extremes are those of the
		 * values in any order (a float as a double is the same number;
		 * the sign of a zero minimum cannot change a bin or a scale). */
		float lo[8], hi[8];
		for (int k = 0; k < 8; k++) {
			lo[k] = (float)p->min;
			hi[k] = (float)p->max;
		}
		size_t i = 0;
		for (; i + 8 <= n; i += 8)
			for (int k = 0; k < 8; k++) {
				lo[k] = x[i + k] < lo[k] ? x[i + k] : lo[k];
				hi[k] = x[i + k] > hi[k] ? x[i + k] : hi[k];
			}
		for (; i < n; i++) {
			lo[0] = x[i] < lo[0] ? x[i] : lo[0];
			hi[0] = x[i] > hi[0] ? x[i] : hi[0];
		}
		for (int k = 1; k < 8; k++) {
			lo[0] = lo[k] < lo[0] ? lo[k] : lo[0];
			hi[0] = hi[k] > hi[0] ? hi[k] : hi[0];
		}
		p->min = lo[0];
		p->max = hi[0];
		p->count += n;
		return;
	}
	/* The bins of a chunk first (a loop of the same operations per
	 * element, which vectorises), then counted, odd and even elements in
	 * the two halves of hist (added up after the pass): the many equal
	 * neighbours (ReLU6's zeros and sixes) make two chains of increments
	 * of one counter in memory, not one. */
	const double base = p->min, span = p->max - p->min;
	int bins[QZ_CHUNK];
	uint64_t *odd = p->hist + QZ_BINS;
	if (!(span > 0)) {
		p->hist[0] += n;
		return;
	}
	for (size_t at = 0; at < n; at += QZ_CHUNK) {
		size_t m = n - at < QZ_CHUNK ? n - at : QZ_CHUNK, i = 0;
		bin_chunk(x + at, m, base, span, bins);
		for (; i + 2 <= m; i += 2) {
			p->hist[bins[i]]++;
			odd[bins[i + 1]]++;
		}
		if (i < m)
			p->hist[bins[i]]++;
	}
}

/* One image through the float twin; logits in z->logits. */
static void forward(struct qz *z, const float *image)
{
	float *cur = z->bufs[0], *next = z->bufs[1], *e = z->bufs[2], *dwb = z->bufs[3];
	float *pr = z->bufs[4];
	memcpy(cur, image, pn_shape_floats(z->b[0].in) * sizeof(float));
	observe(z, 0, cur, pn_shape_floats(z->b[0].in));
	for (int i = 0; i < z->nb; i++) {
		const struct fblock *b = &z->b[i];
		const int hw_in = b->in.h * b->in.w, hw = b->out.h * b->out.w;
		if (b->kind == K_STEM) {
			struct pn_conv_args a = {
				.in = cur,
				.in_h = b->in.h,
				.in_w = b->in.w,
				.cin = 3,
				.out = next,
				.out_y0 = 0,
				.out_y1 = b->out.h,
				.out_w = b->out.w,
				.cout = b->cout,
				.stride = b->stride,
				.relu6 = 1,
				.weights = b->conv.packed,
				.bias = b->conv.b,
			};
			z->ref->conv3x3(&a);
			observe(z, b->conv.point, next, (size_t)hw * b->cout);
		} else if (b->kind == K_LAST) {
			z->ref->pw(cur, next, b->proj.packed, NULL, hw, b->cin, b->cout, 1);
			observe(z, b->proj.point, next, (size_t)hw * b->cout);
			pn_avgpool_ref(next, z->pooled, hw, b->cout);
			observe(z, z->npoints - 1, z->pooled, (size_t)b->cout);
			pn_linear_ref(z->pooled, z->logits, z->head_w, z->head_b, z->head_c,
				      z->classes);
			return;
		} else {
			const float *dw_in = cur;
			if (b->expand) {
				z->ref->pw(cur, e, b->exp.packed, NULL, hw_in, b->cin, b->hid, 1);
				observe(z, b->exp.point, e, (size_t)hw_in * b->hid);
				dw_in = e;
			}
			struct pn_dw_args a = {
				.in = dw_in,
				.in_y0 = 0,
				.in_h = b->in.h,
				.in_w = b->in.w,
				.out = dwb,
				.out_y0 = 0,
				.out_y1 = b->out.h,
				.out_w = b->out.w,
				.c = b->hid,
				.stride = b->stride,
				.weights = b->dw.packed,
				.bias = b->dw.b,
			};
			z->ref->dw3x3(&a);
			observe(z, b->dw.point, dwb, (size_t)hw * b->hid);
			z->ref->pw(dwb, b->residual ? pr : next, b->proj.packed, NULL, hw, b->hid,
				   b->cout, 0);
			size_t n = (size_t)hw * b->cout;
			if (b->residual) {
				observe(z, b->proj.point, pr, n);
				for (size_t k = 0; k < n; k++)
					next[k] = pr[k] + cur[k];
				observe(z, b->add_point, next, n);
			} else {
				observe(z, b->proj.point, next, n);
			}
		}
		float *t = cur;
		cur = next;
		next = t;
	}
}

/* ---- scales ---- */

/* Scale and zero point of the range [lo, hi] widened to contain 0. */
static void choose_qparams(double lo, double hi, float *scale, int32_t *zp)
{
	lo = lo < 0 ? lo : 0;
	hi = hi > 0 ? hi : 0;
	if (hi - lo < 1e-6)
		hi = lo + 1e-6;
	*scale = (float)((hi - lo) / 255.0);
	long z = lround(-128.0 - lo / (double)*scale);
	*zp = (int32_t)(z < -128 ? -128 : z > 127 ? 127 : z);
}

static void point_range(const struct point *p, int percentile, double *lo, double *hi)
{
	*lo = p->min;
	*hi = p->max;
	if (!percentile || !(p->max > p->min))
		return;
	uint64_t tail = (uint64_t)floor((double)p->count * QZ_TAIL), acc = 0;
	double w = (p->max - p->min) / QZ_BINS;
	int i;
	for (i = 0; i < QZ_BINS - 1; i++) {
		acc += p->hist[i];
		if (acc > tail)
			break;
	}
	*lo = p->min + w * i;
	acc = 0;
	for (i = QZ_BINS - 1; i > 0; i--) {
		acc += p->hist[i];
		if (acc > tail)
			break;
	}
	*hi = p->min + w * (i + 1);
	*lo = *lo < p->min ? p->min : *lo;
	*hi = *hi > p->max ? p->max : *hi;
}

/* ---- writing ---- */

static int add_act(struct pn_st_writer *w, const char *prefix, const char *sk, const char *zk,
		   const struct point *p)
{
	char sname[128], zname[128];
	int64_t one = 1;
	snprintf(sname, sizeof sname, "%s.%s", prefix, sk);
	snprintf(zname, sizeof zname, "%s.%s", prefix, zk);
	return pn_st_writer_add(w, sname, "F32", 1, &one, &p->scale) < 0 ||
			       pn_st_writer_add(w, zname, "I32", 1, &one, &p->zp) < 0
		       ? -1
		       : 0;
}

/* Per-output-channel symmetric weights of c (rows of `inner` floats) and
 * its int32 bias in the unit in_scale * w_scale. */
static int add_weights(struct pn_st_writer *w, const char *wname, const char *prefix, int ndim,
		       const int64_t *dims, int cout, size_t inner, const float *wf,
		       const float *bf, float in_scale)
{
	char name[128];
	int8_t *q = malloc((size_t)cout * inner);
	float *ws = malloc((size_t)cout * sizeof *ws);
	int32_t *bq = malloc((size_t)cout * sizeof *bq);
	int rc = -1;
	if (!q || !ws || !bq)
		goto out;
	for (int o = 0; o < cout; o++) {
		const float *row = wf + (size_t)o * inner;
		double mx = 0;
		for (size_t i = 0; i < inner; i++)
			mx = fabs(row[i]) > mx ? fabs(row[i]) : mx;
		double s = mx / 127.0;
		/* A (near) zero channel: a scale that keeps its bias in range. */
		double bmin = fabs(bf[o]) / ((double)in_scale * (1 << 29));
		s = s > bmin ? s : bmin;
		s = s > 1e-12 ? s : 1e-12;
		ws[o] = (float)s;
		for (size_t i = 0; i < inner; i++) {
			long v = lround(row[i] / (double)ws[o]);
			q[(size_t)o * inner + i] = (int8_t)(v < -127 ? -127 : v > 127 ? 127 : v);
		}
		bq[o] = (int32_t)lround(bf[o] / ((double)in_scale * ws[o]));
	}
	int64_t cd = cout;
	snprintf(name, sizeof name, "%s.weight_scale", prefix);
	if (pn_st_writer_add(w, wname, "I8", ndim, dims, q) < 0 ||
	    pn_st_writer_add(w, name, "F32", 1, &cd, ws) < 0)
		goto out;
	snprintf(name, sizeof name, "%s.bias", prefix);
	rc = pn_st_writer_add(w, name, "I32", 1, &cd, bq);
out:
	free(q);
	free(ws);
	free(bq);
	return rc;
}

static int add_conv(struct pn_st_writer *w, const struct qz *z, const struct fconv *c,
		    const struct point *in)
{
	if (add_weights(w, c->wname, c->prefix, c->ndim, c->dims, c->cout, c->inner, c->w, c->b,
			in->scale) < 0)
		return -1;
	return add_act(w, c->prefix, "out_scale", "out_zero_point", &z->pts[c->point]);
}

struct meta_copy {
	struct pn_st_writer *w;
	const char *const *extra; /* key, value pairs, NULL-terminated */
};

static int copy_meta(const char *key, const char *value, void *arg)
{
	struct meta_copy *mc = arg;
	if (strcmp(key, "format") == 0)
		return pn_st_writer_meta(mc->w, "format", PN_QMODEL_FORMAT) < 0 ||
		       pn_st_writer_meta(mc->w, "float_format", value) < 0;
	for (int i = 0; mc->extra[i]; i += 2)
		if (strcmp(key, mc->extra[i]) == 0)
			return 0; /* ours replaces it */
	return pn_st_writer_meta(mc->w, key, value) < 0;
}

static uint8_t *write_file(struct qz *z, const char *const *meta, size_t *len)
{
	struct pn_st_writer *w = pn_st_writer_new();
	uint8_t *out = NULL;
	struct meta_copy mc = {w, meta};
	if (!w)
		return NULL;
	if (pn_st_meta_each(z->st, copy_meta, &mc) != 0)
		goto out;
	if (!pn_st_meta(z->st, "format") && pn_st_writer_meta(w, "format", PN_QMODEL_FORMAT) < 0)
		goto out;
	for (int i = 0; meta[i]; i += 2)
		if (pn_st_writer_meta(w, meta[i], meta[i + 1]) < 0)
			goto out;
	if (add_act(w, "input", "scale", "zero_point", &z->pts[0]) < 0)
		goto out;
	const struct point *in = &z->pts[0];
	for (int i = 0; i < z->nb; i++) {
		const struct fblock *b = &z->b[i];
		if (b->kind == K_STEM) {
			if (add_conv(w, z, &b->conv, in) < 0)
				goto out;
			in = &z->pts[b->conv.point];
			continue;
		}
		if (b->expand) {
			if (add_conv(w, z, &b->exp, in) < 0)
				goto out;
			in = &z->pts[b->exp.point];
		}
		if (b->kind == K_IR) {
			if (add_conv(w, z, &b->dw, in) < 0)
				goto out;
			in = &z->pts[b->dw.point];
		}
		if (add_conv(w, z, &b->proj, in) < 0)
			goto out;
		in = &z->pts[b->proj.point];
		if (b->kind == K_IR && b->residual) {
			char prefix[32];
			snprintf(prefix, sizeof prefix, "features.%d", i);
			if (add_act(w, prefix, "out_scale", "out_zero_point",
				    &z->pts[b->add_point]) < 0)
				goto out;
			in = &z->pts[b->add_point];
		}
	}
	const struct point *pool = &z->pts[z->npoints - 1];
	int64_t hd[2] = {z->classes, z->head_c};
	if (add_act(w, "pool", "out_scale", "out_zero_point", pool) < 0 ||
	    add_weights(w, "classifier.1.weight", "classifier.1", 2, hd, z->classes,
			(size_t)z->head_c, z->head_w, z->head_b, pool->scale) < 0)
		goto out;
	out = pn_st_writer_finish(w, len);
out:
	pn_st_writer_free(w);
	return out;
}

/* ---- the whole job ---- */

static int argmax(const float *v, int n)
{
	int best = 0;
	for (int i = 1; i < n; i++)
		if (v[i] > v[best])
			best = i;
	return best;
}

/* Top-1 of the int8 file on the images: correct labels and agreement
 * with the float twin's top-1. */
static int evaluate(const uint8_t *file, size_t len, const uint8_t *images, const int *labels,
		    const int *ftop, int n, int *correct, int *agree, char *err, size_t errlen)
{
	const int batch = 8;
	/* The fastest int8 kernels: every variant gives the scalar reference's
	 * integers (tests/test-quant), so the choice, and the file, are the
	 * same on every machine. */
	const struct pn_ops *ops = pn_ops_select(err, errlen);
	if (!ops)
		return -1;
	struct pn_model *m = pn_model_load_buffer("quantised model", file, len, ops, err, errlen);
	if (!m)
		return -1;
	struct pn_plan *p = pn_plan_new(m, 0, pn_model_blocks(m), batch, err, errlen);
	if (!p) {
		pn_model_free(m);
		return -1;
	}
	const size_t in_floats = pn_shape_floats(pn_plan_in_shape(p));
	const int classes = pn_model_num_classes(m);
	*correct = *agree = 0;
	for (int i = 0; i < n; i += batch) {
		int nb = n - i < batch ? n - i : batch;
		for (int j = 0; j < nb; j++)
			pn_model_preprocess(m, images + (size_t)(i + j) * QZ_IMAGE,
					    pn_plan_input(p) + (size_t)j * in_floats);
		pn_plan_run(p, nb);
		for (int j = 0; j < nb; j++) {
			int t = argmax(pn_plan_output(p) + (size_t)j * classes, classes);
			*correct += t == labels[i + j];
			*agree += t == ftop[i + j];
		}
	}
	pn_plan_free(p);
	pn_model_free(m);
	return 0;
}

static void qz_free(struct qz *z)
{
	for (int i = 0; i < QZ_MAX_BLOCKS; i++) {
		struct fconv *cs[4] = {&z->b[i].conv, &z->b[i].exp, &z->b[i].dw, &z->b[i].proj};
		for (int k = 0; k < 4; k++) {
			free(cs[k]->w);
			free(cs[k]->b);
			free(cs[k]->packed);
		}
	}
	if (z->pts)
		for (int i = 0; i < z->npoints; i++)
			free(z->pts[i].hist);
	free(z->pts);
	for (int i = 0; i < 5; i++)
		free(z->bufs[i]);
	free(z->pooled);
	free(z->logits);
	free(z->head_w);
	free(z->head_b);
}

static int parse_strides(const char *v, int *strides, int max)
{
	int n = 0;
	for (const char *p = v; p && *p && n < max; p++)
		if (*p == '1' || *p == '2')
			strides[n++] = *p - '0';
	return n;
}

uint8_t *pn_quantize(const char *model_path, const uint8_t *images, const int *labels, int n,
		     const char *data_name, FILE *log, size_t *len, char *err, size_t errlen)
{
	struct qz z;
	struct pn_st *st = NULL;
	struct pn_model *m = NULL;
	uint8_t *best = NULL, *cand = NULL;
	float *image = NULL;
	int *ftop = NULL;
	int strides[QZ_MAX_BLOCKS];
	memset(&z, 0, sizeof z);
	err[0] = '\0';

	if (n < 1) {
		snprintf(err, errlen, "no calibration images");
		return NULL;
	}
	if (!(m = pn_model_load(model_path, &pn_ops_scalar, err, errlen)) ||
	    !(st = pn_st_open(model_path, err, errlen)))
		goto fail;
	if (strcmp(pn_model_dtype(m), "f32") != 0) {
		snprintf(err, errlen, "%s: already an int8 model", model_path);
		goto fail;
	}
	z.st = st;
	z.m = m;
	z.ref = pn_ref_vec_select();
	z.nb = pn_model_blocks(m);
	z.classes = pn_model_num_classes(m);
	if (parse_strides(pn_st_meta(st, "feature_strides"), strides, QZ_MAX_BLOCKS) != z.nb) {
		snprintf(err, errlen, "%s: metadata key feature_strides does not list %d blocks",
			 model_path, z.nb);
		goto fail;
	}
	if (build(&z, strides, err, errlen) < 0)
		goto fail;

	size_t act = pn_shape_floats(z.b[0].in), hid = 0;
	for (int i = 0; i < z.nb; i++) {
		size_t o = pn_shape_floats(z.b[i].out);
		size_t h = (size_t)z.b[i].in.h * z.b[i].in.w * z.b[i].hid;
		act = o > act ? o : act;
		hid = h > hid ? h : hid;
	}
	z.pts = calloc((size_t)z.npoints, sizeof *z.pts);
	image = malloc(pn_shape_floats(z.b[0].in) * sizeof *image);
	ftop = malloc((size_t)n * sizeof *ftop);
	z.pooled = malloc((size_t)z.head_c * sizeof(float));
	z.logits = malloc((size_t)z.classes * sizeof(float));
	for (int i = 0; i < 5; i++)
		z.bufs[i] = malloc((i == 2 || i == 3 ? hid : act) * sizeof(float));
	int ok = z.pts && image && ftop && z.pooled && z.logits;
	for (int i = 0; i < 5; i++)
		ok = ok && z.bufs[i];
	for (int i = 0; ok && i < z.npoints; i++) {
		z.pts[i].min = INFINITY;
		z.pts[i].max = -INFINITY;
		ok = (z.pts[i].hist = calloc(2 * QZ_BINS, sizeof(uint64_t))) != NULL;
	}
	if (!ok) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}

	/* Two passes over the images: ranges, then histograms. */
	int fcorrect = 0;
	for (z.pass = 0; z.pass < 2; z.pass++) {
		if (log)
			fprintf(log, "pipenet: calibration pass %d of 2 over %d images\n",
				z.pass + 1, n);
		for (int i = 0; i < n; i++) {
			pn_model_preprocess(m, images + (size_t)i * QZ_IMAGE, image);
			forward(&z, image);
			if (z.pass == 0) {
				ftop[i] = argmax(z.logits, z.classes);
				fcorrect += ftop[i] == labels[i];
			}
		}
	}
	for (int i = 0; i < z.npoints; i++) /* observe's odd elements */
		for (int b = 0; b < QZ_BINS; b++)
			z.pts[i].hist[b] += z.pts[i].hist[QZ_BINS + b];

	static const char *const names[2] = {"minmax", "percentile-99.99"};
	int correct[2], agree[2], choice = 0;
	char tops[160], imgs[32], ftop1[32];
	snprintf(imgs, sizeof imgs, "%d", n);
	snprintf(ftop1, sizeof ftop1, "%.4f", (double)fcorrect / n);
	for (int k = 0; k < 2; k++) {
		for (int i = 0; i < z.npoints; i++) {
			double lo, hi;
			point_range(&z.pts[i], k, &lo, &hi);
			choose_qparams(lo, hi, &z.pts[i].scale, &z.pts[i].zp);
		}
		const char *const meta[] = {"rounding", PN_QMODEL_ROUNDING, "calibration", names[k],
					    NULL};
		free(cand);
		if (!(cand = write_file(&z, meta, len))) {
			snprintf(err, errlen, "out of memory writing the int8 model");
			goto fail;
		}
		if (evaluate(cand, *len, images, labels, ftop, n, &correct[k], &agree[k], err,
			     errlen) < 0)
			goto fail;
		if (log)
			fprintf(log,
				"pipenet: %s: top-1 %.4f (float %.4f), top-1 agreement with "
				"float %.4f on %d calibration images\n",
				names[k], (double)correct[k] / n, (double)fcorrect / n,
				(double)agree[k] / n, n);
	}
	if (correct[1] > correct[0] || (correct[1] == correct[0] && agree[1] > agree[0]))
		choice = 1;
	snprintf(tops, sizeof tops, "%s=%.4f,%s=%.4f", names[0], (double)correct[0] / n, names[1],
		 (double)correct[1] / n);

	/* The chosen ranges again, and the file with the whole story. */
	for (int i = 0; i < z.npoints; i++) {
		double lo, hi;
		point_range(&z.pts[i], choice, &lo, &hi);
		choose_qparams(lo, hi, &z.pts[i].scale, &z.pts[i].zp);
	}
	const char *const meta[] = {"rounding",
				    PN_QMODEL_ROUNDING,
				    "calibration",
				    names[choice],
				    "calibration_images",
				    imgs,
				    "calibration_data",
				    data_name ? data_name : "",
				    "calibration_top1",
				    tops,
				    "calibration_float_top1",
				    ftop1,
				    NULL};
	if (!(best = write_file(&z, meta, len))) {
		snprintf(err, errlen, "out of memory writing the int8 model");
		goto fail;
	}
	if (log)
		fprintf(log, "pipenet: calibration %s chosen\n", names[choice]);
fail:
	free(cand);
	free(image);
	free(ftop);
	qz_free(&z);
	pn_st_free(st);
	pn_model_free(m);
	return best;
}

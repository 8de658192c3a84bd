/* The int8 MobileNetV2: loading (every tensor's dtype, shape and range
 * checked, requantisation multipliers derived from the scales) and
 * running a block of one image on whole tensors (no bands yet). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qmodel.h"
#include "quant.h"

#define QMAX_BLOCKS 64
/* |bias| bound: with |sum| < 2^30 for k < 33000 the accumulator cannot
 * overflow int32. */
#define QBIAS_MAX (1 << 30)
#define QMAX_K 33000

enum qkind { Q_STEM, Q_IR, Q_LAST };

struct qact {
	float scale, inv;
	int32_t zp;
};

struct qconv {
	int cin, cout;
	int8_t *w; /* stem [3][3][cin][cout], dw [3][3][c], 1x1 packed [cin][cout] */
	int32_t *bias, *mult;
	int8_t *exp;
	struct qact out;
	struct pn_qout q;
};

struct qblock {
	enum qkind kind;
	int stride, cin, hid, cout, expand, residual;
	struct pn_shape in, out;
	struct qact in_q, out_q;
	struct qconv conv, exp, dw, proj; /* conv: the stem; proj: also the last */
	int32_t add_a_mult, add_b_mult;
	int add_a_exp, add_b_exp;
	uint64_t macs, params;
};

struct pn_qnet {
	const struct pn_qops *ops;
	int nblocks, num_classes, head_c;
	struct qblock blocks[QMAX_BLOCKS];
	struct qact pool;
	int32_t pool_mult;
	int pool_exp;
	int8_t *head_w;
	int32_t *head_b;
	float *head_deq;
};

struct pn_qrun {
	const struct pn_qnet *q;
	int8_t *qin, *act[2], *cur, *exp, *dw, *proj, *feat, *pooled;
};

/* ---- loading ---- */

static int read_act(const struct pn_st *st, const char *prefix, const char *scale_key,
		    const char *zp_key, struct qact *a, char *err, size_t errlen)
{
	char sname[128], zname[128];
	int64_t one = 1;
	int32_t zp;
	snprintf(sname, sizeof sname, "%s.%s", prefix, scale_key);
	snprintf(zname, sizeof zname, "%s.%s", prefix, zp_key);
	if (pn_st_read(st, sname, "F32", 1, &one, &a->scale, err, errlen) < 0 ||
	    pn_st_read(st, zname, "I32", 1, &one, &zp, err, errlen) < 0)
		return -1;
	if (!isfinite(a->scale) || !(a->scale > 1e-30f) || a->scale > 1e30f) {
		snprintf(err, errlen, "%s: tensor %s is %g, expected a positive finite scale",
			 pn_st_path(st), sname, (double)a->scale);
		return -1;
	}
	if (zp < -128 || zp > 127) {
		snprintf(err, errlen, "%s: tensor %s is %d, expected a zero point in -128..127",
			 pn_st_path(st), zname, (int)zp);
		return -1;
	}
	a->zp = zp;
	a->inv = 1.0f / a->scale;
	return 0;
}

static int out_act(const struct pn_st *st, const char *prefix, struct qact *a, char *err,
		   size_t errlen)
{
	return read_act(st, prefix, "out_scale", "out_zero_point", a, err, errlen);
}

/* Reads int8 conv weight `prefix`.weight of shape dims ([cout][...]), its
 * weight_scale, bias and output parameters; w_out is [cout][inner]. */
static int read_conv(const struct pn_st *st, const char *prefix, int ndim, const int64_t *dims,
		     const struct qact *in, int relu6, struct qconv *c, int8_t **w_out, char *err,
		     size_t errlen)
{
	char name[128], sname[128], bname[128];
	const char *path = pn_st_path(st);
	int cout = (int)dims[0];
	size_t inner = 1, total;
	for (int i = 1; i < ndim; i++)
		inner *= (size_t)dims[i];
	total = (size_t)cout * inner;
	int64_t cdim = cout;
	int8_t *w = malloc(total ? total : 1);
	float *ws = malloc((size_t)cout * sizeof *ws);
	c->cout = cout;
	c->bias = malloc((size_t)cout * sizeof *c->bias);
	c->mult = malloc((size_t)cout * sizeof *c->mult);
	c->exp = malloc((size_t)cout);
	if (!w || !ws || !c->bias || !c->mult || !c->exp) {
		snprintf(err, errlen, "%s: out of memory", path);
		goto fail;
	}
	snprintf(name, sizeof name, "%s.weight", prefix);
	snprintf(sname, sizeof sname, "%s.weight_scale", prefix);
	snprintf(bname, sizeof bname, "%s.bias", prefix);
	if (pn_st_read(st, name, "I8", ndim, dims, w, err, errlen) < 0 ||
	    pn_st_read(st, sname, "F32", 1, &cdim, ws, err, errlen) < 0 ||
	    pn_st_read(st, bname, "I32", 1, &cdim, c->bias, err, errlen) < 0 ||
	    out_act(st, prefix, &c->out, err, errlen) < 0)
		goto fail;
	for (size_t i = 0; i < total; i++)
		if (w[i] == -128) {
			snprintf(err, errlen,
				 "%s: tensor %s has -128 at element %zu, expected weights in "
				 "-127..127",
				 path, name, i);
			goto fail;
		}
	for (int o = 0; o < cout; o++) {
		double m = (double)in->scale * ws[o] / c->out.scale;
		int e;
		if (!isfinite(ws[o]) || !(ws[o] > 0.0f) ||
		    pn_q_multiplier(m, &c->mult[o], &e) < 0) {
			snprintf(err, errlen,
				 "%s: tensor %s[%d] is %g: the requantisation multiplier %g is "
				 "outside 2^%d..2^%d",
				 path, sname, o, (double)ws[o], m, PN_Q_EXP_MIN - 1, PN_Q_EXP_MAX);
			goto fail;
		}
		c->exp[o] = (int8_t)e;
		if (c->bias[o] < -QBIAS_MAX || c->bias[o] > QBIAS_MAX) {
			snprintf(err, errlen, "%s: tensor %s[%d] is %d, outside +-2^30", path,
				 bname, o, (int)c->bias[o]);
			goto fail;
		}
	}
	c->q.bias = c->bias;
	c->q.mult = c->mult;
	c->q.exp = c->exp;
	c->q.zp = c->out.zp;
	c->q.lo = -128;
	c->q.hi = 127;
	if (relu6) {
		int32_t six = c->out.zp + (int32_t)lrint(6.0 / c->out.scale);
		c->q.lo = c->out.zp > -128 ? c->out.zp : -128;
		c->q.hi = six < 127 ? six : 127;
	}
	free(ws);
	*w_out = w;
	return 0;
fail:
	free(w);
	free(ws);
	return -1;
}

static int conv_shape(const struct pn_st *st, const char *prefix, int cin, int k, int *cout,
		      char *err, size_t errlen)
{
	char name[128];
	int64_t d[PN_ST_MAX_DIMS];
	snprintf(name, sizeof name, "%s.weight", prefix);
	int nd = pn_st_shape(st, name, d);
	if (nd < 0) {
		snprintf(err, errlen, "%s: tensor %s is missing", pn_st_path(st), name);
		return -1;
	}
	if (nd != 4 || d[0] < 1 || d[0] > 65536 || d[1] != cin || d[2] != k || d[3] != k) {
		snprintf(err, errlen, "%s: tensor %s: expected shape [out, %d, %d, %d]",
			 pn_st_path(st), name, cin, k, k);
		return -1;
	}
	*cout = (int)d[0];
	return 0;
}

/* A 1x1 convolution from cin channels, packed. */
static int load_pw(const struct pn_qnet *q, const struct pn_st *st, const char *prefix, int cin,
		   const struct qact *in, int relu6, struct qconv *c, char *err, size_t errlen)
{
	int cout;
	int8_t *w;
	if (conv_shape(st, prefix, cin, 1, &cout, err, errlen) < 0)
		return -1;
	int64_t d[4] = {cout, cin, 1, 1};
	if (read_conv(st, prefix, 4, d, in, relu6, c, &w, err, errlen) < 0)
		return -1;
	c->cin = cin;
	c->w = malloc(q->ops->pw_packed_bytes(cin, cout));
	if (!c->w) {
		free(w);
		snprintf(err, errlen, "%s: out of memory", pn_st_path(st));
		return -1;
	}
	q->ops->pw_pack(w, cin, cout, c->w);
	free(w);
	return 0;
}

static int load_stem(const struct pn_st *st, struct qblock *b, char *err, size_t errlen)
{
	const char *prefix = "features.0.0";
	int8_t *w;
	if (conv_shape(st, prefix, 3, 3, &b->cout, err, errlen) < 0)
		return -1;
	int64_t d[4] = {b->cout, 3, 3, 3};
	if (read_conv(st, prefix, 4, d, &b->in_q, 1, &b->conv, &w, err, errlen) < 0)
		return -1;
	b->conv.cin = 3;
	b->conv.w = malloc((size_t)27 * b->cout);
	if (!b->conv.w) {
		free(w);
		snprintf(err, errlen, "%s: out of memory", pn_st_path(st));
		return -1;
	}
	for (int o = 0; o < b->cout; o++)
		for (int ci = 0; ci < 3; ci++)
			for (int k = 0; k < 9; k++)
				b->conv.w[((size_t)k * 3 + ci) * b->cout + o] =
					w[((size_t)o * 3 + ci) * 9 + k];
	free(w);
	b->out_q = b->conv.out;
	b->params = (uint64_t)b->cout * 27 + 2u * b->cout;
	return 0;
}

static int add_multiplier(const struct pn_st *st, const char *what, double m, int32_t *mult,
			  int *exp, char *err, size_t errlen)
{
	if (!(m < PN_QADD_MAX_MULT) || pn_q_multiplier(m, mult, exp) < 0) {
		snprintf(err, errlen,
			 "%s: tensor %s: the residual add's multiplier %g is outside 2^%d..%g",
			 pn_st_path(st), what, m, PN_Q_EXP_MIN - 1, PN_QADD_MAX_MULT);
		return -1;
	}
	return 0;
}

static int load_ir(const struct pn_qnet *q, const struct pn_st *st, int i, struct qblock *b,
		   char *err, size_t errlen)
{
	char prefix[96], probe[96];
	int64_t d[PN_ST_MAX_DIMS];
	int8_t *w;
	const struct qact *cur = &b->in_q;

	snprintf(probe, sizeof probe, "features.%d.conv.2.weight", i);
	b->expand = pn_st_shape(st, probe, d) >= 0;
	int conv = 0;
	b->hid = b->cin;
	if (b->expand) {
		snprintf(prefix, sizeof prefix, "features.%d.conv.0.0", i);
		if (load_pw(q, st, prefix, b->cin, cur, 1, &b->exp, err, errlen) < 0)
			return -1;
		b->hid = b->exp.cout;
		cur = &b->exp.out;
		b->params += (uint64_t)b->hid * b->cin + 2u * b->hid;
		conv = 1;
	}
	snprintf(prefix, sizeof prefix, "features.%d.conv.%d.0", i, conv);
	int64_t dd[4] = {b->hid, 1, 3, 3};
	int dwc;
	if (conv_shape(st, prefix, 1, 3, &dwc, err, errlen) < 0)
		return -1;
	if (dwc != b->hid) {
		snprintf(err, errlen, "%s: tensor %s.weight: expected shape [%d, 1, 3, 3]",
			 pn_st_path(st), prefix, b->hid);
		return -1;
	}
	if (read_conv(st, prefix, 4, dd, cur, 1, &b->dw, &w, err, errlen) < 0)
		return -1;
	b->dw.cin = b->hid;
	b->dw.w = malloc((size_t)9 * b->hid);
	if (!b->dw.w) {
		free(w);
		snprintf(err, errlen, "%s: out of memory", pn_st_path(st));
		return -1;
	}
	for (int c = 0; c < b->hid; c++)
		for (int k = 0; k < 9; k++)
			b->dw.w[(size_t)k * b->hid + c] = w[(size_t)c * 9 + k];
	free(w);
	b->params += (uint64_t)b->hid * 9 + 2u * b->hid;

	snprintf(prefix, sizeof prefix, "features.%d.conv.%d", i, conv + 1);
	if (load_pw(q, st, prefix, b->hid, &b->dw.out, 0, &b->proj, err, errlen) < 0)
		return -1;
	b->cout = b->proj.cout;
	b->params += (uint64_t)b->cout * b->hid + 2u * b->cout;
	b->residual = b->stride == 1 && b->cin == b->cout;
	b->out_q = b->proj.out;
	if (b->residual) {
		snprintf(prefix, sizeof prefix, "features.%d", i);
		if (out_act(st, prefix, &b->out_q, err, errlen) < 0)
			return -1;
		snprintf(probe, sizeof probe, "features.%d.out_scale", i);
		if (add_multiplier(st, probe, (double)b->in_q.scale / b->out_q.scale,
				   &b->add_a_mult, &b->add_a_exp, err, errlen) < 0 ||
		    add_multiplier(st, probe, (double)b->proj.out.scale / b->out_q.scale,
				   &b->add_b_mult, &b->add_b_exp, err, errlen) < 0)
			return -1;
	}
	return 0;
}

static int load_head(struct pn_qnet *q, const struct pn_st *st, const struct qblock *last,
		     char *err, size_t errlen)
{
	const char *path = pn_st_path(st);
	const int c = last->cout, n = q->num_classes;
	int64_t wd[2] = {n, c}, bd = n;
	float *ws = malloc((size_t)n * sizeof *ws);
	q->head_c = c;
	q->head_w = malloc((size_t)n * c);
	q->head_b = malloc((size_t)n * sizeof *q->head_b);
	q->head_deq = malloc((size_t)n * sizeof *q->head_deq);
	if (!ws || !q->head_w || !q->head_b || !q->head_deq) {
		snprintf(err, errlen, "%s: out of memory", path);
		goto fail;
	}
	if (out_act(st, "pool", &q->pool, err, errlen) < 0)
		goto fail;
	double m = (double)last->out_q.scale / ((double)last->out.h * last->out.w * q->pool.scale);
	if (pn_q_multiplier(m, &q->pool_mult, &q->pool_exp) < 0) {
		snprintf(err, errlen,
			 "%s: tensor pool.out_scale: the pooling multiplier %g is outside "
			 "2^%d..2^%d",
			 path, m, PN_Q_EXP_MIN - 1, PN_Q_EXP_MAX);
		goto fail;
	}
	if (pn_st_read(st, "classifier.1.weight", "I8", 2, wd, q->head_w, err, errlen) < 0 ||
	    pn_st_read(st, "classifier.1.weight_scale", "F32", 1, &bd, ws, err, errlen) < 0 ||
	    pn_st_read(st, "classifier.1.bias", "I32", 1, &bd, q->head_b, err, errlen) < 0)
		goto fail;
	for (size_t i = 0; i < (size_t)n * c; i++)
		if (q->head_w[i] == -128) {
			snprintf(err, errlen,
				 "%s: tensor classifier.1.weight has -128 at element %zu, expected "
				 "weights in -127..127",
				 path, i);
			goto fail;
		}
	for (int j = 0; j < n; j++) {
		if (!isfinite(ws[j]) || !(ws[j] > 0.0f)) {
			snprintf(err, errlen,
				 "%s: tensor classifier.1.weight_scale[%d] is %g, expected a "
				 "positive finite scale",
				 path, j, (double)ws[j]);
			goto fail;
		}
		if (q->head_b[j] < -QBIAS_MAX || q->head_b[j] > QBIAS_MAX) {
			snprintf(err, errlen,
				 "%s: tensor classifier.1.bias[%d] is %d, outside +-2^30", path, j,
				 (int)q->head_b[j]);
			goto fail;
		}
		q->head_deq[j] = (float)((double)q->pool.scale * ws[j]);
	}
	free(ws);
	return 0;
fail:
	free(ws);
	return -1;
}

struct pn_qnet *pn_qnet_load(const struct pn_st *st, const struct pn_qops *ops, int nblocks,
			     const int *strides, int input_size, int num_classes, char *err,
			     size_t errlen)
{
	const char *path = pn_st_path(st);
	const char *rounding = pn_st_meta(st, "rounding");
	struct pn_qnet *q = calloc(1, sizeof *q);
	if (!q) {
		snprintf(err, errlen, "%s: out of memory", path);
		return NULL;
	}
	if (nblocks > QMAX_BLOCKS) {
		snprintf(err, errlen, "%s: %d blocks, at most %d", path, nblocks, QMAX_BLOCKS);
		goto fail;
	}
	if (!rounding || strcmp(rounding, PN_QMODEL_ROUNDING) != 0) {
		snprintf(err, errlen, "%s: metadata key rounding is \"%s\", expected \"%s\"", path,
			 rounding ? rounding : "(missing)", PN_QMODEL_ROUNDING);
		goto fail;
	}
	q->ops = ops;
	q->nblocks = nblocks;
	q->num_classes = num_classes;
	struct qact act;
	if (read_act(st, "input", "scale", "zero_point", &act, err, errlen) < 0)
		goto fail;
	struct pn_shape shape = {input_size, input_size, 3};
	for (int i = 0; i < nblocks; i++) {
		struct qblock *b = &q->blocks[i];
		char prefix[64];
		b->kind = i == 0 ? Q_STEM : i == nblocks - 1 ? Q_LAST : Q_IR;
		b->stride = strides[i];
		b->cin = shape.c;
		b->in = shape;
		b->in_q = act;
		if (b->cin > QMAX_K) {
			snprintf(err, errlen, "%s: block %d has %d input channels, at most %d",
				 path, i, b->cin, QMAX_K);
			goto fail;
		}
		int rc;
		if (b->kind == Q_STEM) {
			rc = load_stem(st, b, err, errlen);
		} else if (b->kind == Q_IR) {
			rc = load_ir(q, st, i, b, err, errlen);
		} else {
			snprintf(prefix, sizeof prefix, "features.%d.0", i);
			rc = load_pw(q, st, prefix, b->cin, &b->in_q, 1, &b->proj, err, errlen);
			if (rc == 0) {
				b->cout = b->proj.cout;
				b->out_q = b->proj.out;
				b->params = (uint64_t)b->cout * b->cin + 2u * b->cout;
			}
		}
		if (rc < 0)
			goto fail;
		if (b->hid > QMAX_K) {
			snprintf(err, errlen, "%s: block %d expands to %d channels, at most %d",
				 path, i, b->hid, QMAX_K);
			goto fail;
		}
		if (b->kind == Q_LAST && b->stride != 1) {
			snprintf(err, errlen,
				 "%s: metadata feature_strides gives the last block (a 1x1 "
				 "convolution) stride %d, expected 1",
				 path, b->stride);
			goto fail;
		}
		b->out.h = (shape.h - 1) / b->stride + 1;
		b->out.w = (shape.w - 1) / b->stride + 1;
		b->out.c = b->cout;
		size_t po = (size_t)b->out.h * b->out.w;
		if (b->kind == Q_STEM)
			b->macs = po * b->cout * 27;
		else if (b->kind == Q_IR)
			b->macs = (b->expand ? (uint64_t)shape.h * shape.w * b->cin * b->hid : 0) +
				  po * b->hid * 9 + po * b->hid * b->cout;
		else
			b->macs = po * b->cin * b->cout;
		shape = b->out;
		act = b->out_q;
	}
	struct qblock *last = &q->blocks[nblocks - 1];
	if (load_head(q, st, last, err, errlen) < 0)
		goto fail;
	last->macs += (uint64_t)num_classes * shape.c;
	last->params += (uint64_t)num_classes * shape.c + (uint64_t)num_classes;
	return q;
fail:
	pn_qnet_free(q);
	return NULL;
}

static void free_conv(struct qconv *c)
{
	free(c->w);
	free(c->bias);
	free(c->mult);
	free(c->exp);
}

void pn_qnet_free(struct pn_qnet *q)
{
	if (!q)
		return;
	for (int i = 0; i < QMAX_BLOCKS; i++) {
		free_conv(&q->blocks[i].conv);
		free_conv(&q->blocks[i].exp);
		free_conv(&q->blocks[i].dw);
		free_conv(&q->blocks[i].proj);
	}
	free(q->head_w);
	free(q->head_b);
	free(q->head_deq);
	free(q);
}

const struct pn_qops *pn_qnet_ops(const struct pn_qnet *q)
{
	return q->ops;
}

void pn_qnet_block_info(const struct pn_qnet *q, int block, struct pn_qblock_info *info)
{
	const struct qblock *b = &q->blocks[block];
	info->in = b->in;
	info->out = b->out;
	info->macs = b->macs;
	info->params = b->params;
}

void pn_qnet_act_quant(const struct pn_qnet *q, int block, float *scale, int32_t *zero_point)
{
	*scale = q->blocks[block].in_q.scale;
	*zero_point = q->blocks[block].in_q.zp;
}

/* ---- running ---- */

struct pn_qrun *pn_qrun_new(const struct pn_qnet *q, int first, int last)
{
	struct pn_qrun *r = calloc(1, sizeof *r);
	if (!r)
		return NULL;
	r->q = q;
	size_t act = 0, exp = 0, dw = 0, feat = 0;
	for (int i = first; i < last; i++) {
		const struct qblock *b = &q->blocks[i];
		size_t in = pn_shape_floats(b->in), out = pn_shape_floats(b->out);
		act = in > act ? in : act;
		act = out > act ? out : act;
		if (b->kind == Q_IR) {
			size_t e = (size_t)b->in.h * b->in.w * b->hid;
			size_t d = (size_t)b->out.h * b->out.w * b->hid;
			exp = b->expand && e > exp ? e : exp;
			dw = d > dw ? d : dw;
		}
		if (b->kind == Q_LAST)
			feat = out;
	}
	r->qin = malloc(act);
	r->act[0] = malloc(act);
	r->act[1] = malloc(act);
	r->proj = malloc(act);
	r->exp = malloc(exp ? exp : 1);
	r->dw = malloc(dw ? dw : 1);
	r->feat = malloc(feat ? feat : 1);
	r->pooled = malloc((size_t)q->head_c);
	if (!r->qin || !r->act[0] || !r->act[1] || !r->proj || !r->exp || !r->dw || !r->feat ||
	    !r->pooled) {
		pn_qrun_free(r);
		return NULL;
	}
	r->cur = r->qin;
	return r;
}

void pn_qrun_free(struct pn_qrun *r)
{
	if (!r)
		return;
	free(r->qin);
	free(r->act[0]);
	free(r->act[1]);
	free(r->proj);
	free(r->exp);
	free(r->dw);
	free(r->feat);
	free(r->pooled);
	free(r);
}

static void run_ir(const struct pn_qops *ops, const struct qblock *b, const int8_t *src,
		   int8_t *dst, struct pn_qrun *r)
{
	const int8_t *dw_in = src;
	int32_t dw_zp = b->in_q.zp;
	if (b->expand) {
		ops->pw(src, r->exp, b->exp.w, b->in.h * b->in.w, b->cin, b->hid, b->in_q.zp,
			&b->exp.q);
		dw_in = r->exp;
		dw_zp = b->exp.out.zp;
	}
	struct pn_qdw_args dw = {
		.in = dw_in,
		.in_y0 = 0,
		.in_h = b->in.h,
		.in_w = b->in.w,
		.in_zp = dw_zp,
		.out = r->dw,
		.out_y0 = 0,
		.out_y1 = b->out.h,
		.out_w = b->out.w,
		.c = b->hid,
		.stride = b->stride,
		.weights = b->dw.w,
		.q = b->dw.q,
	};
	ops->dw3x3(&dw);
	const int m = b->out.h * b->out.w;
	ops->pw(r->dw, b->residual ? r->proj : dst, b->proj.w, m, b->hid, b->cout, b->dw.out.zp,
		&b->proj.q);
	if (b->residual) {
		struct pn_qadd_args add = {
			.a = src,
			.b = r->proj,
			.out = dst,
			.n = (size_t)m * b->cout,
			.a_zp = b->in_q.zp,
			.b_zp = b->proj.out.zp,
			.a_mult = b->add_a_mult,
			.b_mult = b->add_b_mult,
			.out_zp = b->out_q.zp,
			.a_exp = b->add_a_exp,
			.b_exp = b->add_b_exp,
		};
		ops->add(&add);
	}
}

void pn_qrun_block(struct pn_qrun *r, int i, const float *in, float *out)
{
	pn_qrun_block_q(r, i, in, NULL, out, NULL);
}

void pn_qrun_block_q(struct pn_qrun *r, int i, const float *in, const int8_t *qin, float *out,
		     int8_t *qout)
{
	const struct pn_qnet *q = r->q;
	const struct pn_qops *ops = q->ops;
	const struct qblock *b = &q->blocks[i];
	const int8_t *src = qin ? qin : r->cur;
	if (in) {
		ops->quantize(in, r->qin, pn_shape_floats(b->in), b->in_q.inv, b->in_q.zp);
		src = r->qin;
	}
	int8_t *dst = src == r->act[0] ? r->act[1] : r->act[0];

	switch (b->kind) {
	case Q_STEM: {
		struct pn_qconv_args a = {
			.in = src,
			.in_h = b->in.h,
			.in_w = b->in.w,
			.cin = b->cin,
			.in_zp = b->in_q.zp,
			.out = dst,
			.out_y0 = 0,
			.out_y1 = b->out.h,
			.out_w = b->out.w,
			.cout = b->cout,
			.stride = b->stride,
			.weights = b->conv.w,
			.q = b->conv.q,
		};
		ops->conv3x3(&a);
		break;
	}
	case Q_IR:
		run_ir(ops, b, src, dst, r);
		break;
	case Q_LAST: {
		const int hw = b->out.h * b->out.w;
		ops->pw(src, r->feat, b->proj.w, hw, b->cin, b->cout, b->in_q.zp, &b->proj.q);
		ops->avgpool(r->feat, r->pooled, hw, b->cout, b->proj.out.zp, q->pool_mult,
			     q->pool_exp, q->pool.zp);
		if (out)
			ops->linear(r->pooled, out, q->head_w, q->head_b, q->head_deq, q->head_c,
				    q->num_classes, q->pool.zp);
		r->cur = dst;
		return;
	}
	}
	if (out)
		ops->dequantize(dst, out, pn_shape_floats(b->out), b->out_q.scale, b->out_q.zp);
	if (qout)
		memcpy(qout, dst, pn_shape_floats(b->out));
	r->cur = dst;
}

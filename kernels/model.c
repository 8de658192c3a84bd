/* MobileNetV2 from a safetensors file: structure from the tensor shapes
 * and the metadata, BatchNorm folded into the convolutions, weights packed
 * for the chosen kernel table. Plans run block ranges image by image; an
 * inverted-residual block runs in bands of output rows so that its
 * expanded (6x) tensor stays in cache. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fold.h"
#include "model.h"
#include "preprocess.h"
#include "qmodel.h"
#include "safetensors.h"

#define PN_MAX_BLOCKS 64
#define PN_MAX_CLASSES 1000
#define PN_MAX_INPUT 1024
/* Bytes of expanded activations a band aims for: a good share of L2 on a
 * Cortex-A72/A76 and on x86 cores alike. */
#define PN_BAND_BYTES (256 * 1024)

enum block_kind { BLOCK_STEM, BLOCK_IR, BLOCK_LAST };

struct block {
	enum block_kind kind;
	int stride, cin, hid, cout, expand, residual;
	struct pn_shape in, out;
	float *conv_w, *conv_b; /* stem: [3][3][cin][cout], [cout] */
	float *exp_packed; /* expand 1x1, packed */
	float *dw_w, *dw_b; /* [3][3][hid], [hid] */
	float *proj_packed; /* project 1x1 (or the last conv), packed */
	int band_rows; /* output rows per band */
	int band_in_rows; /* capacity of the expanded band, in rows */
	uint64_t macs, params;
};

struct pn_model {
	const struct pn_ops *ops;
	int nblocks, input_size, source_size, num_classes;
	float mean[3], std[3];
	struct pn_prep *prep;
	char *class_buf;
	const char **classes;
	struct block blocks[PN_MAX_BLOCKS];
	float *head_w, *head_b; /* [classes][c], [classes] */
	int head_c;
	struct pn_qnet *q; /* an int8 model: its blocks run there */
};

struct pn_plan {
	const struct pn_model *m;
	int first, last, batch;
	size_t in_floats, out_floats, act_floats;
	float *in, *out, *act[2], *band_exp, *band_dw, *feat, *pooled;
	struct pn_qrun *qr; /* an int8 model's scratch */
	int8_t *qin, *qout; /* pn_plan_set_i8's integer ends, or NULL */
	int n, img, blk; /* job state: next (image, block) to run */
};

static void *alloc_floats(size_t n)
{
	void *p = NULL;
	if (posix_memalign(&p, 64, (n ? n : 1) * sizeof(float)) != 0)
		return NULL;
	return p;
}

/* ---- metadata ---- */

static int meta_int(const struct pn_st *st, const char *key, int lo, int hi, int *out, char *err,
		    size_t errlen)
{
	const char *v = pn_st_meta(st, key);
	char *end;
	if (!v) {
		snprintf(err, errlen, "%s: metadata key %s is missing", pn_st_path(st), key);
		return -1;
	}
	errno = 0;
	long x = strtol(v, &end, 10);
	if (errno || end == v || *end || x < lo || x > hi) {
		snprintf(err, errlen,
			 "%s: metadata key %s is \"%s\", expected an integer in %d..%d",
			 pn_st_path(st), key, v, lo, hi);
		return -1;
	}
	*out = (int)x;
	return 0;
}

/* A comma-separated list of exactly n positive floats (n = 1 for one). */
static int meta_floats(const struct pn_st *st, const char *key, int n, float *out, char *err,
		       size_t errlen)
{
	const char *v = pn_st_meta(st, key);
	if (!v) {
		snprintf(err, errlen, "%s: metadata key %s is missing", pn_st_path(st), key);
		return -1;
	}
	const char *p = v;
	for (int i = 0; i < n; i++) {
		char *end;
		errno = 0;
		double x = strtod(p, &end);
		if (errno || end == p || !isfinite(x) || x <= 0.0 ||
		    (i < n - 1 ? *end != ',' : *end != '\0')) {
			snprintf(err, errlen, "%s: metadata key %s is \"%s\", expected %s",
				 pn_st_path(st), key, v,
				 n > 1 ? "positive numbers separated by commas"
				       : "a positive number");
			return -1;
		}
		out[i] = (float)x;
		p = end + 1;
	}
	return 0;
}

static int meta_strides(const struct pn_st *st, int *strides, int *count, char *err, size_t errlen)
{
	const char *key = "feature_strides";
	const char *v = pn_st_meta(st, key);
	if (!v) {
		snprintf(err, errlen, "%s: metadata key %s is missing", pn_st_path(st), key);
		return -1;
	}
	int n = 0;
	for (const char *p = v;;) {
		if ((*p != '1' && *p != '2') || (p[1] != ',' && p[1] != '\0') ||
		    n == PN_MAX_BLOCKS) {
			snprintf(err, errlen,
				 "%s: metadata key %s is \"%s\", expected a comma list of up to %d "
				 "strides, each 1 or 2",
				 pn_st_path(st), key, v, PN_MAX_BLOCKS);
			return -1;
		}
		strides[n++] = *p - '0';
		if (p[1] == '\0')
			break;
		p += 2;
	}
	if (n < 3) {
		snprintf(err, errlen,
			 "%s: metadata key %s lists %d blocks, expected a stem, at least one "
			 "inverted-residual block and a last conv",
			 pn_st_path(st), key, n);
		return -1;
	}
	*count = n;
	return 0;
}

static int meta_classes(struct pn_model *m, const struct pn_st *st, char *err, size_t errlen)
{
	const char *v = pn_st_meta(st, "classes");
	if (!v) {
		snprintf(err, errlen, "%s: metadata key classes is missing", pn_st_path(st));
		return -1;
	}
	m->class_buf = strdup(v);
	m->classes = calloc((size_t)m->num_classes + 1, sizeof *m->classes);
	if (!m->class_buf || !m->classes) {
		snprintf(err, errlen, "%s: out of memory", pn_st_path(st));
		return -1;
	}
	int n = 0;
	for (char *p = m->class_buf;; n++) {
		char *comma = strchr(p, ',');
		if (comma)
			*comma = '\0';
		if (n < m->num_classes)
			m->classes[n] = p;
		if (!*p) {
			snprintf(err, errlen, "%s: metadata key classes has an empty name at %d",
				 pn_st_path(st), n);
			return -1;
		}
		if (!comma)
			break;
		p = comma + 1;
	}
	if (n + 1 != m->num_classes) {
		snprintf(err, errlen,
			 "%s: metadata key classes names %d classes, num_classes is %d",
			 pn_st_path(st), n + 1, m->num_classes);
		return -1;
	}
	return 0;
}

/* ---- weights ---- */

int pn_fold_conv_bn(const struct pn_st *st, const char *wname, int ndim, const int64_t *dims,
		    const char *bn, float eps, float **w_out, float **b_out, char *err,
		    size_t errlen)
{
	int cout = (int)dims[0];
	size_t inner = 1;
	for (int i = 1; i < ndim; i++)
		inner *= (size_t)dims[i];
	float *w = malloc((size_t)cout * inner * sizeof *w);
	float *b = malloc((size_t)cout * sizeof *b);
	float *bnv = malloc(4 * (size_t)cout * sizeof *bnv);
	static const char *const parts[4] = {"weight", "bias", "running_mean", "running_var"};
	int64_t cdim = cout;
	if (!w || !b || !bnv) {
		snprintf(err, errlen, "%s: out of memory", pn_st_path(st));
		goto fail;
	}
	if (pn_st_read_f32(st, wname, ndim, dims, w, err, errlen) < 0)
		goto fail;
	for (int i = 0; i < 4; i++) {
		char name[128];
		snprintf(name, sizeof name, "%s.%s", bn, parts[i]);
		if (pn_st_read_f32(st, name, 1, &cdim, bnv + (size_t)i * cout, err, errlen) < 0)
			goto fail;
	}
	for (int o = 0; o < cout; o++) {
		double gamma = bnv[o], beta = bnv[cout + o], mean = bnv[2 * cout + o];
		double var = bnv[3 * cout + o];
		if (!(var >= 0.0) || !isfinite(var)) {
			snprintf(err, errlen, "%s: tensor %s.running_var[%d] is %g, expected >= 0",
				 pn_st_path(st), bn, o, var);
			goto fail;
		}
		double scale = gamma / sqrt(var + (double)eps);
		for (size_t i = 0; i < inner; i++)
			w[(size_t)o * inner + i] = (float)(w[(size_t)o * inner + i] * scale);
		b[o] = (float)(beta - mean * scale);
	}
	free(bnv);
	*w_out = w;
	*b_out = b;
	return 0;
fail:
	free(w);
	free(b);
	free(bnv);
	return -1;
}

static int pack_pw(const struct pn_model *m, const struct pn_st *st, const float *w, const float *b,
		   int k, int n, float **out, char *err, size_t errlen)
{
	*out = alloc_floats(m->ops->pw_packed_floats(k, n));
	if (!*out) {
		snprintf(err, errlen, "%s: out of memory", pn_st_path(st));
		return -1;
	}
	m->ops->pw_pack(w, b, k, n, *out);
	return 0;
}

/* Reads the output-channel count of 1x1 conv `name` and checks it is
 * [cout, cin, 1, 1] for some cout. */
static int pw_cout(const struct pn_st *st, const char *name, int cin, int *cout, char *err,
		   size_t errlen)
{
	int64_t d[PN_ST_MAX_DIMS];
	int nd = pn_st_shape(st, name, d);
	if (nd < 0) {
		snprintf(err, errlen, "%s: tensor %s is missing", pn_st_path(st), name);
		return -1;
	}
	if (nd != 4 || d[0] < 1 || d[0] > 65536 || d[1] != cin || d[2] != 1 || d[3] != 1) {
		snprintf(err, errlen,
			 "%s: tensor %s: expected a 1x1 convolution of shape [out, %d, 1, 1]",
			 pn_st_path(st), name, cin);
		return -1;
	}
	*cout = (int)d[0];
	return 0;
}

static int load_stem(struct pn_model *m, const struct pn_st *st, struct block *b, float eps,
		     char *err, size_t errlen)
{
	int64_t d[PN_ST_MAX_DIMS];
	const char *wname = "features.0.0.weight";
	int nd = pn_st_shape(st, wname, d);
	if (nd < 0) {
		snprintf(err, errlen, "%s: tensor %s is missing", pn_st_path(st), wname);
		return -1;
	}
	if (nd != 4 || d[0] < 1 || d[0] > 65536 || d[1] != 3 || d[2] != 3 || d[3] != 3) {
		snprintf(err, errlen, "%s: tensor %s: expected shape [out, 3, 3, 3] (3x3 RGB stem)",
			 pn_st_path(st), wname);
		return -1;
	}
	b->cin = 3;
	b->cout = (int)d[0];
	float *w, *bias;
	if (pn_fold_conv_bn(st, wname, 4, d, "features.0.1", eps, &w, &bias, err, errlen) < 0)
		return -1;
	b->conv_w = alloc_floats((size_t)9 * 3 * b->cout);
	if (!b->conv_w) {
		free(w);
		free(bias);
		snprintf(err, errlen, "%s: out of memory", pn_st_path(st));
		return -1;
	}
	for (int o = 0; o < b->cout; o++)
		for (int ci = 0; ci < 3; ci++)
			for (int k = 0; k < 9; k++)
				b->conv_w[((size_t)k * 3 + ci) * b->cout + o] =
					w[((size_t)o * 3 + ci) * 9 + k];
	free(w);
	b->conv_b = bias;
	b->params = (uint64_t)b->cout * 27 + 2u * b->cout;
	return 0;
}

static int load_ir(struct pn_model *m, const struct pn_st *st, int i, struct block *b, float eps,
		   char *err, size_t errlen)
{
	char wname[96], bn[96], probe[96];
	int64_t d[PN_ST_MAX_DIMS];
	float *w = NULL, *bias = NULL;
	int rc = -1;

	snprintf(probe, sizeof probe, "features.%d.conv.3.weight", i);
	b->expand = pn_st_shape(st, probe, d) >= 0;
	int conv = 0; /* index of the next Sequential element */
	b->hid = b->cin;
	if (b->expand) {
		snprintf(wname, sizeof wname, "features.%d.conv.0.0.weight", i);
		snprintf(bn, sizeof bn, "features.%d.conv.0.1", i);
		if (pw_cout(st, wname, b->cin, &b->hid, err, errlen) < 0)
			return -1;
		int64_t wd[4] = {b->hid, b->cin, 1, 1};
		if (pn_fold_conv_bn(st, wname, 4, wd, bn, eps, &w, &bias, err, errlen) < 0)
			return -1;
		if (pack_pw(m, st, w, bias, b->cin, b->hid, &b->exp_packed, err, errlen) < 0)
			goto out;
		free(w);
		free(bias);
		w = bias = NULL;
		b->params += (uint64_t)b->hid * b->cin + 2u * b->hid;
		conv = 1;
	}

	snprintf(wname, sizeof wname, "features.%d.conv.%d.0.weight", i, conv);
	snprintf(bn, sizeof bn, "features.%d.conv.%d.1", i, conv);
	int64_t dd[4] = {b->hid, 1, 3, 3};
	if (pn_fold_conv_bn(st, wname, 4, dd, bn, eps, &w, &bias, err, errlen) < 0)
		goto out;
	b->dw_w = alloc_floats((size_t)9 * b->hid);
	if (!b->dw_w) {
		snprintf(err, errlen, "%s: out of memory", pn_st_path(st));
		goto out;
	}
	for (int c = 0; c < b->hid; c++)
		for (int k = 0; k < 9; k++)
			b->dw_w[(size_t)k * b->hid + c] = w[(size_t)c * 9 + k];
	b->dw_b = bias;
	bias = NULL;
	free(w);
	w = NULL;
	b->params += (uint64_t)b->hid * 9 + 2u * b->hid;

	snprintf(wname, sizeof wname, "features.%d.conv.%d.weight", i, conv + 1);
	snprintf(bn, sizeof bn, "features.%d.conv.%d", i, conv + 2);
	if (pw_cout(st, wname, b->hid, &b->cout, err, errlen) < 0)
		goto out;
	int64_t pd[4] = {b->cout, b->hid, 1, 1};
	if (pn_fold_conv_bn(st, wname, 4, pd, bn, eps, &w, &bias, err, errlen) < 0)
		goto out;
	if (pack_pw(m, st, w, bias, b->hid, b->cout, &b->proj_packed, err, errlen) < 0)
		goto out;
	b->params += (uint64_t)b->cout * b->hid + 2u * b->cout;
	b->residual = b->stride == 1 && b->cin == b->cout;
	rc = 0;
out:
	free(w);
	free(bias);
	return rc;
}

static int load_last(struct pn_model *m, const struct pn_st *st, int i, struct block *b, float eps,
		     char *err, size_t errlen)
{
	char wname[96], bn[96];
	float *w, *bias;
	snprintf(wname, sizeof wname, "features.%d.0.weight", i);
	snprintf(bn, sizeof bn, "features.%d.1", i);
	if (pw_cout(st, wname, b->cin, &b->cout, err, errlen) < 0)
		return -1;
	int64_t wd[4] = {b->cout, b->cin, 1, 1};
	if (pn_fold_conv_bn(st, wname, 4, wd, bn, eps, &w, &bias, err, errlen) < 0)
		return -1;
	int rc = pack_pw(m, st, w, bias, b->cin, b->cout, &b->proj_packed, err, errlen);
	free(w);
	free(bias);
	b->params = (uint64_t)b->cout * b->cin + 2u * b->cout;
	return rc;
}

static int load_head(struct pn_model *m, const struct pn_st *st, int c, char *err, size_t errlen)
{
	int64_t wd[2] = {m->num_classes, c}, bd[1] = {m->num_classes};
	m->head_c = c;
	m->head_w = alloc_floats((size_t)m->num_classes * c);
	m->head_b = alloc_floats((size_t)m->num_classes);
	if (!m->head_w || !m->head_b) {
		snprintf(err, errlen, "%s: out of memory", pn_st_path(st));
		return -1;
	}
	if (pn_st_read_f32(st, "classifier.1.weight", 2, wd, m->head_w, err, errlen) < 0 ||
	    pn_st_read_f32(st, "classifier.1.bias", 1, bd, m->head_b, err, errlen) < 0)
		return -1;
	return 0;
}

/* Band sizes depend only on the block's shape, so every plan (and every
 * stage of a split) runs a block the same way. */
static void choose_bands(struct block *b)
{
	if (b->kind != BLOCK_IR)
		return;
	size_t row_bytes = (size_t)b->in.w * b->hid * sizeof(float);
	int rows_in = (int)(PN_BAND_BYTES / row_bytes);
	if (rows_in < 3)
		rows_in = 3;
	int r = b->stride == 1 ? rows_in - 2 : (rows_in - 1) / 2;
	if (r < 1)
		r = 1;
	if (r > b->out.h)
		r = b->out.h;
	b->band_rows = r;
	int need = b->stride == 1 ? r + 2 : 2 * r + 1;
	b->band_in_rows = need < b->in.h ? need : b->in.h;
}

/* Builds the model from a parsed file; takes ownership of st. */
static struct pn_model *model_from_st(struct pn_st *st, const struct pn_ops *ops,
				      const struct pn_qops *qops, char *err, size_t errlen)
{
	const char *path = pn_st_path(st);
	struct pn_model *m = calloc(1, sizeof *m);
	int strides[PN_MAX_BLOCKS];
	float eps;

	if (!m) {
		snprintf(err, errlen, "%s: out of memory", path);
		goto fail;
	}
	m->ops = ops;
	if (meta_int(st, "num_classes", 1, PN_MAX_CLASSES, &m->num_classes, err, errlen) < 0 ||
	    meta_int(st, "input_size", 8, PN_MAX_INPUT, &m->input_size, err, errlen) < 0 ||
	    meta_classes(m, st, err, errlen) < 0 ||
	    meta_floats(st, "mean", 3, m->mean, err, errlen) < 0 ||
	    meta_floats(st, "std", 3, m->std, err, errlen) < 0 ||
	    meta_floats(st, "bn_eps", 1, &eps, err, errlen) < 0 ||
	    meta_strides(st, strides, &m->nblocks, err, errlen) < 0)
		goto fail;
	m->source_size = 32;
	if (pn_st_meta(st, "source_size") &&
	    meta_int(st, "source_size", 32, 32, &m->source_size, err, errlen) < 0)
		goto fail;
	m->prep = pn_prep_new(m->source_size, m->input_size, m->mean, m->std);
	if (!m->prep) {
		snprintf(err, errlen, "%s: out of memory", path);
		goto fail;
	}

	const char *format = pn_st_meta(st, "format");
	if (format && strcmp(format, PN_QMODEL_FORMAT) == 0) {
		m->q = pn_qnet_load(st, qops ? qops : pn_qops_select(ops->name), m->nblocks,
				    strides, m->input_size, m->num_classes, err, errlen);
		if (!m->q)
			goto fail;
		for (int i = 0; i < m->nblocks; i++) {
			struct block *b = &m->blocks[i];
			struct pn_qblock_info info;
			pn_qnet_block_info(m->q, i, &info);
			b->kind = i == 0 ? BLOCK_STEM : i == m->nblocks - 1 ? BLOCK_LAST : BLOCK_IR;
			b->stride = strides[i];
			b->in = info.in;
			b->out = info.out;
			b->cin = info.in.c;
			b->cout = info.out.c;
			b->macs = info.macs;
			b->params = info.params;
		}
		m->head_c = m->blocks[m->nblocks - 1].cout;
		pn_st_free(st);
		return m;
	}

	struct pn_shape shape = {m->input_size, m->input_size, 3};
	for (int i = 0; i < m->nblocks; i++) {
		struct block *b = &m->blocks[i];
		b->kind = i == 0 ? BLOCK_STEM : i == m->nblocks - 1 ? BLOCK_LAST : BLOCK_IR;
		b->stride = strides[i];
		b->cin = shape.c;
		b->in = shape;
		int rc;
		if (b->kind == BLOCK_STEM)
			rc = load_stem(m, st, b, eps, err, errlen);
		else if (b->kind == BLOCK_IR)
			rc = load_ir(m, st, i, b, eps, err, errlen);
		else
			rc = load_last(m, st, i, b, eps, err, errlen);
		if (rc < 0)
			goto fail;
		if (b->kind == BLOCK_LAST && b->stride != 1) {
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
		if (b->kind == BLOCK_STEM)
			b->macs = po * b->cout * 27;
		else if (b->kind == BLOCK_IR)
			b->macs = (b->expand ? (uint64_t)shape.h * shape.w * b->cin * b->hid : 0) +
				  po * b->hid * 9 + po * b->hid * b->cout;
		else
			b->macs = po * b->cin * b->cout;
		choose_bands(b);
		shape = b->out;
	}
	if (load_head(m, st, shape.c, err, errlen) < 0)
		goto fail;
	struct block *last = &m->blocks[m->nblocks - 1];
	last->macs += (uint64_t)m->num_classes * shape.c;
	last->params += (uint64_t)m->num_classes * shape.c + (uint64_t)m->num_classes;
	pn_st_free(st);
	return m;
fail:
	pn_st_free(st);
	pn_model_free(m);
	return NULL;
}

struct pn_model *pn_model_load(const char *path, const struct pn_ops *ops, char *err, size_t errlen)
{
	struct pn_st *st = pn_st_open(path, err, errlen);
	return st ? model_from_st(st, ops, NULL, err, errlen) : NULL;
}

struct pn_model *pn_model_load_buffer(const char *name, const uint8_t *buf, size_t len,
				      const struct pn_ops *ops, char *err, size_t errlen)
{
	return pn_model_load_buffer_qops(name, buf, len, ops, NULL, err, errlen);
}

struct pn_model *pn_model_load_buffer_qops(const char *name, const uint8_t *buf, size_t len,
					   const struct pn_ops *ops, const struct pn_qops *qops,
					   char *err, size_t errlen)
{
	uint8_t *copy = malloc(len ? len : 1);
	if (!copy) {
		snprintf(err, errlen, "%s: out of memory", name);
		return NULL;
	}
	memcpy(copy, buf, len);
	struct pn_st *st = pn_st_from_buffer(name, copy, len, err, errlen);
	return st ? model_from_st(st, ops, qops, err, errlen) : NULL;
}

void pn_model_free(struct pn_model *m)
{
	if (!m)
		return;
	for (int i = 0; i < PN_MAX_BLOCKS; i++) {
		struct block *b = &m->blocks[i];
		free(b->conv_w);
		free(b->conv_b);
		free(b->exp_packed);
		free(b->dw_w);
		free(b->dw_b);
		free(b->proj_packed);
	}
	pn_prep_free(m->prep);
	pn_qnet_free(m->q);
	free(m->head_w);
	free(m->head_b);
	free(m->classes);
	free(m->class_buf);
	free(m);
}

const struct pn_ops *pn_model_ops(const struct pn_model *m)
{
	return m->ops;
}

const char *pn_model_dtype(const struct pn_model *m)
{
	return m->q ? "int8" : "f32";
}

const char *pn_model_isa(const struct pn_model *m)
{
	return m->q ? pn_qnet_ops(m->q)->name : m->ops->name;
}

int pn_model_blocks(const struct pn_model *m)
{
	return m->nblocks;
}

int pn_model_input_size(const struct pn_model *m)
{
	return m->input_size;
}

int pn_model_num_classes(const struct pn_model *m)
{
	return m->num_classes;
}

const char *const *pn_model_classes(const struct pn_model *m)
{
	return m->classes;
}

const float *pn_model_mean(const struct pn_model *m)
{
	return m->mean;
}

const float *pn_model_std(const struct pn_model *m)
{
	return m->std;
}

struct pn_shape pn_model_shape(const struct pn_model *m, int block)
{
	if (block >= m->nblocks)
		return (struct pn_shape){1, 1, m->num_classes};
	return m->blocks[block].in;
}

size_t pn_shape_floats(struct pn_shape s)
{
	return (size_t)s.h * s.w * s.c;
}

int pn_model_act_quant(const struct pn_model *m, int block, float *scale, int32_t *zero_point)
{
	if (!m->q || block < 0 || block >= m->nblocks)
		return -1;
	pn_qnet_act_quant(m->q, block, scale, zero_point);
	return 0;
}

uint64_t pn_model_block_macs(const struct pn_model *m, int block)
{
	return m->blocks[block].macs;
}

uint64_t pn_model_block_params(const struct pn_model *m, int block)
{
	return m->blocks[block].params;
}

void pn_model_preprocess(const struct pn_model *m, const uint8_t *rgb, float *out)
{
	pn_prep_run(m->prep, m->ops, rgb, out);
}

/* ---- plans ---- */

struct pn_plan *pn_plan_new(const struct pn_model *m, int first, int last, int batch, char *err,
			    size_t errlen)
{
	if (first < 0 || last > m->nblocks || first >= last) {
		snprintf(err, errlen, "block range [%d, %d) is not within [0, %d) or is empty",
			 first, last, m->nblocks);
		return NULL;
	}
	if (batch < 1 || batch > 4096) {
		snprintf(err, errlen, "batch size %d is not within 1..4096", batch);
		return NULL;
	}
	struct pn_plan *p = calloc(1, sizeof *p);
	if (!p)
		goto oom;
	p->m = m;
	p->first = first;
	p->last = last;
	p->batch = batch;
	p->in_floats = pn_shape_floats(pn_model_shape(m, first));
	p->out_floats = pn_shape_floats(pn_model_shape(m, last));
	size_t act = 0, exp = 0, dw = 0, feat = 0;
	for (int i = first; i < last && !m->q; i++) {
		const struct block *b = &m->blocks[i];
		if (i + 1 < last && pn_shape_floats(b->out) > act)
			act = pn_shape_floats(b->out);
		if (b->kind == BLOCK_LAST)
			feat = pn_shape_floats(b->out);
		if (b->kind == BLOCK_IR) {
			size_t e = (size_t)b->band_in_rows * b->in.w * b->hid;
			size_t d = (size_t)b->band_rows * b->out.w * b->hid;
			if (b->expand && e > exp)
				exp = e;
			if (d > dw)
				dw = d;
		}
	}
	p->act_floats = act;
	p->in = alloc_floats(p->in_floats * batch);
	p->out = alloc_floats(p->out_floats * batch);
	p->act[0] = alloc_floats(act);
	p->act[1] = alloc_floats(act);
	p->band_exp = alloc_floats(exp);
	p->band_dw = alloc_floats(dw);
	p->feat = alloc_floats(feat);
	p->pooled = alloc_floats((size_t)m->head_c);
	if (m->q && !(p->qr = pn_qrun_new(m->q, first, last))) {
		pn_plan_free(p);
		goto oom;
	}
	if (!p->in || !p->out || !p->act[0] || !p->act[1] || !p->band_exp || !p->band_dw ||
	    !p->feat || !p->pooled) {
		pn_plan_free(p);
		goto oom;
	}
	memset(p->in, 0, p->in_floats * batch * sizeof(float));
	memset(p->out, 0, p->out_floats * batch * sizeof(float));
	return p;
oom:
	snprintf(err, errlen, "out of memory for a plan of blocks [%d, %d), batch %d", first, last,
		 batch);
	return NULL;
}

void pn_plan_free(struct pn_plan *p)
{
	if (!p)
		return;
	free(p->in);
	free(p->out);
	free(p->act[0]);
	free(p->act[1]);
	free(p->band_exp);
	free(p->band_dw);
	free(p->feat);
	free(p->pooled);
	pn_qrun_free(p->qr);
	free(p->qin);
	free(p->qout);
	free(p);
}

int pn_plan_set_i8(struct pn_plan *p, int in, int out, char *err, size_t errlen)
{
	if (!p->qr) {
		snprintf(err, errlen, "a float model's plan has no int8 input or output");
		return -1;
	}
	out = out && p->last < p->m->nblocks;
	free(p->qin);
	free(p->qout);
	p->qin = in ? malloc(p->in_floats * (size_t)p->batch) : NULL;
	p->qout = out ? malloc(p->out_floats * (size_t)p->batch) : NULL;
	if ((in && !p->qin) || (out && !p->qout)) {
		free(p->qin);
		free(p->qout);
		p->qin = p->qout = NULL;
		snprintf(err, errlen, "out of memory for the int8 ends of a plan");
		return -1;
	}
	if (p->qin)
		memset(p->qin, 0, p->in_floats * (size_t)p->batch);
	if (p->qout)
		memset(p->qout, 0, p->out_floats * (size_t)p->batch);
	return 0;
}

int8_t *pn_plan_input_i8(struct pn_plan *p)
{
	return p->qin;
}

const int8_t *pn_plan_output_i8(const struct pn_plan *p)
{
	return p->qout;
}

int pn_plan_first(const struct pn_plan *p)
{
	return p->first;
}

int pn_plan_last(const struct pn_plan *p)
{
	return p->last;
}

int pn_plan_batch(const struct pn_plan *p)
{
	return p->batch;
}

float *pn_plan_input(struct pn_plan *p)
{
	return p->in;
}

const float *pn_plan_output(const struct pn_plan *p)
{
	return p->out;
}

struct pn_shape pn_plan_in_shape(const struct pn_plan *p)
{
	return pn_model_shape(p->m, p->first);
}

struct pn_shape pn_plan_out_shape(const struct pn_plan *p)
{
	return pn_model_shape(p->m, p->last);
}

static void run_ir(const struct pn_ops *ops, const struct block *b, const float *src, float *dst,
		   float *band_exp, float *band_dw)
{
	const int w = b->in.w, h = b->in.h, s = b->stride;
	const int ho = b->out.h, wo = b->out.w, hid = b->hid;
	const size_t exp_row = (size_t)w * hid;
	int b0 = 0, b1 = 0; /* input rows [b0, b1) are expanded in band_exp */

	for (int oy0 = 0; oy0 < ho; oy0 += b->band_rows) {
		int oy1 = oy0 + b->band_rows < ho ? oy0 + b->band_rows : ho;
		struct pn_dw_args dw = {
			.in = src,
			.in_y0 = 0,
			.in_h = h,
			.in_w = w,
			.out = band_dw,
			.out_y0 = oy0,
			.out_y1 = oy1,
			.out_w = wo,
			.c = hid,
			.stride = s,
			.weights = b->dw_w,
			.bias = b->dw_b,
		};
		if (b->expand) {
			int lo = oy0 * s - 1 > 0 ? oy0 * s - 1 : 0;
			int hi = (oy1 - 1) * s + 2 < h ? (oy1 - 1) * s + 2 : h;
			int start = lo;
			if (lo < b1) { /* rows the previous band expanded already */
				memmove(band_exp, band_exp + (size_t)(lo - b0) * exp_row,
					(size_t)(b1 - lo) * exp_row * sizeof(float));
				start = b1;
			}
			if (hi > start)
				ops->pw(src + (size_t)start * w * b->cin,
					band_exp + (size_t)(start - lo) * exp_row, b->exp_packed,
					NULL, (hi - start) * w, b->cin, hid, 1);
			b0 = lo;
			b1 = hi;
			dw.in = band_exp;
			dw.in_y0 = lo;
		}
		ops->dw3x3(&dw);
		ops->pw(band_dw, dst + (size_t)oy0 * wo * b->cout, b->proj_packed,
			b->residual ? src + (size_t)oy0 * w * b->cin : NULL, (oy1 - oy0) * wo, hid,
			b->cout, 0);
	}
}

static void run_block(struct pn_plan *p, int i, const float *src, float *dst)
{
	const struct pn_model *m = p->m;
	const struct pn_ops *ops = m->ops;
	const struct block *b = &m->blocks[i];

	switch (b->kind) {
	case BLOCK_STEM: {
		struct pn_conv_args a = {
			.in = src,
			.in_h = b->in.h,
			.in_w = b->in.w,
			.cin = b->cin,
			.out = dst,
			.out_y0 = 0,
			.out_y1 = b->out.h,
			.out_w = b->out.w,
			.cout = b->cout,
			.stride = b->stride,
			.relu6 = 1,
			.weights = b->conv_w,
			.bias = b->conv_b,
		};
		ops->conv3x3(&a);
		break;
	}
	case BLOCK_IR:
		run_ir(ops, b, src, dst, p->band_exp, p->band_dw);
		break;
	case BLOCK_LAST: {
		/* The head follows in the same step. */
		int hw = b->out.h * b->out.w;
		ops->pw(src, p->feat, b->proj_packed, NULL, hw, b->cin, b->cout, 1);
		ops->avgpool(p->feat, p->pooled, hw, b->cout);
		ops->linear(p->pooled, dst, m->head_w, m->head_b, m->head_c, m->num_classes);
		break;
	}
	}
}

void pn_plan_start(struct pn_plan *p, int n)
{
	p->n = n;
	p->img = 0;
	p->blk = p->first;
}

int pn_plan_step(struct pn_plan *p)
{
	if (p->img >= p->n)
		return 0;
	int j = p->blk - p->first;
	const float *src = j == 0 ? p->in + (size_t)p->img * p->in_floats : p->act[(j + 1) & 1];
	float *dst =
		p->blk == p->last - 1 ? p->out + (size_t)p->img * p->out_floats : p->act[j & 1];
	if (p->qr) { /* int8: floats (or pn_plan_set_i8's integers) at the ends only */
		const int8_t *qin =
			j == 0 && p->qin ? p->qin + (size_t)p->img * p->in_floats : NULL;
		int end = p->blk == p->last - 1;
		int8_t *qout = end && p->qout ? p->qout + (size_t)p->img * p->out_floats : NULL;
		pn_qrun_block_q(p->qr, p->blk, j == 0 && !qin ? src : NULL, qin,
				end && !qout ? dst : NULL, qout);
	} else
		run_block(p, p->blk, src, dst);
	if (++p->blk == p->last) {
		p->blk = p->first;
		p->img++;
	}
	return p->img < p->n;
}

int pn_plan_next_block(const struct pn_plan *p)
{
	return p->blk;
}

void pn_plan_run(struct pn_plan *p, int n)
{
	pn_plan_start(p, n);
	while (pn_plan_step(p))
		;
}

/* ---- profiling ---- */

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

int pn_model_profile(const struct pn_model *m, int batch, int iters, double *block_ms, char *err,
		     size_t errlen)
{
	const int nb = m->nblocks;
	if (iters < 1) {
		snprintf(err, errlen, "profile needs at least one iteration");
		return -1;
	}
	struct pn_plan *p = pn_plan_new(m, 0, nb, batch, err, errlen);
	double *samples = calloc((size_t)(nb + 1) * iters, sizeof *samples);
	double *col = malloc((size_t)iters * sizeof *col);
	if (!p || !samples || !col) {
		if (p)
			snprintf(err, errlen, "out of memory");
		pn_plan_free(p);
		free(samples);
		free(col);
		return -1;
	}
	/* A fixed pseudo-random image: the kernels' time does not depend on it. */
	uint8_t rgb[3 * 32 * 32];
	uint32_t x = 12345;
	for (size_t i = 0; i < sizeof rgb; i++) {
		x = x * 1103515245u + 12345u;
		rgb[i] = (uint8_t)(x >> 24);
	}
	for (int i = 0; i < batch; i++)
		pn_model_preprocess(m, rgb, p->in + (size_t)i * p->in_floats);

	pn_plan_run(p, batch); /* warm-up: caches, page faults */
	for (int it = 0; it < iters; it++) {
		double *row = samples + (size_t)it * (nb + 1);
		double t0 = now_ms();
		pn_plan_start(p, batch);
		for (int more = 1; more;) {
			int blk = p->blk;
			double s0 = now_ms();
			more = pn_plan_step(p);
			row[blk] += now_ms() - s0;
		}
		row[nb] = now_ms() - t0;
	}
	for (int b = 0; b <= nb; b++) {
		for (int it = 0; it < iters; it++)
			col[it] = samples[(size_t)it * (nb + 1) + b];
		qsort(col, (size_t)iters, sizeof *col, cmp_double);
		block_ms[b] =
			iters % 2 ? col[iters / 2] : 0.5 * (col[iters / 2 - 1] + col[iters / 2]);
	}
	pn_plan_free(p);
	free(samples);
	free(col);
	return 0;
}

/* BatchNorm folding, shared by the float loader (model.c) and the int8
 * quantiser (quantize.c) so that both start from the same weights. */
#ifndef PN_FOLD_H
#define PN_FOLD_H

#include <stddef.h>
#include <stdint.h>

#include "safetensors.h"

/* Reads conv weight `wname` (shape dims, [cout][...]) and BatchNorm
 * `bn`.{weight,bias,running_mean,running_var}; returns the folded weight
 * [cout][inner] and bias [cout] (malloc'ed, the caller's), or -1 with a
 * message naming the tensor. */
int pn_fold_conv_bn(const struct pn_st *st, const char *wname, int ndim, const int64_t *dims,
		    const char *bn, float eps, float **w_out, float **b_out, char *err,
		    size_t errlen);

#endif

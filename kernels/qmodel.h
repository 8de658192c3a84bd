/* The int8 MobileNetV2 (files written by `pipenet quantize`, see
 * quantize.h for their layout). model.c loads such a file into a struct
 * pn_model and runs its plans through these functions, so the plan API
 * (float in, float out) is the same for float and int8 models: the input
 * of a range is quantised with its first block's input parameters, and
 * its output dequantised (or, after the last block, the logits), which
 * makes [0, s) then [s, n) equal [0, n) bit for bit (quant.h). */
#ifndef PN_QMODEL_H
#define PN_QMODEL_H

#include <stddef.h>
#include <stdint.h>

#include "model.h"
#include "qops.h"
#include "safetensors.h"

/* The value of metadata `format` in an int8 file. */
#define PN_QMODEL_FORMAT "mobilenetv2-cifar10-int8/1"
/* The value of metadata `rounding`: what quant.h computes. */
#define PN_QMODEL_ROUNDING "half-away-from-zero"

struct pn_qnet;
struct pn_qrun;

/* Geometry and counts of one block, for model.c's tables. */
struct pn_qblock_info {
	struct pn_shape in, out;
	uint64_t macs, params;
};

/* Reads the int8 network from st (metadata already read by model.c:
 * `nblocks` strides, input size, classes). NULL with a message naming the
 * file and the tensor at fault. */
struct pn_qnet *pn_qnet_load(const struct pn_st *st, const struct pn_qops *ops, int nblocks,
			     const int *strides, int input_size, int num_classes, char *err,
			     size_t errlen);
void pn_qnet_free(struct pn_qnet *q);
/* The int8 kernel table the network was packed for. */
const struct pn_qops *pn_qnet_ops(const struct pn_qnet *q);
void pn_qnet_block_info(const struct pn_qnet *q, int block, struct pn_qblock_info *info);
/* The quantisation of block `block`'s input (0 <= block < nblocks): the
 * preprocessed image for block 0, else the output of block - 1. */
void pn_qnet_act_quant(const struct pn_qnet *q, int block, float *scale, int32_t *zero_point);

/* Scratch for running blocks [first, last): NULL when out of memory. */
struct pn_qrun *pn_qrun_new(const struct pn_qnet *q, int first, int last);
void pn_qrun_free(struct pn_qrun *r);
/* Runs block i of one image: from `in` (floats of block i's input shape)
 * when non-NULL, else from the block run before it; writes `out` when
 * non-NULL (block i's output dequantised, or the logits after the last
 * block). */
void pn_qrun_block(struct pn_qrun *r, int i, const float *in, float *out);
/* The same with integers at either end: from `qin` (block i's input
 * quantised) when non-NULL, and block i's output integers copied to
 * `qout` when non-NULL (not for the last block, whose output is logits). */
void pn_qrun_block_q(struct pn_qrun *r, int i, const float *in, const int8_t *qin, float *out,
		     int8_t *qout);

#endif

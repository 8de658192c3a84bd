/* MobileNetV2 as a list of blocks, and plans that run a range of them.
 *
 * Block i is torchvision's features.i, i < pn_model_blocks(m) (19). The
 * head (global average pool + linear) always runs right after the last
 * block, so a range [first, last) with last == pn_model_blocks(m) ends in
 * logits and the split points are 1 .. blocks - 1, as in DESIGN.md. The
 * input of block 0 is the preprocessed image, NHWC float32.
 */
#ifndef PN_MODEL_H
#define PN_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "ops.h"

struct pn_model;
struct pn_qops;
struct pn_plan;

/* An activation shape per image; classes at the end of the head. */
struct pn_shape {
	int h, w, c;
};

/* Loads a safetensors file and packs its weights for `ops` (BatchNorm
 * folded in). Returns NULL with a message naming the file and the tensor
 * or key at fault. */
struct pn_model *pn_model_load(const char *path, const struct pn_ops *ops, char *err,
			       size_t errlen);
/* The same from a file image in memory (copied); `name` is for messages. */
struct pn_model *pn_model_load_buffer(const char *name, const uint8_t *buf, size_t len,
				      const struct pn_ops *ops, char *err, size_t errlen);
/* The same with the int8 table `qops` for an int8 model (NULL: the best
 * of `ops`'s instruction set, as pn_model_load chooses); for tests that
 * run every variant. */
struct pn_model *pn_model_load_buffer_qops(const char *name, const uint8_t *buf, size_t len,
					   const struct pn_ops *ops, const struct pn_qops *qops,
					   char *err, size_t errlen);
void pn_model_free(struct pn_model *m);

/* The float kernel table (preprocessing; the blocks of a float model). */
const struct pn_ops *pn_model_ops(const struct pn_model *m);
/* "f32", or "int8" for a file written by `pipenet quantize` (qmodel.h),
 * whose blocks run on the int8 kernels; plans take and give floats
 * either way. */
const char *pn_model_dtype(const struct pn_model *m);
/* The kernel variant that runs the blocks: the float table's name, or
 * for an int8 model the int8 table's (e.g. "avx512-vnni"). */
const char *pn_model_isa(const struct pn_model *m);
/* Number of feature blocks (19); valid ranges are 0 <= first < last <= blocks. */
int pn_model_blocks(const struct pn_model *m);
int pn_model_input_size(const struct pn_model *m);
int pn_model_num_classes(const struct pn_model *m);
const char *const *pn_model_classes(const struct pn_model *m);
const float *pn_model_mean(const struct pn_model *m); /* [3] */
const float *pn_model_std(const struct pn_model *m); /* [3] */
/* Shape of the input of block i, 0 <= i <= blocks; shape(blocks) is the
 * logits, {1, 1, classes}. */
struct pn_shape pn_model_shape(const struct pn_model *m, int block);
size_t pn_shape_floats(struct pn_shape s);
/* For an int8 model, the quantisation of the input of block i (0 <= i <
 * blocks; the output of block i - 1 for i > 0): a plan [.., i) gives
 * floats that quantise back to the exact integers with these, and a plan
 * [i, ..) quantises its input with them (quant.h:
 * q = clamp(zp + roundf(x / scale)), x = (q - zp) * scale). Returns 0, or
 * -1 for a float model or i outside [0, blocks) (the logits stay float). */
int pn_model_act_quant(const struct pn_model *m, int block, float *scale, int32_t *zero_point);
/* Multiply-accumulates per image and trainable parameters (as PyTorch
 * counts them: conv weights, BN weight and bias, linear) of block i; the
 * last block includes the head. */
uint64_t pn_model_block_macs(const struct pn_model *m, int block);
uint64_t pn_model_block_params(const struct pn_model *m, int block);

/* A plan runs blocks [first, last) on up to `batch` images. It owns its
 * input and output buffers and every scratch buffer; running allocates
 * nothing. */
struct pn_plan *pn_plan_new(const struct pn_model *m, int first, int last, int batch, char *err,
			    size_t errlen);
void pn_plan_free(struct pn_plan *p);
int pn_plan_first(const struct pn_plan *p);
int pn_plan_last(const struct pn_plan *p);
int pn_plan_batch(const struct pn_plan *p);
/* Input: [batch][shape(first)] floats; output: [batch][shape(last)]. */
float *pn_plan_input(struct pn_plan *p);
const float *pn_plan_output(const struct pn_plan *p);
struct pn_shape pn_plan_in_shape(const struct pn_plan *p);
struct pn_shape pn_plan_out_shape(const struct pn_plan *p);

/* An int8 model's plan may take its input (`in`) and give its output
 * (`out`; not when last is the block count: logits stay float) as the
 * integers themselves, quantised with pn_model_act_quant at first and
 * last: no conversion when int8 travels between int8 stages. From then on
 * it reads pn_plan_input_i8 ([batch][shape(first)] int8) instead of
 * pn_plan_input and writes pn_plan_output_i8 instead of pn_plan_output
 * (the other ends stay float). Allocates; 0, or -1 with err (a float
 * model). The buffers are NULL when not asked for. */
int pn_plan_set_i8(struct pn_plan *p, int in, int out, char *err, size_t errlen);
int8_t *pn_plan_input_i8(struct pn_plan *p);
const int8_t *pn_plan_output_i8(const struct pn_plan *p);

/* Runs as a resumable job: start with n <= batch images in the input,
 * then call step until it returns 0. Each step computes one block of one
 * image (a few ms at most), so an event loop can interleave other work. */
void pn_plan_start(struct pn_plan *p, int n);
int pn_plan_step(struct pn_plan *p);
/* The block the next step will compute (valid while steps remain). */
int pn_plan_next_block(const struct pn_plan *p);
/* Start and step to the end. */
void pn_plan_run(struct pn_plan *p, int n);

/* Times every block on this CPU for a batch: one warm-up run, then the
 * median over `iters` runs, per block (block_ms[0..blocks)) and in total
 * (block_ms[blocks]), in ms per batch, on a fixed synthetic image. Takes
 * about (iters + 1) x the model's time; 0, or -1 with err. */
int pn_model_profile(const struct pn_model *m, int batch, int iters, double *block_ms, char *err,
		     size_t errlen);

/* Preprocessing per MODEL-CARD.md: CIFAR record (planar RGB 32x32 bytes)
 * -> normalised, resized to input_size, NHWC floats of shape(0). */
void pn_model_preprocess(const struct pn_model *m, const uint8_t *rgb, float *out);

#endif

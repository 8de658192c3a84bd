/* Post-training int8 quantisation of a float MobileNetV2 file.
 *
 * Weights: BatchNorm folded (fold.h, as the float loader does), then per
 * output channel symmetric int8, scale max|w| / 127, values rounded half
 * away from zero and clamped to [-127, 127] (never -128). Biases int32 in
 * the unit in_scale * w_scale[c].
 *
 * Activations: per tensor, asymmetric int8, range [lo, hi] (always
 * containing 0), scale (hi - lo) / 255, zero point round(-128 - lo /
 * scale). Quantisation points: the preprocessed image, every conv's
 * output (after its ReLU6, which becomes the clamp of the
 * requantisation), every residual add's output, the pooled features.
 * Ranges are calibrated by running the float model (the scalar reference
 * kernels, so the result is the same on every machine) over the given
 * images, two ways: "minmax" (the whole range seen) and "percentile"
 * (the 0.005 % and 99.995 % points of a 4096-bin histogram of each
 * tensor, so 99.99 % of the values lie inside). Each candidate is then
 * run as an int8 model over the same images, and the more accurate one
 * (ties: the one agreeing more with the float model's top-1, then
 * minmax) is written. Deterministic: the same model and images give the
 * same bytes.
 *
 * The file: safetensors, metadata of the float model plus `format`
 * (PN_QMODEL_FORMAT), `float_format` (the float model's), `rounding`
 * (PN_QMODEL_ROUNDING), `calibration` (the method), `calibration_images`,
 * `calibration_data`, `calibration_top1` (each method's top-1 on the
 * calibration images), `calibration_float_top1`. Tensors, for a conv whose
 * float weight is P.weight (e.g. features.0.0.weight, features.3.conv.2.weight):
 *   P.weight           I8  the float weight's shape, BN folded
 *   P.weight_scale     F32 [cout]
 *   P.bias             I32 [cout]
 *   P.out_scale        F32 [1], P.out_zero_point I32 [1]: its output
 * and input.scale, input.zero_point (the preprocessed image);
 * features.N.out_scale, features.N.out_zero_point (the output of a
 * residual block N, after the add); pool.out_scale, pool.out_zero_point;
 * classifier.1.weight (I8), classifier.1.weight_scale, classifier.1.bias.
 */
#ifndef PN_QUANTIZE_H
#define PN_QUANTIZE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* n CIFAR records' images (planar RGB, 3072 bytes each) and labels (-1
 * when unknown); `data_name` goes into the metadata. Progress goes to log
 * when non-NULL. Returns the file image (malloc'ed, *len bytes), or NULL
 * with a message. */
uint8_t *pn_quantize(const char *model_path, const uint8_t *images, const int *labels, int n,
		     const char *data_name, FILE *log, size_t *len, char *err, size_t errlen);

#endif

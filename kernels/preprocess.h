/* Image preprocessing exactly as the model card states: pixel / 255,
 * (x - mean[c]) / std[c], then a bilinear resize with half-pixel centres
 * (PyTorch F.interpolate(mode="bilinear", align_corners=False), no
 * antialias) when the model's input size differs from the source's. */
#ifndef PN_PREPROCESS_H
#define PN_PREPROCESS_H

#include <stdint.h>

/* rgb: planar 3 x src x src bytes; out: NHWC dst x dst x 3 floats. */
void pn_preprocess(const uint8_t *rgb, int src, int dst, const float mean[3], const float std[3],
		   float *out);

#endif

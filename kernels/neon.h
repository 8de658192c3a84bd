/* The ARM NEON kernels behind pn_ops_neon, for aarch64 and for 32-bit ARMv7
 * with NEON and VFPv4. On 32-bit ARM these files alone are compiled with
 * NEON flags, so their functions may be called only after the table's
 * available() said yes. */
#ifndef PN_NEON_H
#define PN_NEON_H

#include <arm_neon.h>

#include "ops.h"

void pn_conv3x3_neon(const struct pn_conv_args *a);
void pn_dw3x3_neon(const struct pn_dw_args *a);
size_t pn_pw_packed_floats_neon(int k, int n);
void pn_pw_pack_neon(const float *w, const float *bias, int k, int n, float *packed);
void pn_pw_neon(const float *in, float *out, const float *packed, const float *residual, int m,
		int k, int n, int relu6);
void pn_avgpool_neon(const float *in, float *out, int hw, int c);
void pn_linear_neon(const float *in, float *out, const float *w, const float *bias, int k,
		    int classes);
void pn_lerp_neon(const float *a, const float *b, float wa, float wb, float *out, size_t n);
void pn_f32_to_f16_neon(const float *in, uint16_t *out, size_t n);
void pn_f16_to_f32_neon(const uint16_t *in, float *out, size_t n);

/* min(max(x, 0), 6), lane by lane. */
static inline float32x4_t pn_neon_relu6(float32x4_t x)
{
	return vminq_f32(vmaxq_f32(x, vdupq_n_f32(0.0f)), vdupq_n_f32(6.0f));
}

#endif

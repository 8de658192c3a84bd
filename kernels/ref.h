/* The scalar reference kernels: plain C, the fallback on every CPU and
 * the oracle the other variants are tested against. */
#ifndef PN_REF_H
#define PN_REF_H

#include "ops.h"

void pn_conv3x3_ref(const struct pn_conv_args *a);
void pn_dw3x3_ref(const struct pn_dw_args *a);
size_t pn_pw_packed_floats_ref(int k, int n);
void pn_pw_pack_ref(const float *w, const float *bias, int k, int n, float *packed);
void pn_pw_ref(const float *in, float *out, const float *packed, const float *residual, int m,
	       int k, int n, int relu6);
void pn_avgpool_ref(const float *in, float *out, int hw, int c);
void pn_linear_ref(const float *in, float *out, const float *w, const float *bias, int k,
		   int classes);
void pn_lerp_ref(const float *a, const float *b, float wa, float wb, float *out, size_t n);
void pn_f32_to_f16_ref(const float *in, uint16_t *out, size_t n);
void pn_f16_to_f32_ref(const uint16_t *in, float *out, size_t n);

/* The reference's pointwise, depthwise and stem, as fast as the CPU allows
 * without changing a bit: built again for a vector ISA from the same C
 * (kernels/ref_avx2.c), or the plain reference. For work that must give
 * the same bytes on every machine (quantize.c's calibration). */
struct pn_ref_vec {
	const char *name;
	void (*pw)(const float *in, float *out, const float *packed, const float *residual, int m,
		   int k, int n, int relu6);
	void (*dw3x3)(const struct pn_dw_args *a);
	void (*conv3x3)(const struct pn_conv_args *a);
};
const struct pn_ref_vec *pn_ref_vec_select(void);
#ifdef PN_HAVE_X86
extern const struct pn_ref_vec pn_ref_vec_avx2;
#endif

static inline float pn_relu6(float x)
{
	return x < 0.0f ? 0.0f : (x > 6.0f ? 6.0f : x);
}

#endif

/* The x86-64 kernels behind pn_ops_avx2 and pn_ops_avx512. Each file of a
 * variant is compiled with that variant's flags only, so these functions
 * may be called only after the table's available() said yes. */
#ifndef PN_X86_H
#define PN_X86_H

#include "ops.h"

void pn_conv3x3_avx2(const struct pn_conv_args *a);
void pn_dw3x3_avx2(const struct pn_dw_args *a);
size_t pn_pw_packed_floats_avx2(int k, int n);
void pn_pw_pack_avx2(const float *w, const float *bias, int k, int n, float *packed);
void pn_pw_avx2(const float *in, float *out, const float *packed, const float *residual, int m,
		int k, int n, int relu6);
void pn_avgpool_avx2(const float *in, float *out, int hw, int c);
void pn_linear_avx2(const float *in, float *out, const float *w, const float *bias, int k,
		    int classes);
void pn_lerp_avx2(const float *a, const float *b, float wa, float wb, float *out, size_t n);
void pn_f32_to_f16_avx2(const float *in, uint16_t *out, size_t n);
void pn_f16_to_f32_avx2(const uint16_t *in, float *out, size_t n);

void pn_conv3x3_avx512(const struct pn_conv_args *a);
void pn_dw3x3_avx512(const struct pn_dw_args *a);
size_t pn_pw_packed_floats_avx512(int k, int n);
void pn_pw_pack_avx512(const float *w, const float *bias, int k, int n, float *packed);
void pn_pw_avx512(const float *in, float *out, const float *packed, const float *residual, int m,
		  int k, int n, int relu6);
void pn_avgpool_avx512(const float *in, float *out, int hw, int c);
void pn_linear_avx512(const float *in, float *out, const float *w, const float *bias, int k,
		      int classes);
void pn_lerp_avx512(const float *a, const float *b, float wa, float wb, float *out, size_t n);
void pn_f32_to_f16_avx512(const float *in, uint16_t *out, size_t n);
void pn_f16_to_f32_avx512(const uint16_t *in, float *out, size_t n);

#endif

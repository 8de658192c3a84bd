/* The scalar reference's pointwise, depthwise and stem compiled again with AVX2
 * and the loop vectoriser (kernels/local.mk; no -mfma, and -ffp-contract=off
 * as everywhere): the same C, so every output element gets the same IEEE
 * operations in the same order and the same bits, only eight at a time.
 * For work that must give the same bytes on every machine and still be
 * quick: the calibration in quantize.c. tests/test-kernels checks it. */
#if defined(__GNUC__) && !defined(__clang__)
/* -O2 vectorises only loops that need no remainder; clang's -O2 does these. */
#pragma GCC optimize("tree-vectorize", "vect-cost-model=dynamic")
#endif
#define pn_pw_packed_floats_ref pn_pw_packed_floats_ref_avx2
#define pn_pw_pack_ref pn_pw_pack_ref_avx2
#define pn_pw_ref pn_pw_ref_avx2
#define pn_dw3x3_ref pn_dw3x3_ref_avx2
#define pn_conv3x3_ref pn_conv3x3_ref_avx2
#include "pointwise_ref.c"
#include "depthwise_ref.c"
#include "conv_ref.c"

const struct pn_ref_vec pn_ref_vec_avx2 = {"avx2", pn_pw_ref_avx2, pn_dw3x3_ref_avx2,
					   pn_conv3x3_ref_avx2};

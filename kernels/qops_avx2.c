/* The AVX2 int8 table: the same functions as pn_qops_scalar. Pointwise,
 * depthwise, stem (as a pointwise product), add, quantize and dequantize
 * are vectorised; the pool and classifier (a few thousand values per
 * image) stay scalar. */
#include "qx86.h"

static int available(void)
{
	__builtin_cpu_init();
	return __builtin_cpu_supports("avx2");
}

const struct pn_qops pn_qops_avx2 = {
	.name = "avx2",
	.isa = "avx2",
	.available = available,
	.conv3x3 = pn_qconv3x3_avx2,
	.dw3x3 = pn_qdw3x3_avx2,
	.pw_packed_bytes = pn_qpw_packed_bytes_avx2,
	.pw_pack = pn_qpw_pack_avx2,
	.pw = pn_qpw_avx2,
	.add = pn_qadd_avx2,
	.avgpool = pn_qavgpool_ref,
	.linear = pn_qlinear_ref,
	.quantize = pn_quantize_avx2,
	.dequantize = pn_dequantize_avx2,
	.peak_run = pn_qpeak_avx2,
	.peak_insn = "vpmaddwd ymm + vpaddd",
	.peak_macs = 16,
};

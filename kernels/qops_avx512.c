/* The AVX-512 int8 tables: pn_qops_avx512vnni (pointwise, stem and
 * depthwise by vpdpbusd; a depthwise tail of 32 channels or fewer by
 * vpdpwssd) and pn_qops_avx512 (by vpmaddwd),
 * sharing the add, pool, classifier, quantize and dequantize kernels;
 * both compute what pn_qops_scalar computes. Both count as
 * PIPENET_ISA=avx512. */
#include "qx86.h"

/* AVX-512F, BW and VL (byte masks), with the OS saving the zmm state. */
static int available(void)
{
	__builtin_cpu_init();
	return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
	       __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx2");
}

static int vnni_available(void)
{
	return available() && __builtin_cpu_supports("avx512vnni");
}

const struct pn_qops pn_qops_avx512vnni = {
	.name = "avx512-vnni",
	.isa = "avx512",
	.available = vnni_available,
	.conv3x3 = pn_qconv3x3_vnni,
	.dw3x3 = pn_qdw3x3_vnni,
	.pw_packed_bytes = pn_qpw_packed_bytes_vnni,
	.pw_pack = pn_qpw_pack_vnni,
	.pw = pn_qpw_vnni,
	.add = pn_qadd_avx512,
	.avgpool = pn_qavgpool_avx512,
	.linear = pn_qlinear_avx512,
	.quantize = pn_quantize_avx512,
	.dequantize = pn_dequantize_avx512,
	.peak_run = pn_qpeak_vnni,
	.peak_insn = "vpdpbusd zmm",
	.peak_macs = 64,
};

const struct pn_qops pn_qops_avx512 = {
	.name = "avx512",
	.isa = "avx512",
	.available = available,
	.conv3x3 = pn_qconv3x3_avx512,
	.dw3x3 = pn_qdw3x3_avx512,
	.pw_packed_bytes = pn_qpw_packed_bytes_avx512,
	.pw_pack = pn_qpw_pack_avx512,
	.pw = pn_qpw_avx512,
	.add = pn_qadd_avx512,
	.avgpool = pn_qavgpool_avx512,
	.linear = pn_qlinear_avx512,
	.quantize = pn_quantize_avx512,
	.dequantize = pn_dequantize_avx512,
	.peak_run = pn_qpeak_avx512,
	.peak_insn = "vpmaddwd zmm + vpaddd",
	.peak_macs = 32,
};

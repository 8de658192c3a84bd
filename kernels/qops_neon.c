/* The NEON int8 table: the same functions as pn_qops_scalar, offered when
 * the float NEON table is (ops_neon.c: always on aarch64, by AT_HWCAP on
 * 32-bit ARM). Every kernel is vectorised. */
#include "neon.h"
#include "qneon.h"

static int available(void)
{
	return pn_ops_neon.available();
}

const struct pn_qops pn_qops_neon = {
	.name = "neon",
	.isa = "neon",
	.available = available,
	.conv3x3 = pn_qconv3x3_neon,
	.dw3x3 = pn_qdw3x3_neon,
	.pw_packed_bytes = pn_qpw_packed_bytes_neon,
	.pw_pack = pn_qpw_pack_neon,
	.pw = pn_qpw_neon,
	.add = pn_qadd_neon,
	.avgpool = pn_qavgpool_neon,
	.linear = pn_qlinear_neon,
	.quantize = pn_quantize_neon,
	.dequantize = pn_dequantize_neon,
};

#ifdef PN_HAVE_NEON_DOT
#include <sys/auxv.h>

#ifndef HWCAP_ASIMDDP
#define HWCAP_ASIMDDP (1ul << 20)
#endif

/* ARMv8.2 SDOT (Cortex-A76, Raspberry Pi 5), as the kernel reports it. */
static int dot_available(void)
{
	return (getauxval(AT_HWCAP) & HWCAP_ASIMDDP) != 0;
}

/* Pointwise, stem and depthwise by SDOT; the rest is the table above. */
const struct pn_qops pn_qops_neon_dot = {
	.name = "neon-dot",
	.isa = "neon",
	.available = dot_available,
	.conv3x3 = pn_qconv3x3_neondot,
	.dw3x3 = pn_qdw3x3_neondot,
	.pw_packed_bytes = pn_qpw_packed_bytes_neondot,
	.pw_pack = pn_qpw_pack_neondot,
	.pw = pn_qpw_neondot,
	.add = pn_qadd_neon,
	.avgpool = pn_qavgpool_neon,
	.linear = pn_qlinear_neon,
	.quantize = pn_quantize_neon,
	.dequantize = pn_dequantize_neon,
	.peak_run = pn_qpeak_neondot,
	.peak_insn = "sdot",
	.peak_macs = 16,
};
#endif

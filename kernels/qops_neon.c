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

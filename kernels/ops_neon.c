/* The NEON table: the same functions as pn_ops_scalar (ops_ref.c). Every
 * aarch64 CPU has NEON; on 32-bit ARM the kernel reports it through
 * AT_HWCAP, and Raspberry Pi OS armhf does not assume it, so the table is
 * offered only when NEON and VFPv4 (fused multiply-add) are both there. */
#include "neon.h"

#ifdef __aarch64__
static int neon_available(void)
{
	return 1;
}
#else
#include <sys/auxv.h>

#ifndef HWCAP_ARM_NEON
#define HWCAP_ARM_NEON (1ul << 12)
#endif
#ifndef HWCAP_ARM_VFPv4
#define HWCAP_ARM_VFPv4 (1ul << 16)
#endif

static int neon_available(void)
{
	unsigned long hwcap = getauxval(AT_HWCAP);
	return (hwcap & HWCAP_ARM_NEON) && (hwcap & HWCAP_ARM_VFPv4);
}
#endif

const struct pn_ops pn_ops_neon = {
	.name = "neon",
	.available = neon_available,
	.conv3x3 = pn_conv3x3_neon,
	.dw3x3 = pn_dw3x3_neon,
	.pw_packed_floats = pn_pw_packed_floats_neon,
	.pw_pack = pn_pw_pack_neon,
	.pw = pn_pw_neon,
	.avgpool = pn_avgpool_neon,
	.linear = pn_linear_neon,
	.lerp = pn_lerp_neon,
	.f32_to_f16 = pn_f32_to_f16_neon,
	.f16_to_f32 = pn_f16_to_f32_neon,
};

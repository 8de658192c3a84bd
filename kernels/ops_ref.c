/* The scalar table: runs everywhere. */
#include "ref.h"

static int always(void)
{
	return 1;
}

const struct pn_ops pn_ops_scalar = {
	.name = "scalar",
	.available = always,
	.conv3x3 = pn_conv3x3_ref,
	.dw3x3 = pn_dw3x3_ref,
	.pw_packed_floats = pn_pw_packed_floats_ref,
	.pw_pack = pn_pw_pack_ref,
	.pw = pn_pw_ref,
	.avgpool = pn_avgpool_ref,
	.linear = pn_linear_ref,
	.lerp = pn_lerp_ref,
	.f32_to_f16 = pn_f32_to_f16_ref,
	.f16_to_f32 = pn_f16_to_f32_ref,
};

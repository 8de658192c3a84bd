/* The avx512 table: AVX-512F kernels (with AVX2, FMA and F16C) that
 * compute what the scalar reference (ops_ref.c) computes; available when
 * the CPU and the OS support those instructions and the zmm state. */
#include <cpuid.h>

#include "x86.h"

/* __builtin_cpu_supports also checks that the OS saves the vector state;
 * F16C, which not every compiler names there, comes from CPUID leaf 1. */
static int available(void)
{
	unsigned int eax, ebx, ecx, edx;
	__builtin_cpu_init();
	return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx2") &&
	       __builtin_cpu_supports("fma") && __get_cpuid(1, &eax, &ebx, &ecx, &edx) &&
	       (ecx & bit_F16C);
}

const struct pn_ops pn_ops_avx512 = {
	.name = "avx512",
	.available = available,
	.conv3x3 = pn_conv3x3_avx512,
	.dw3x3 = pn_dw3x3_avx512,
	.pw_packed_floats = pn_pw_packed_floats_avx512,
	.pw_pack = pn_pw_pack_avx512,
	.pw = pn_pw_avx512,
	.avgpool = pn_avgpool_avx512,
	.linear = pn_linear_avx512,
	.lerp = pn_lerp_avx512,
	.f32_to_f16 = pn_f32_to_f16_avx512,
	.f16_to_f32 = pn_f16_to_f32_avx512,
};

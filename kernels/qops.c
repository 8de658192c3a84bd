/* Choosing the int8 kernel table: the float table's choice (the CPU's
 * best, or PIPENET_ISA) names the instruction set; within it the best
 * variant this CPU runs (AVX-512 with VNNI before plain AVX-512,
 * NEON with the dot product before plain NEON). */
#include <string.h>
#include <time.h>

#include "qops.h"

const struct pn_qops *const pn_qops_all[] = {
#ifdef PN_HAVE_X86
	&pn_qops_avx512vnni, &pn_qops_avx512,
	&pn_qops_avx2,
#endif
#ifdef PN_HAVE_NEON_DOT
	&pn_qops_neon_dot,
#endif
#ifdef PN_HAVE_NEON
	&pn_qops_neon,
#endif
	&pn_qops_scalar,     NULL,
};

const struct pn_qops *pn_qops_select(const char *isa)
{
	for (int i = 0; pn_qops_all[i]; i++)
		if (strcmp(pn_qops_all[i]->isa, isa) == 0 && pn_qops_all[i]->available())
			return pn_qops_all[i];
	return &pn_qops_scalar;
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

double pn_qpeak(const struct pn_qops *ops)
{
	if (!ops->peak_run || !ops->available())
		return 0;
	const long n = 1 << 16;
	double best = 0;
	ops->peak_run(n);
	for (int r = 0; r < 9; r++) {
		double t0 = now_s();
		ops->peak_run(n);
		double t = now_s() - t0;
		if (t > 0 && (double)n * 16 * ops->peak_macs / t > best)
			best = (double)n * 16 * ops->peak_macs / t;
	}
	return best;
}

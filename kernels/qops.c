/* Choosing the int8 kernel table: the float table's choice (the CPU's
 * best, or PIPENET_ISA) names the instruction set; within it the best
 * variant this CPU runs (AVX-512 with VNNI before plain AVX-512). */
#include <string.h>

#include "qops.h"

const struct pn_qops *const pn_qops_all[] = {
#ifdef PN_HAVE_X86
	&pn_qops_avx512vnni, &pn_qops_avx512,
	&pn_qops_avx2,
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

/* Choosing the kernel table: the best the CPU runs, or the one named by
 * PIPENET_ISA so a human (or the test suite) can force a variant. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ops.h"
#include "ref.h"

const struct pn_ops *const pn_ops_all[] = {
#ifdef PN_HAVE_X86
	&pn_ops_avx512, &pn_ops_avx2,
#endif
#ifdef PN_HAVE_NEON
	&pn_ops_neon,
#endif
	&pn_ops_scalar, NULL,
};

const struct pn_ops *pn_ops_find(const char *name)
{
	for (int i = 0; pn_ops_all[i]; i++)
		if (strcmp(pn_ops_all[i]->name, name) == 0)
			return pn_ops_all[i];
	return NULL;
}

const struct pn_ops *pn_ops_select(char *err, size_t errlen)
{
	const char *want = getenv("PIPENET_ISA");
	if (want && *want) {
		const struct pn_ops *ops = pn_ops_find(want);
		if (!ops) {
			snprintf(err, errlen,
				 "PIPENET_ISA=%s: no such kernel variant in this build", want);
			return NULL;
		}
		if (!ops->available()) {
			snprintf(err, errlen, "PIPENET_ISA=%s: this CPU cannot run it", want);
			return NULL;
		}
		return ops;
	}
	for (int i = 0; pn_ops_all[i]; i++)
		if (pn_ops_all[i]->available())
			return pn_ops_all[i];
	return &pn_ops_scalar;
}

const struct pn_ref_vec *pn_ref_vec_select(void)
{
	static const struct pn_ref_vec plain = {"scalar", pn_pw_ref, pn_dw3x3_ref, pn_conv3x3_ref};
#ifdef PN_HAVE_X86
	const char *want = getenv("PIPENET_ISA"); /* "scalar": the plain one, to compare */
	if (!(want && strcmp(want, "scalar") == 0) && pn_ops_avx2.available())
		return &pn_ref_vec_avx2;
#endif
	return &plain;
}

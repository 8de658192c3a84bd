/* Q31 multipliers (quant.h). */
#include <math.h>

#include "quant.h"

int pn_q_multiplier(double m, int32_t *mult, int *exp)
{
	if (!isfinite(m) || !(m > 0.0))
		return -1;
	int e;
	double f = frexp(m, &e); /* m = f * 2^e, 0.5 <= f < 1: exact */
	int64_t q = llround(f * 2147483648.0);
	if (q == INT64_C(2147483648)) {
		q /= 2;
		e++;
	}
	if (e < PN_Q_EXP_MIN || e > PN_Q_EXP_MAX)
		return -1;
	*mult = (int32_t)q;
	*exp = e;
	return 0;
}

/* The int8 depthwise 3x3 with AVX-512 VNNI, equal to pn_qdw3x3_ref:
 * qdw_avx512.h with vpdpwssd, the pair product and the add in one. */
#include "qx86.h"
#define PN_QDW_DOT(acc, x, w) _mm512_dpwssd_epi32(acc, x, w)
#include "qdw_avx512.h"

void pn_qdw3x3_vnni(const struct pn_qdw_args *a)
{
	pn_qdw3x3_avx512_body(a);
}

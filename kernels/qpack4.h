/* Pointwise weights for 4-byte dot products (vpdpbusd, SDOT), shared by
 * the x86 and NEON tables: [n / nr][k / 4][nr][4], both rounded up with
 * zeros, then int32 colsum[n rounded up to nr], each column's weight sum
 * (for the activations' zero point). Plain C. */
#ifndef PN_QPACK4_H
#define PN_QPACK4_H

#include <stdint.h>
#include <string.h>

static inline size_t pn_qpack4_bytes(int k, int n, int nr)
{
	size_t nb = (size_t)(n + nr - 1) / nr;
	return nb * (size_t)((k + 3) / 4) * nr * 4 + nb * nr * sizeof(int32_t);
}

static inline void pn_qpack4(const int8_t *w, int k, int n, int nr, int8_t *packed)
{
	const int kq = (k + 3) / 4, nb = (n + nr - 1) / nr;
	int32_t *colsum = (int32_t *)(void *)(packed + (size_t)nb * kq * nr * 4);
	memset(packed, 0, pn_qpack4_bytes(k, n, nr));
	for (int j = 0; j < n; j++) {
		int32_t s = 0;
		for (int i = 0; i < k; i++) {
			int8_t v = w[(size_t)j * k + i];
			packed[((size_t)(j / nr) * kq + i / 4) * nr * 4 + (j % nr) * 4 + i % 4] = v;
			s += v;
		}
		colsum[j] = s;
	}
}

#endif

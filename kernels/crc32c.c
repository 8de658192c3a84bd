/* See crc32c.h: the reference, the CPU tests and the choice. */
#include <stdlib.h>
#include <string.h>

#include "crc32c.h"

#if defined(PN_HAVE_ARM_CRC)
#include <sys/auxv.h>
#endif

static uint32_t crc_table[8][256];
static int crc_ready;

static void crc_init(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;
		for (int k = 0; k < 8; k++)
			c = c & 1 ? (c >> 1) ^ 0x82f63b78u : c >> 1;
		crc_table[0][i] = c;
	}
	for (int t = 1; t < 8; t++)
		for (int i = 0; i < 256; i++)
			crc_table[t][i] = (crc_table[t - 1][i] >> 8) ^
					  crc_table[0][crc_table[t - 1][i] & 0xff];
	crc_ready = 1;
}

/* Eight bytes per step through eight tables. */
uint32_t pn_crc32c_ref(uint32_t crc, const void *buf, size_t len)
{
	const uint8_t *p = buf;
	if (!crc_ready)
		crc_init();
	crc = ~crc;
	while (len >= 8) {
		uint32_t lo = crc ^ ((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
				     (uint32_t)p[3] << 24);
		uint32_t hi = (uint32_t)p[4] | (uint32_t)p[5] << 8 | (uint32_t)p[6] << 16 |
			      (uint32_t)p[7] << 24;
		crc = crc_table[7][lo & 0xff] ^ crc_table[6][(lo >> 8) & 0xff] ^
		      crc_table[5][(lo >> 16) & 0xff] ^ crc_table[4][lo >> 24] ^
		      crc_table[3][hi & 0xff] ^ crc_table[2][(hi >> 8) & 0xff] ^
		      crc_table[1][(hi >> 16) & 0xff] ^ crc_table[0][hi >> 24];
		p += 8;
		len -= 8;
	}
	while (len--)
		crc = (crc >> 8) ^ crc_table[0][(crc ^ *p++) & 0xff];
	return ~crc;
}

static int always(void)
{
	return 1;
}

static const struct pn_crc32c_impl crc_ref = {"table", always, pn_crc32c_ref};

#ifdef PN_HAVE_X86
static int has_sse42(void)
{
	__builtin_cpu_init();
	return __builtin_cpu_supports("sse4.2");
}

static const struct pn_crc32c_impl crc_sse42 = {"sse4.2", has_sse42, pn_crc32c_sse42};
#endif

#ifdef PN_HAVE_ARM_CRC
/* The kernel's HWCAP bit for the CRC32 instructions: AT_HWCAP bit 7 on
 * aarch64, AT_HWCAP2 bit 4 on 32-bit ARM. */
static int has_armv8_crc(void)
{
#if defined(__aarch64__)
	return (getauxval(AT_HWCAP) & (1ul << 7)) != 0;
#else
	return (getauxval(AT_HWCAP2) & (1ul << 4)) != 0;
#endif
}

static const struct pn_crc32c_impl crc_armv8 = {"armv8-crc", has_armv8_crc, pn_crc32c_armv8};
#endif

const struct pn_crc32c_impl *const pn_crc32c_all[] = {
#ifdef PN_HAVE_X86
	&crc_sse42,
#endif
#ifdef PN_HAVE_ARM_CRC
	&crc_armv8,
#endif
	&crc_ref,
	NULL,
};

static const struct pn_crc32c_impl *chosen;

const struct pn_crc32c_impl *pn_crc32c_impl(void)
{
	if (chosen)
		return chosen;
	const char *isa = getenv("PIPENET_ISA");
	const struct pn_crc32c_impl *best = &crc_ref;
	if (!isa || strcmp(isa, "scalar") != 0)
		for (int i = 0; pn_crc32c_all[i]; i++)
			if (pn_crc32c_all[i]->available()) {
				best = pn_crc32c_all[i];
				break;
			}
	chosen = best;
	return chosen;
}

uint32_t pn_crc32c(uint32_t crc, const void *buf, size_t len)
{
	return pn_crc32c_impl()->update(crc, buf, len);
}

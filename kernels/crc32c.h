/* CRC32C (Castagnoli, reflected polynomial 0x82f63b78), the checksum of a
 * frame's payload. Variants: the portable reference (slice-by-8 tables),
 * the SSE4.2 crc32 instruction on x86-64 and the ARMv8 CRC32 instructions
 * on aarch64 and 32-bit ARM (Raspberry Pi 3 and later), each chosen at
 * run time by a CPU feature test; all give the same checksum. */
#ifndef PN_CRC32C_H
#define PN_CRC32C_H

#include <stddef.h>
#include <stdint.h>

struct pn_crc32c_impl {
	const char *name;
	int (*available)(void);
	/* The CRC of buf continued from crc (0 to start). */
	uint32_t (*update)(uint32_t crc, const void *buf, size_t len);
};

/* Every variant built in, best first, NULL-terminated (the tests iterate
 * it); the last is the reference. */
extern const struct pn_crc32c_impl *const pn_crc32c_all[];

/* The variant chosen: the best available, or the reference when
 * PIPENET_ISA=scalar asks for plain C throughout. Chosen once. */
const struct pn_crc32c_impl *pn_crc32c_impl(void);

/* pn_crc32c_impl()->update. */
uint32_t pn_crc32c(uint32_t crc, const void *buf, size_t len);

uint32_t pn_crc32c_ref(uint32_t crc, const void *buf, size_t len);
#ifdef PN_HAVE_X86
uint32_t pn_crc32c_sse42(uint32_t crc, const void *buf, size_t len);
#endif
#ifdef PN_HAVE_ARM_CRC
uint32_t pn_crc32c_armv8(uint32_t crc, const void *buf, size_t len);
#endif

#endif

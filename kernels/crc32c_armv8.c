/* CRC32C with the ARMv8 CRC32 instructions (crc32cx on aarch64, crc32cw
 * on 32-bit ARM); equals pn_crc32c_ref. Compiled with +crc alone: call
 * only when the kernel reports the instructions (crc32c.c checks). */
#include <string.h>

#include <arm_acle.h>

#include "crc32c.h"

uint32_t pn_crc32c_armv8(uint32_t crc, const void *buf, size_t len)
{
	const uint8_t *p = buf;
	crc = ~crc;
#if defined(__aarch64__)
	for (; len >= 8; len -= 8, p += 8) {
		uint64_t v;
		memcpy(&v, p, 8);
		crc = __crc32cd(crc, v);
	}
#endif
	for (; len >= 4; len -= 4, p += 4) {
		uint32_t v;
		memcpy(&v, p, 4);
		crc = __crc32cw(crc, v);
	}
	for (; len; len--)
		crc = __crc32cb(crc, *p++);
	return ~crc;
}

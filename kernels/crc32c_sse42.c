/* CRC32C with the SSE4.2 crc32 instruction, eight bytes at a time; equals
 * pn_crc32c_ref. Compiled with -msse4.2 alone: call only when the CPU has
 * it (crc32c.c checks). */
#include <string.h>

#include <nmmintrin.h>

#include "crc32c.h"

uint32_t pn_crc32c_sse42(uint32_t crc, const void *buf, size_t len)
{
	const uint8_t *p = buf;
	uint64_t c = ~crc;
	for (; len >= 8; len -= 8, p += 8) {
		uint64_t v;
		memcpy(&v, p, 8);
		c = _mm_crc32_u64(c, v);
	}
	uint32_t c32 = (uint32_t)c;
	for (; len; len--)
		c32 = _mm_crc32_u8(c32, *p++);
	return ~c32;
}

/* Every CRC32C variant built in (kernels/crc32c.h) that this CPU runs
 * against the check values and the table-driven reference: every length
 * 0..300 at offsets 0..7, continued checksums, and a 4 MiB buffer. The
 * speed of each is printed as a diagnostic, never judged. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "crc32c.h"
#include "tap.h"

static uint64_t rng = 0x2545f4914f6cdd1dull;

static uint8_t rnd8(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (uint8_t)(rng >> 24);
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int main(void)
{
	enum { BIG = 4 << 20 };
	uint8_t *big = malloc(BIG + 8);
	if (!big)
		return 1;
	for (size_t i = 0; i < BIG + 8; i++)
		big[i] = rnd8();
	uint8_t zeros[32] = {0};
	const uint32_t big_want = pn_crc32c_ref(0, big, BIG);

	for (int i = 0; pn_crc32c_all[i]; i++) {
		const struct pn_crc32c_impl *c = pn_crc32c_all[i];
		if (!c->available()) {
			char why[96];
			snprintf(why, sizeof why, "CRC32C %s: this CPU does not have it", c->name);
			tap_skip(why);
			continue;
		}
		tap_ok(c->update(0, "123456789", 9) == 0xe3069283u &&
			       c->update(0, zeros, 32) == 0x8a9136aau,
		       "%s: the check value of \"123456789\" and of 32 zero bytes (RFC 3720)",
		       c->name);
		long bad = 0;
		for (size_t off = 0; off < 8; off++)
			for (size_t len = 0; len <= 300; len++)
				bad += c->update(0x1234567u, big + off, len) !=
				       pn_crc32c_ref(0x1234567u, big + off, len);
		tap_ok(bad == 0,
		       "%s: equals the reference for lengths 0..300 at offsets 0..7 "
		       "(%ld differ)",
		       c->name, bad);
		uint32_t part = c->update(c->update(0, big, 1000003), big + 1000003, BIG - 1000003);
		tap_ok(part == big_want && c->update(0, big, BIG) == big_want,
		       "%s: 4 MiB whole and continued from a part equal the reference", c->name);
		double t0 = now_s();
		uint32_t sink = 0;
		for (int r = 0; r < 8; r++)
			sink += c->update(0, big, BIG);
		double dt = now_s() - t0;
		tap_diag("%s: %.0f MB/s (32 MiB; %08x)", c->name, dt > 0 ? 32 * 1.048576 / dt : 0,
			 (unsigned)sink);
	}
	tap_ok(pn_crc32c_impl()->available() && pn_crc32c(0, "123456789", 9) == 0xe3069283u,
	       "pn_crc32c uses %s%s", pn_crc32c_impl()->name,
	       getenv("PIPENET_ISA") ? " (PIPENET_ISA is set)" : "");
	free(big);
	return tap_done();
}

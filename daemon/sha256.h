/* SHA-256 (FIPS 180-4), for the model file check between nodes. */
#ifndef PN_SHA256_H
#define PN_SHA256_H

#include <stddef.h>
#include <stdint.h>

struct pn_sha256 {
	uint32_t h[8];
	uint64_t bytes;
	uint8_t buf[64];
	size_t used;
};

void pn_sha256_init(struct pn_sha256 *s);
void pn_sha256_update(struct pn_sha256 *s, const void *data, size_t len);
/* Writes 64 lowercase hex digits and a NUL. */
void pn_sha256_hex(struct pn_sha256 *s, char hex[65]);
/* The hash of a whole file; 0, or -1 with a message naming the file. */
int pn_sha256_file(const char *path, char hex[65], char *err, size_t errlen);

#endif

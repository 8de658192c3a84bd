/* Fuzz target: one JPEG from memory to a CIFAR record, as the classify
 * route and the JPEG folder reader decode it. */
#include <stddef.h>
#include <stdint.h>

#include "dataset.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t rgb[PN_IMAGE_BYTES];
	char err[512];
	pn_jpeg_decode(data, size, rgb, err, sizeof err);
	return 0;
}

/* Fuzz target: a safetensors file image through the whole model loader
 * (header, tensor table, metadata, shapes, BatchNorm folding). */
#include <stddef.h>
#include <stdint.h>

#include "model.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[512];
	struct pn_model *m =
		pn_model_load_buffer("fuzz", data, size, &pn_ops_scalar, err, sizeof err);
	pn_model_free(m);
	return 0;
}

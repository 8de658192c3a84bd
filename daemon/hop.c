#include "hop.h"
#include "dataset.h" /* PN_IMAGE_SIDE */
#include "frame.h"
#include "model.h"

size_t pn_cut_frame_bytes(const struct pn_model *m, int cut, size_t n, int dtype)
{
	int nb = pn_model_blocks(m);
	if (cut == 0)
		return pn_frame_size(PN_DTYPE_U8, n, PN_IMAGE_SIDE, PN_IMAGE_SIDE, 3);
	struct pn_shape sh = pn_model_shape(m, cut);
	return pn_frame_size(cut == nb ? PN_DTYPE_F32 : dtype, n, (size_t)sh.h, (size_t)sh.w,
			     (size_t)sh.c);
}

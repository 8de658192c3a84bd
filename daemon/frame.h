/* The stage -> stage wire format: one frame per HTTP POST /v1/frames.
 *
 * A frame is a fixed 48-byte little-endian header and a payload of
 * N x H x W x C activations (NHWC) in the frame's dtype:
 *
 *   offset size  field
 *        0    4  magic        "PNFR" (0x52464e50 read as a u32)
 *        4    2  version      1
 *        6    2  header_len   48
 *        8    8  run          run id
 *       16    4  seq          batch sequence number within the run
 *       20    2  first_block  first block the receiver applies; the block
 *                             count (19 for MobileNetV2) marks logits
 *       22    1  dtype        1 = float32, 2 = float16 (IEEE binary16),
 *                             3 = uint8 images, 4 = int8 (see below)
 *       23    1  epoch        the run's plan epoch, modulo 256: a frame sent
 *                             under an older plan is recognised and dropped
 *       24    4  n            images in the batch (1 .. plan batch)
 *       28    4  h
 *       32    4  w
 *       36    4  c            shape of one image's activation
 *       40    4  payload_len  bytes after the header = n*h*w*c*dtype size
 *                             (+ 8 for i8)
 *       44    4  crc          CRC32C (Castagnoli) of the payload
 *
 * Activations are NHWC in f32, f16 or i8. Frames into block 0 carry the
 * source images instead, dtype 3: N CIFAR-style records of C x H x W bytes
 * (planar RGB, 3 x 32 x 32), which the first stage preprocesses itself:
 * 3 KB an image instead of the 588 KB of a 224x224 float tensor.
 *
 * An i8 payload (dtype 4) begins with the tensor's quantisation, one for
 * the whole frame, then the n*h*w*c int8 values; the CRC covers all:
 *
 *   payload offset size  field
 *                0    4  scale        float32, finite and > 0
 *                4    4  zero_point   int32 in -128 .. 127
 *                8    -  values       int8, real = scale * (q - zero_point)
 *
 * An int8 model's sender uses the model's parameters at the cut, so the
 * receiver gets the very integers the sender computed (exact); a float
 * model's sender takes each frame's range [min(x, 0), max(x, 0)] as
 * `pipenet quantize` does (scale (hi - lo) / 255), which loses precision
 * like f16 does.
 *
 * Everything in a frame comes from the network: pn_frame_validate checks
 * each field, in that order, and names the first one that is wrong.
 */
#ifndef PN_FRAME_H
#define PN_FRAME_H

#include <stddef.h>
#include <stdint.h>

#include "crc32c.h" /* pn_crc32c */

#define PN_FRAME_MAGIC 0x52464e50u
#define PN_FRAME_VERSION 1
#define PN_FRAME_HEADER 48

enum pn_dtype {
	PN_DTYPE_F32 = 1,
	PN_DTYPE_F16 = 2,
	PN_DTYPE_U8 = 3,
	PN_DTYPE_I8 = 4,
};

/* Bytes of quantisation parameters at the start of an i8 payload. */
#define PN_FRAME_I8_PARAMS 8

struct pn_frame_header {
	uint64_t run;
	uint32_t seq;
	uint16_t first_block;
	uint8_t dtype;
	uint8_t epoch;
	uint32_t n, h, w, c;
	uint32_t payload_len;
	uint32_t crc;
	/* i8 only: the payload's quantisation parameters (not in the
	 * header proper: the first PN_FRAME_I8_PARAMS bytes of the payload). */
	float scale;
	int32_t zero_point;
};

/* What the receiver's plan expects of a frame. */
struct pn_frame_expect {
	uint64_t run;
	int epoch; /* -1: any */
	int first_block;
	int dtype;
	int max_n;
	int h, w, c;
	/* i8 frames: the quantisation the plan expects (an int8 model's at
	 * first_block), or scale 0 for any valid one. */
	float scale;
	int32_t zero_point;
};

/* Why a frame was refused: the header field at fault and a sentence. */
struct pn_frame_error {
	const char *field;
	char detail[192];
};

/* Bytes per element of a dtype, 0 if the dtype is unknown. */
size_t pn_dtype_size(int dtype);
/* "f32", "f16", "u8", "i8"; pn_dtype_parse returns 0 for an unknown name. */
const char *pn_dtype_name(int dtype);
int pn_dtype_parse(const char *name);
/* Whether a run may choose dtype for its activations: f32, f16 or i8. */
int pn_wire_dtype(int dtype);
/* The message for any other choice. */
#define PN_WIRE_CHOICES "wire must be \"f32\", \"f16\" or \"i8\""

void pn_frame_header_put(const struct pn_frame_header *h, uint8_t out[PN_FRAME_HEADER]);

/* Checks a whole frame (header and payload, `len` bytes): structure,
 * then each field against `x` (skipped when x is NULL), then the CRC,
 * then an i8 payload's scale and zero_point (fields "scale" and
 * "zero_point"). Fills *h as far as it got. 0 when valid, -1 with *e
 * filled. */
int pn_frame_validate(const uint8_t *buf, size_t len, const struct pn_frame_expect *x,
		      struct pn_frame_header *h, struct pn_frame_error *e);

/* Fills payload_len and crc in *hd from the payload already at
 * buf + PN_FRAME_HEADER, then writes the header into buf. */
void pn_frame_seal(struct pn_frame_header *hd, uint8_t *buf);
/* Writes a frame of n images of h x w x c floats from `data`: fills
 * payload_len and crc in *hd and the header and payload (converted to
 * hd->dtype with `to_f16` when it is f16) into `out`, which holds
 * pn_frame_size() bytes. For i8, hd->scale and hd->zero_point say how to
 * quantise; with scale 0 they are chosen from the data's range and
 * written back. Not for u8 frames (use pn_frame_seal). */
void pn_frame_encode(struct pn_frame_header *hd, const float *data,
		     void (*to_f16)(const float *, uint16_t *, size_t), uint8_t *out);
/* The payload part of pn_frame_encode alone; pn_frame_seal completes it
 * (a stage times the conversion and the checksum apart). */
void pn_frame_put_payload(struct pn_frame_header *hd, const float *data,
			  void (*to_f16)(const float *, uint16_t *, size_t), uint8_t *out);
/* The payload of an i8 frame from n*h*w*c integers already quantised
 * with hd->scale and hd->zero_point (an int8 model's plan output);
 * pn_frame_seal completes it. */
void pn_frame_put_i8(const struct pn_frame_header *hd, const int8_t *q, uint8_t *out);
/* The payload of a validated f32, f16 or i8 frame into floats (i8 with the
 * scale and zero point that validation read). `payload` must be aligned
 * for its dtype (frames live in malloc'd buffers). */
void pn_frame_decode(const struct pn_frame_header *hd, const uint8_t *payload,
		     void (*from_f16)(const uint16_t *, float *, size_t), float *out);

/* What moving a frame costs one side of a hop in CPU, ns per byte,
 * measured here and now: a CRC32C over it and 2.5 copies (the sender
 * copies the activations into the frame and the kernel copies the frame
 * into the socket; the receiver's kernel copies it out, evhttp's buffer
 * into the frame, the frame into the kernels' input). System calls are
 * not in it; a run's own accounting is (see the planner's use). Takes a
 * few milliseconds; 0 when out of memory. */
double pn_frame_cpu_ns_per_byte(void);

/* Size of a whole frame of n images of h*w*c elements, or 0 on overflow
 * past UINT32_MAX payload bytes or an unknown dtype. */
size_t pn_frame_size(int dtype, size_t n, size_t h, size_t w, size_t c);

#endif

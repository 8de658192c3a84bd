/* Datasets: CIFAR-10 binary files, JPEG files and JPEG class folders.
 *
 * Images come out as CIFAR records: 32x32 RGB, planar (1024 R, 1024 G,
 * 1024 B bytes). Every input is treated as hostile: a bad file is an error
 * message naming the path and the reason, never a crash or an exit.
 */
#ifndef PN_DATASET_H
#define PN_DATASET_H

#include <stddef.h>
#include <stdint.h>

#define PN_IMAGE_SIDE 32
#define PN_IMAGE_BYTES 3072
/* One CIFAR-10 binary record: a label byte, then the planar image. */
#define PN_CIFAR_RECORD_BYTES (1 + PN_IMAGE_BYTES)
/* JPEG inputs larger than this (width or height) are refused. */
#define PN_JPEG_MAX_SIDE 10000

struct pn_dataset;

/* path: a CIFAR-10 binary file (records of 1 + 3072 bytes), a single
 * .jpg/.jpeg file, or a folder of class folders DIR/CLASS/NAME.jpg (and
 * .jpeg, case-insensitive) whose CLASS names are looked up in `classes`
 * (label = index; folders not in the list are an error naming them;
 * classes with no folder are fine). In a CIFAR file a label must be below
 * nclasses (below 10 when nclasses is 0). A folder is decoded whole at
 * open; corrupt JPEGs in it are reported through the warn callback and
 * skipped. Returns an owned dataset, or NULL and a message in err naming
 * the path and what is wrong. */
struct pn_dataset *pn_dataset_open(const char *path, const char *const *classes, int nclasses,
				   char *err, size_t errlen);
size_t pn_dataset_count(const struct pn_dataset *ds);
/* Record i: rgb gets PN_IMAGE_BYTES, *label the class (-1 when unknown,
 * e.g. a single JPEG). 0, or -1 with a message in err. */
int pn_dataset_get(struct pn_dataset *ds, size_t i, uint8_t *rgb, int *label, char *err,
		   size_t errlen);
/* Where record i came from, for messages ("FILE record N" or the JPEG
 * path), written to buf; returns buf. */
const char *pn_dataset_source(const struct pn_dataset *ds, size_t i, char *buf, size_t buflen);
/* Number of JPEGs skipped at open because they were corrupt; each was
 * reported through the warn callback. */
size_t pn_dataset_skipped(const struct pn_dataset *ds);
/* The one piece of global state: where warnings go. NULL restores the
 * default, which prints "warning: MSG" to stderr. */
void pn_dataset_set_warn(void (*warn)(const char *msg));
void pn_dataset_free(struct pn_dataset *ds); /* NULL is fine */

/* Decode one JPEG held in memory to a CIFAR record: any size up to
 * PN_JPEG_MAX_SIDE, grayscale, YCbCr, RGB or CMYK/YCCK; resized to 32x32
 * by area averaging when needed. 0, or -1 with a message in err. */
int pn_jpeg_decode(const uint8_t *buf, size_t len, uint8_t *rgb, char *err, size_t errlen);

#endif

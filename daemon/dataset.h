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
/* JPEG inputs wider or taller than this are refused: 4096x4096 holds a
 * 12-megapixel photo, and bounds the decoder's memory (coefficients of a
 * progressive file, 2 to 6 bytes a pixel) and its work. */
#define PN_JPEG_MAX_SIDE 4096
/* Progressive JPEGs with more scans are refused. Each scan walks the whole
 * image again, so a small file of hundreds of near-empty scans costs
 * seconds of CPU; real encoders write about 10 (libjpeg's default script
 * has 10, mozjpeg's up to 64), and libjpeg-turbo's own tools suggest
 * -maxscans 100 against this attack. */
#define PN_JPEG_MAX_SCANS 100
/* A JPEG file read from disk is at most this large. */
#define PN_JPEG_MAX_FILE_BYTES (64L * 1024 * 1024)
/* A class folder dataset holds at most this many images: its index (the
 * file names) is built at open, the images decoded as they are read. */
#define PN_DATASET_MAX_IMAGES 100000

struct pn_dataset;

/* path (any path: this is for the command line; the coordinator uses
 * pn_dataset_open_at): a CIFAR-10 binary file (records of 1 + 3072 bytes), a single
 * .jpg/.jpeg file, or a folder of class folders DIR/CLASS/NAME.jpg (and
 * .jpeg, case-insensitive) whose CLASS names are looked up in `classes`
 * (label = index; folders not in the list are an error naming them;
 * classes with no folder are fine). In a CIFAR file a label must be below
 * nclasses (below 10 when nclasses is 0; the first records are checked at
 * open, each record again when it is read). A folder is indexed at open
 * (names only, at most PN_DATASET_MAX_IMAGES) and each image decoded when
 * it is read; a corrupt JPEG is reported through the warn callback, counted
 * as skipped and read as a black image without a label (-1). A single JPEG
 * file is decoded at open. Returns an owned dataset, or NULL and a message
 * in err naming the path and what is wrong (never file contents or sizes).
 */
struct pn_dataset *pn_dataset_open(const char *path, const char *const *classes, int nclasses,
				   char *err, size_t errlen);

/* ---- the coordinator's data directory ----
 *
 * Datasets are named relative to one folder (or by an absolute path that
 * lies inside it). A name is resolved beneath the folder before anything
 * is opened for reading, by the kernel in one step (openat2 with
 * RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS) or, where openat2 is missing, by
 * walking its components with openat(O_NOFOLLOW), where any symbolic link
 * is refused. Statuses are HTTP's: 400 (not a dataset: not a regular file
 * or folder, a bad name, a bad file), 403 (outside the folder: "..", an
 * escaping symbolic link, an absolute path elsewhere), 404 (missing). */
struct pn_datadir;
/* Opens the folder; NULL with a message. */
struct pn_datadir *pn_datadir_open(const char *path, char *err, size_t errlen);
void pn_datadir_free(struct pn_datadir *d); /* NULL is fine */
const char *pn_datadir_path(const struct pn_datadir *d);
/* Opens `name` beneath the folder open at rootfd (O_RDONLY, non-blocking,
 * close-on-exec): an fd of a regular file or a folder, or -1 with *status
 * and a message. Only names relative to rootfd; see above for the rules. */
int pn_open_beneath(int rootfd, const char *name, int *status, char *err, size_t errlen);
/* The dataset `name` in d, as pn_dataset_open; NULL with *status and a
 * message naming `name` as given. */
struct pn_dataset *pn_dataset_open_at(const struct pn_datadir *d, const char *name,
				      const char *const *classes, int nclasses, int *status,
				      char *err, size_t errlen);
/* What GET /api/v1/datasets lists: one entry per dataset found in the
 * folder and its subfolders (two levels), in name order; kind is
 * "cifar10-bin" or "jpeg-folder", records and classes -1 when unknown (the
 * listing's work is bounded: no JPEG is decoded, at most max entries are
 * returned and a bounded number of folder entries read). */
struct pn_dataset_info {
	char name[256];
	const char *kind;
	long records, classes;
};
/* Fills up to max infos; returns how many (0 when none or on error). */
size_t pn_datadir_list(const struct pn_datadir *d, const char *const *classes, int nclasses,
		       struct pn_dataset_info *out, size_t max);

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
 * PN_JPEG_MAX_SIDE, at most PN_JPEG_MAX_SCANS scans, grayscale, YCbCr, RGB
 * or CMYK/YCCK; a large image is decoded downscaled by libjpeg (1/2, 1/4 or
 * 1/8, keeping at least 128 pixels a side), then resized to 32x32 by area
 * averaging. 0, or -1 with a message in err. */
int pn_jpeg_decode(const uint8_t *buf, size_t len, uint8_t *rgb, char *err, size_t errlen);

/* The same decode a slice at a time, for an event loop. */
struct pn_jpeg;
/* Reads the header and checks the limits; buf is borrowed until
 * pn_jpeg_free. NULL with *status (400 bad, 413 over the limits) and a
 * message. */
struct pn_jpeg *pn_jpeg_new(const uint8_t *buf, size_t len, int *status, char *err, size_t errlen);
/* Does about `budget` rows of work (one row: a row of blocks of one scan,
 * or one output scanline). 1: more to do; 0: done, rgb holds the record;
 * -1: failed, with *status (400 or 413) and a message. */
int pn_jpeg_step(struct pn_jpeg *j, int budget, uint8_t *rgb, int *status, char *err,
		 size_t errlen);
void pn_jpeg_free(struct pn_jpeg *j); /* NULL is fine */

/* Tests: resolve names as where openat2 is missing (on != 0). */
void pn_open_beneath_walk_only(int on);

#endif

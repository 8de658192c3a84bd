/* Dataset readers: CIFAR-10 binary records read on demand with pread, and
 * JPEG files decoded with libjpeg and area-averaged to 32x32.
 *
 * A CIFAR file keeps only its descriptor open (the labels of its first
 * records are checked at open, each record's when it is read). A class
 * folder keeps its descriptor and the names of its images, each decoded
 * when it is read; a single JPEG file is decoded at open.
 */
#define _GNU_SOURCE /* O_PATH */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#ifdef __linux__
#include <sys/syscall.h>
#if defined(SYS_openat2) && defined(__has_include)
#if __has_include(<linux/openat2.h>)
#include <linux/openat2.h>
#define HAVE_OPENAT2 1
#endif
#endif
#endif

#include <jpeglib.h>
#include <jerror.h>

#include "dataset.h"

#define PLANE (PN_IMAGE_SIDE * PN_IMAGE_SIDE)
/* The labels of this many records are checked at open. */
#define CIFAR_CHUNK_RECORDS 256
/* Memory libjpeg may use for whole-image coefficient buffers (progressive
 * and multi-scan files: 2 bytes a pixel and component before
 * subsampling), enough for a 4:2:0 image of PN_JPEG_MAX_SIDE squared. */
#define JPEG_MAX_MEMORY (96L * 1024 * 1024)
/* Downscaled decoding keeps at least this many pixels a side, so that the
 * area average to 32 still sees 4 source pixels per output pixel. */
#define JPEG_MIN_SCALED_SIDE 128
/* Dataset names are at most this long. */
#define NAME_MAX_BYTES 1024
/* The listing of the data directory reads at most this many folder
 * entries in all, and this many of one folder. */
#define LIST_MAX_ENTRIES 200000
#define LIST_DIR_ENTRIES 20000

enum ds_kind { DS_CIFAR, DS_JPEG, DS_FOLDER };

struct pn_dataset {
	enum ds_kind kind;
	char *path; /* as shown in messages */
	size_t count;
	size_t skipped;
	/* DS_CIFAR: the open file and the label bound; DS_FOLDER: the
	 * folder. */
	int fd;
	int nlabels;
	int confined; /* DS_FOLDER: images opened beneath fd only */
	/* DS_JPEG: its one record. */
	uint8_t pixels[PN_IMAGE_BYTES];
	/* DS_FOLDER: per image its CLASS/NAME, label, and whether it failed
	 * to decode (then it reads as black, unlabelled). */
	char **names;
	int *labels;
	uint8_t *bad;
	size_t cap;
};

static void warn_stderr(const char *msg)
{
	fprintf(stderr, "warning: %s\n", msg);
}

static void (*ds_warn)(const char *msg) = warn_stderr;

void pn_dataset_set_warn(void (*warn)(const char *msg))
{
	ds_warn = warn ? warn : warn_stderr;
}

static void seterr(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void seterr(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;
	if (!err || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

static int has_jpeg_suffix(const char *name)
{
	size_t n = strlen(name);
	return (n > 4 && strcasecmp(name + n - 4, ".jpg") == 0) ||
	       (n > 5 && strcasecmp(name + n - 5, ".jpeg") == 0);
}

static int has_suffix(const char *name, const char *suffix)
{
	size_t n = strlen(name), m = strlen(suffix);
	return n > m && strcmp(name + n - m, suffix) == 0;
}

/* Reads exactly len bytes at off; 0, or -1 with errno (0 at end of file). */
static int pread_full(int fd, void *buf, size_t len, off_t off)
{
	uint8_t *p = buf;
	while (len > 0) {
		ssize_t n = pread(fd, p, len, off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (n == 0)
				errno = 0;
			return -1;
		}
		p += n;
		len -= (size_t)n;
		off += n;
	}
	return 0;
}

static const char *read_error(void)
{
	return errno ? strerror(errno) : "unexpected end of file (did the file change?)";
}

/* ---- JPEG decoding ---- */

struct jpeg_fail {
	struct jpeg_error_mgr pub;
	struct jpeg_progress_mgr progress;
	jmp_buf jump;
	int status; /* 400, or 413 over a limit */
	char msg[JMSG_LENGTH_MAX + 128];
};

static void jpeg_fail_now(struct jpeg_fail *f, int status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4), noreturn));

static void jpeg_fail_now(struct jpeg_fail *f, int status, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(f->msg, sizeof(f->msg), fmt, ap);
	va_end(ap);
	f->status = status;
	longjmp(f->jump, 1);
}

/* libjpeg's fatal errors come back to the setjmp of the call under way. */
static void jpeg_fail_exit(j_common_ptr cinfo)
{
	struct jpeg_fail *f = (struct jpeg_fail *)cinfo->err;
	if (cinfo->err->msg_code == JERR_NO_BACKING_STORE)
		jpeg_fail_now(f, 413, "decoding it needs more than the %ld MB memory limit",
			      JPEG_MAX_MEMORY >> 20);
	cinfo->err->format_message(cinfo, f->msg);
	f->status = 400;
	longjmp(f->jump, 1);
}

/* Warnings mean corrupt or truncated data, which libjpeg would paper
 * over with grey: they are errors here, except the two harmless ones. */
static void jpeg_fail_emit(j_common_ptr cinfo, int level)
{
	int code = cinfo->err->msg_code;
	if (level >= 0 || code == JWRN_JFIF_MAJOR || code == JWRN_ADOBE_XFORM)
		return;
	jpeg_fail_exit(cinfo);
}

/* A progressive file can hold thousands of tiny scans: bound the work. */
static void jpeg_scan_limit(j_common_ptr cinfo)
{
	j_decompress_ptr d = (j_decompress_ptr)cinfo;
	if (cinfo->is_decompressor && d->input_scan_number > PN_JPEG_MAX_SCANS)
		jpeg_fail_now((struct jpeg_fail *)cinfo->err, 413, "more than %d scans (the limit)",
			      PN_JPEG_MAX_SCANS);
}

/* Output pixel j along an axis of n source pixels covers [j*n, (j+1)*n)
 * and source pixel x covers [32x, 32x + 32), in units of 1/32 source
 * pixel; the overlap is x's weight in j. The weights of one j sum to n. */
static unsigned overlap(unsigned x, unsigned j, unsigned n)
{
	unsigned lo = 32 * x > j * n ? 32 * x : j * n;
	unsigned hi = 32 * x + 32 < (j + 1) * n ? 32 * x + 32 : (j + 1) * n;
	return hi > lo ? hi - lo : 0;
}

/* CMYK as Adobe writes it (inverted, saw_Adobe_marker) or plain, to RGB,
 * in place: pixel x moves from 4x to 3x. */
static void cmyk_to_rgb(uint8_t *row, unsigned width, int inverted)
{
	for (unsigned x = 0; x < width; x++) {
		unsigned c = row[4 * x], m = row[4 * x + 1], y = row[4 * x + 2], k = row[4 * x + 3];
		if (!inverted) {
			c = 255 - c;
			m = 255 - m;
			y = 255 - y;
			k = 255 - k;
		}
		row[3 * x] = (uint8_t)((c * k + 127) / 255);
		row[3 * x + 1] = (uint8_t)((m * k + 127) / 255);
		row[3 * x + 2] = (uint8_t)((y * k + 127) / 255);
	}
}

/* A decode under way. A file of one scan is decoded as libjpeg reads it,
 * a scanline at a time. A progressive or multi-scan file runs in libjpeg's
 * buffered-image mode: jpeg_consume_input takes one row of blocks of one
 * scan per call (jpeg_start_decompress would take the whole file in one
 * go), then the output pass reads scanlines. */
struct pn_jpeg {
	struct jpeg_decompress_struct cinfo;
	struct jpeg_fail fail;
	int started, multiscan, output, failed;
	int cmyk;
	unsigned w, h; /* output size (downscaled) */
	JSAMPARRAY row;
	unsigned xfirst[PN_IMAGE_SIDE], xend[PN_IMAGE_SIDE];
	uint64_t acc[PN_IMAGE_SIDE][PN_IMAGE_SIDE][3];
};

void pn_jpeg_free(struct pn_jpeg *j)
{
	if (!j)
		return;
	jpeg_destroy_decompress(&j->cinfo);
	free(j);
}

/* 1, 2, 4 or 8: the most that keeps JPEG_MIN_SCALED_SIDE of `side`. */
static unsigned scale_denom(unsigned side)
{
	unsigned denom = 1;
	while (denom < 8 && side / (denom * 2) >= JPEG_MIN_SCALED_SIDE)
		denom *= 2;
	return denom;
}

struct pn_jpeg *pn_jpeg_new(const uint8_t *buf, size_t len, int *status, char *err, size_t errlen)
{
	struct pn_jpeg *j;
	unsigned w, h;

	*status = 400;
	if (!buf || len == 0) {
		seterr(err, errlen, "empty input");
		return NULL;
	}
#if SIZE_MAX > ULONG_MAX
	if (len > ULONG_MAX) {
		*status = 413;
		seterr(err, errlen, "too large");
		return NULL;
	}
#endif
	if (!(j = calloc(1, sizeof(*j)))) {
		*status = 503;
		seterr(err, errlen, "out of memory");
		return NULL;
	}
	j->cinfo.err = jpeg_std_error(&j->fail.pub);
	j->fail.pub.error_exit = jpeg_fail_exit;
	j->fail.pub.emit_message = jpeg_fail_emit;
	j->fail.progress.progress_monitor = jpeg_scan_limit;
	if (setjmp(j->fail.jump)) {
		*status = j->fail.status ? j->fail.status : 400;
		seterr(err, errlen, "%s", j->fail.msg[0] ? j->fail.msg : "unknown libjpeg error");
		pn_jpeg_free(j);
		return NULL;
	}
	jpeg_create_decompress(&j->cinfo);
	j->cinfo.mem->max_memory_to_use = JPEG_MAX_MEMORY;
	j->cinfo.progress = &j->fail.progress;
	jpeg_mem_src(&j->cinfo, buf, (unsigned long)len);
	jpeg_read_header(&j->cinfo, TRUE);
	w = j->cinfo.image_width;
	h = j->cinfo.image_height;
	if (w == 0 || h == 0 || w > PN_JPEG_MAX_SIDE || h > PN_JPEG_MAX_SIDE)
		jpeg_fail_now(&j->fail, w && h ? 413 : 400,
			      "image is %ux%u pixels; the limit is %d on each side", w, h,
			      PN_JPEG_MAX_SIDE);
	switch (j->cinfo.jpeg_color_space) {
	case JCS_GRAYSCALE:
	case JCS_YCbCr:
	case JCS_RGB:
		j->cinfo.out_color_space = JCS_RGB;
		break;
	case JCS_CMYK:
	case JCS_YCCK:
		j->cinfo.out_color_space = JCS_CMYK;
		j->cmyk = 1;
		break;
	default:
		jpeg_fail_now(&j->fail, 400, "unsupported colour space (%d components)",
			      j->cinfo.num_components);
	}
	/* The model sees 32x32: libjpeg's scaled IDCT skips most of the work
	 * of a large image. */
	j->cinfo.scale_num = 1;
	j->cinfo.scale_denom = scale_denom(w < h ? w : h);
	j->multiscan = jpeg_has_multiple_scans(&j->cinfo);
	j->cinfo.buffered_image = j->multiscan ? TRUE : FALSE;
	return j;
}

/* The first step: the image's buffers (a multi-scan file's whole
 * coefficient array among them), allocated only now, so that decodes
 * waiting their turn hold just their header. */
static void jpeg_start(struct pn_jpeg *j)
{
	jpeg_start_decompress(&j->cinfo);
	j->w = j->cinfo.output_width;
	j->h = j->cinfo.output_height;
	if (j->w == 0 || j->h == 0 || j->cinfo.output_components != (j->cmyk ? 4 : 3))
		jpeg_fail_now(&j->fail, 400, "unexpected output layout from libjpeg");
	j->row = j->cinfo.mem->alloc_sarray((j_common_ptr)&j->cinfo, JPOOL_IMAGE,
					    j->w * (JDIMENSION)j->cinfo.output_components, 1);
	for (unsigned k = 0; k < PN_IMAGE_SIDE; k++) {
		j->xfirst[k] = k * j->w / PN_IMAGE_SIDE;
		j->xend[k] = ((k + 1) * j->w + PN_IMAGE_SIDE - 1) / PN_IMAGE_SIDE;
	}
	j->started = 1;
}

/* One output scanline into the accumulators. */
static void jpeg_row(struct pn_jpeg *j)
{
	uint64_t rowsum[PN_IMAGE_SIDE][3];
	unsigned y = j->cinfo.output_scanline, w = j->w, h = j->h;
	const uint8_t *px = j->row[0];
	if (jpeg_read_scanlines(&j->cinfo, j->row, 1) != 1)
		jpeg_fail_now(&j->fail, 400, "libjpeg returned no scanline");
	if (j->cmyk)
		cmyk_to_rgb(j->row[0], w, j->cinfo.saw_Adobe_marker);
	for (unsigned k = 0; k < PN_IMAGE_SIDE; k++) {
		uint64_t s0 = 0, s1 = 0, s2 = 0;
		for (unsigned x = j->xfirst[k]; x < j->xend[k]; x++) {
			unsigned wx = overlap(x, k, w);
			s0 += wx * px[3 * x];
			s1 += wx * px[3 * x + 1];
			s2 += wx * px[3 * x + 2];
		}
		rowsum[k][0] = s0;
		rowsum[k][1] = s1;
		rowsum[k][2] = s2;
	}
	for (unsigned i = y * PN_IMAGE_SIDE / h;
	     i < PN_IMAGE_SIDE && i * h < (y + 1) * PN_IMAGE_SIDE; i++) {
		unsigned wy = overlap(y, i, h);
		for (unsigned k = 0; k < PN_IMAGE_SIDE; k++)
			for (int c = 0; c < 3; c++)
				j->acc[i][k][c] += wy * rowsum[k][c];
	}
}

int pn_jpeg_step(struct pn_jpeg *j, int budget, uint8_t *rgb, int *status, char *err, size_t errlen)
{
	*status = 400;
	if (j->failed) {
		seterr(err, errlen, "the decode already failed");
		return -1;
	}
	if (setjmp(j->fail.jump)) {
		j->failed = 1;
		*status = j->fail.status ? j->fail.status : 400;
		seterr(err, errlen, "%s", j->fail.msg[0] ? j->fail.msg : "unknown libjpeg error");
		return -1;
	}
	if (!j->started) {
		jpeg_start(j);
		return 1;
	}
	if (j->multiscan && !j->output) {
		for (int n = 0; n < budget; n++) {
			int rc = jpeg_consume_input(&j->cinfo);
			if (j->cinfo.input_scan_number > PN_JPEG_MAX_SCANS)
				jpeg_fail_now(&j->fail, 413, "more than %d scans (the limit)",
					      PN_JPEG_MAX_SCANS);
			if (rc == JPEG_SUSPENDED)
				jpeg_fail_now(&j->fail, 400, "premature end of data");
			if (rc == JPEG_REACHED_EOI) {
				jpeg_start_output(&j->cinfo, j->cinfo.input_scan_number);
				j->output = 1;
				return 1;
			}
		}
		return 1;
	}
	for (int n = 0; n < budget && j->cinfo.output_scanline < j->h; n++)
		jpeg_row(j);
	if (j->cinfo.output_scanline < j->h)
		return 1;
	if (j->multiscan)
		jpeg_finish_output(&j->cinfo);
	jpeg_finish_decompress(&j->cinfo);
	/* Every output pixel's weights sum to w * h: round to nearest. */
	uint64_t area = (uint64_t)j->w * j->h;
	for (int c = 0; c < 3; c++)
		for (int i = 0; i < PN_IMAGE_SIDE; i++)
			for (int k = 0; k < PN_IMAGE_SIDE; k++)
				rgb[c * PLANE + i * PN_IMAGE_SIDE + k] =
					(uint8_t)((j->acc[i][k][c] + area / 2) / area);
	j->failed = 1; /* done: no further step */
	return 0;
}

/* The whole decode at once; 0 or -1 with *status and the reason in why. */
static int jpeg_decode_all(const uint8_t *buf, size_t len, uint8_t *rgb, int *status, char *why,
			   size_t whylen)
{
	struct pn_jpeg *j = pn_jpeg_new(buf, len, status, why, whylen);
	int rc = 1;
	while (j && rc == 1)
		rc = pn_jpeg_step(j, 1 << 20, rgb, status, why, whylen);
	pn_jpeg_free(j);
	return j && rc == 0 ? 0 : -1;
}

int pn_jpeg_decode(const uint8_t *buf, size_t len, uint8_t *rgb, char *err, size_t errlen)
{
	char why[JMSG_LENGTH_MAX + 128];
	int status;
	if (jpeg_decode_all(buf, len, rgb, &status, why, sizeof(why)) < 0) {
		seterr(err, errlen, "bad JPEG: %s", why);
		return -1;
	}
	return 0;
}

/* Reads the regular file open at fd whole (at most max bytes); malloc'd,
 * NULL with the reason. */
static uint8_t *read_all(int fd, size_t max, size_t *len, char *why, size_t whylen)
{
	struct stat st;
	uint8_t *buf;
	if (fstat(fd, &st) < 0) {
		seterr(why, whylen, "cannot stat: %s", strerror(errno));
		return NULL;
	}
	if (!S_ISREG(st.st_mode) || st.st_size == 0 || (uint64_t)st.st_size > max) {
		seterr(why, whylen, "%s",
		       !S_ISREG(st.st_mode) ? "not a regular file"
		       : st.st_size == 0    ? "empty file"
					    : "file larger than the limit");
		return NULL;
	}
	*len = (size_t)st.st_size;
	if (!(buf = malloc(*len))) {
		seterr(why, whylen, "out of memory");
		return NULL;
	}
	if (pread_full(fd, buf, *len, 0) < 0) {
		seterr(why, whylen, "cannot read: %s", read_error());
		free(buf);
		return NULL;
	}
	return buf;
}

/* Decodes the JPEG file open at fd (not taken); 0 or -1 with the reason. */
static int jpeg_fd_to_record(int fd, uint8_t *rgb, char *why, size_t whylen)
{
	size_t len;
	int status;
	uint8_t *buf = read_all(fd, PN_JPEG_MAX_FILE_BYTES, &len, why, whylen);
	if (!buf)
		return -1;
	int rc = jpeg_decode_all(buf, len, rgb, &status, why, whylen);
	free(buf);
	return rc;
}

/* ---- resolving names beneath a folder ---- */

static int walk_only; /* tests: resolve as if openat2 were missing */

void pn_open_beneath_walk_only(int on)
{
	walk_only = on;
}

/* A name's components are checked before any system call: no "..", not
 * absolute, not empty, not too long. 0, or -1 with *status. */
static int check_name(const char *name, int *status, char *err, size_t errlen)
{
	size_t n = name ? strlen(name) : 0;
	if (n == 0) {
		*status = 400;
		seterr(err, errlen, "no dataset name given");
		return -1;
	}
	if (n > NAME_MAX_BYTES) {
		*status = 400;
		seterr(err, errlen, "the name is longer than %d bytes", NAME_MAX_BYTES);
		return -1;
	}
	if (name[0] == '/') {
		*status = 403;
		seterr(err, errlen, "%s: an absolute path outside the data directory", name);
		return -1;
	}
	for (const char *p = name; *p;) {
		size_t c = strcspn(p, "/");
		if (c == 2 && p[0] == '.' && p[1] == '.') {
			*status = 403;
			seterr(err, errlen, "%s: '..' would lead outside the data directory", name);
			return -1;
		}
		p += c;
		while (*p == '/')
			p++;
	}
	return 0;
}

/* The status and message for open's errno. */
static int open_failed(const char *name, int e, int *status, char *err, size_t errlen)
{
	switch (e) {
	case ENOENT:
	case ENOTDIR:
		*status = 404;
		seterr(err, errlen, "%s: no such dataset", name);
		break;
	case EXDEV:
	case ELOOP:
		*status = 403;
		seterr(err, errlen, "%s: a symbolic link leads outside the data directory", name);
		break;
	case EACCES:
	case EPERM:
		*status = 403;
		seterr(err, errlen, "%s: permission denied", name);
		break;
	default:
		*status = 400;
		seterr(err, errlen, "%s: cannot open: %s", name, strerror(e));
	}
	return -1;
}

#define OPEN_FLAGS (O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK)

/* Without openat2: one component at a time, refusing symbolic links. */
static int walk_beneath(int rootfd, const char *name, int *status, char *err, size_t errlen)
{
	char comp[NAME_MAX_BYTES + 1];
	const char *p = name;
	int dfd = openat(rootfd, ".", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return open_failed(name, errno, status, err, errlen);
	for (;;) {
		size_t c = strcspn(p, "/");
		const char *next = p + c;
		while (*next == '/')
			next++;
		memcpy(comp, p, c);
		comp[c] = '\0';
		if (c == 0) /* a trailing or only "/": the folder itself */
			snprintf(comp, sizeof(comp), ".");
		int last = *next == '\0';
		int fd = openat(dfd, comp,
				last ? OPEN_FLAGS | O_NOFOLLOW : O_PATH | O_NOFOLLOW | O_CLOEXEC);
		int e = errno;
		struct stat st;
		if (fd < 0) {
			close(dfd);
			if (e == ELOOP) {
				*status = 403;
				seterr(err, errlen,
				       "%s: a symbolic link (not followed where openat2 is "
				       "missing)",
				       name);
				return -1;
			}
			return open_failed(name, e, status, err, errlen);
		}
		if (last) {
			close(dfd);
			return fd;
		}
		close(dfd);
		if (fstat(fd, &st) < 0)
			st.st_mode = 0;
		if (!S_ISDIR(st.st_mode)) {
			int link = S_ISLNK(st.st_mode);
			close(fd);
			*status = link ? 403 : 404;
			seterr(err, errlen, "%s: %s", name,
			       link ? "a symbolic link (not followed where openat2 is missing)"
				    : "no such dataset");
			return -1;
		}
		dfd = fd;
		p = next;
	}
}

int pn_open_beneath(int rootfd, const char *name, int *status, char *err, size_t errlen)
{
	struct stat st;
	int fd = -1;
	if (check_name(name, status, err, errlen) < 0)
		return -1;
#ifdef HAVE_OPENAT2
	if (!walk_only) {
		struct open_how how;
		memset(&how, 0, sizeof(how));
		how.flags = OPEN_FLAGS;
		how.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;
		do
			fd = (int)syscall(SYS_openat2, rootfd, name, &how, sizeof(how));
		while (fd < 0 && (errno == EINTR || errno == EAGAIN));
		/* Kernels before 5.6 (ENOSYS), or a seccomp filter that
		 * does not know the call (EPERM): walk instead. */
		if (fd < 0 && errno != ENOSYS && errno != EPERM && errno != E2BIG)
			return open_failed(name, errno, status, err, errlen);
	}
#endif
	if (fd < 0 && (fd = walk_beneath(rootfd, name, status, err, errlen)) < 0)
		return -1;
	if (fstat(fd, &st) < 0) {
		int e = errno;
		close(fd);
		return open_failed(name, e, status, err, errlen);
	}
	if (!S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode)) {
		close(fd);
		*status = 400;
		seterr(err, errlen, "%s: not a regular file or a folder", name);
		return -1;
	}
	return fd;
}

/* ---- datasets ---- */

static struct pn_dataset *ds_new(enum ds_kind kind, const char *path)
{
	struct pn_dataset *ds = calloc(1, sizeof(*ds));
	if (!ds)
		return NULL;
	ds->kind = kind;
	ds->fd = -1;
	ds->path = strdup(path);
	/* Messages name DIR/CLASS/FILE without doubled slashes. */
	for (size_t l = ds->path ? strlen(ds->path) : 0; l > 1 && ds->path[l - 1] == '/'; l--)
		ds->path[l - 1] = '\0';
	if (!ds->path) {
		free(ds);
		return NULL;
	}
	return ds;
}

void pn_dataset_free(struct pn_dataset *ds)
{
	if (!ds)
		return;
	if (ds->fd >= 0)
		close(ds->fd);
	if (ds->names)
		for (size_t i = 0; i < ds->count; i++)
			free(ds->names[i]);
	free(ds->names);
	free(ds->labels);
	free(ds->bad);
	free(ds->path);
	free(ds);
}

/* Room for one more image; 0 or -1 (out of memory). */
static int ds_reserve(struct pn_dataset *ds)
{
	size_t cap;
	void *p;
	if (ds->count < ds->cap)
		return 0;
	cap = ds->cap ? 2 * ds->cap : 64;
	if (cap > SIZE_MAX / sizeof(char *))
		return -1;
	if (!(p = realloc(ds->names, cap * sizeof(char *))))
		return -1;
	ds->names = p;
	if (!(p = realloc(ds->labels, cap * sizeof(int))))
		return -1;
	ds->labels = p;
	if (!(p = realloc(ds->bad, cap)))
		return -1;
	ds->bad = p;
	ds->cap = cap;
	return 0;
}

/* A CIFAR-10 binary file open at fd (taken: kept by the dataset or closed). */
static struct pn_dataset *open_cifar(const char *path, int fd, off_t size, int nclasses, char *err,
				     size_t errlen)
{
	struct pn_dataset *ds = NULL;
	uint8_t *chunk = NULL;
	int nlabels = nclasses > 0 ? nclasses : 10;
	size_t count, n;

	if (size == 0) {
		seterr(err, errlen,
		       "%s: empty file (a CIFAR-10 binary file holds records of %d bytes)", path,
		       PN_CIFAR_RECORD_BYTES);
		goto fail;
	}
	/* Neither the size nor any byte of the file is shown: the message
	 * goes to clients without a token. */
	if (size % PN_CIFAR_RECORD_BYTES != 0) {
		seterr(err, errlen,
		       "%s: not a CIFAR-10 binary file: its size is not a whole number of "
		       "%d-byte records",
		       path, PN_CIFAR_RECORD_BYTES);
		goto fail;
	}
	if ((uint64_t)(size / PN_CIFAR_RECORD_BYTES) > SIZE_MAX) {
		seterr(err, errlen, "%s: too many records for this machine", path);
		goto fail;
	}
	count = (size_t)(size / PN_CIFAR_RECORD_BYTES);
	/* The first records only: the open stays short however large the
	 * file; each record is checked again when it is read. */
	n = count < CIFAR_CHUNK_RECORDS ? count : CIFAR_CHUNK_RECORDS;
	chunk = malloc(n * PN_CIFAR_RECORD_BYTES);
	if (!chunk) {
		seterr(err, errlen, "%s: out of memory", path);
		goto fail;
	}
	if (pread_full(fd, chunk, n * PN_CIFAR_RECORD_BYTES, 0) < 0) {
		seterr(err, errlen, "%s: cannot read: %s", path, read_error());
		goto fail;
	}
	for (size_t k = 0; k < n; k++)
		if ((int)chunk[k * PN_CIFAR_RECORD_BYTES] >= nlabels) {
			seterr(err, errlen,
			       "%s: record %zu has a label outside 0..%d (is it a CIFAR-10 binary "
			       "file?)",
			       path, k, nlabels - 1);
			goto fail;
		}
	if (!(ds = ds_new(DS_CIFAR, path))) {
		seterr(err, errlen, "%s: out of memory", path);
		goto fail;
	}
	ds->fd = fd;
	ds->count = count;
	ds->nlabels = nlabels;
	free(chunk);
	return ds;
fail:
	free(chunk);
	close(fd);
	return NULL;
}

/* A single JPEG file, open at fd (taken), decoded now. */
static struct pn_dataset *open_jpeg(const char *path, int fd, char *err, size_t errlen)
{
	char why[JMSG_LENGTH_MAX + 128];
	struct pn_dataset *ds = ds_new(DS_JPEG, path);
	if (!ds) {
		seterr(err, errlen, "%s: out of memory", path);
		close(fd);
		return NULL;
	}
	ds->count = 1;
	if (jpeg_fd_to_record(fd, ds->pixels, why, sizeof(why)) < 0) {
		seterr(err, errlen, "%s: bad JPEG: %s", path, why);
		pn_dataset_free(ds);
		close(fd);
		return NULL;
	}
	close(fd);
	return ds;
}

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Opens `name` under dirfd: beneath it when confined, else as openat. */
static int open_under(int dirfd, const char *name, int confined, int *status, char *err,
		      size_t errlen)
{
	if (confined)
		return pn_open_beneath(dirfd, name, status, err, errlen);
	int fd = openat(dirfd, name, OPEN_FLAGS);
	if (fd < 0)
		return open_failed(name, errno, status, err, errlen);
	return fd;
}

/* Adds the JPEGs of class `cls` (label) to the folder dataset's index,
 * sorted by name; at most PN_DATASET_MAX_IMAGES in all. 0 or -1. */
static int add_class(struct pn_dataset *ds, const char *cls, int label, char *err, size_t errlen)
{
	size_t first = ds->count, cls_len = strlen(cls), seen = 0;
	struct dirent *e;
	int status;
	DIR *d = NULL;
	int fd = open_under(ds->fd, cls, ds->confined, &status, err, errlen);
	if (fd < 0 || !(d = fdopendir(fd))) {
		seterr(err, errlen, "%s/%s: cannot open folder: %s", ds->path, cls,
		       fd < 0 ? "not reachable" : strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	errno = 0;
	while ((e = readdir(d))) {
		char *name;
		size_t n;
		if (++seen > 4 * (size_t)PN_DATASET_MAX_IMAGES) {
			seterr(err, errlen, "%s/%s: more than %d folder entries", ds->path, cls,
			       4 * PN_DATASET_MAX_IMAGES);
			goto fail;
		}
		if (e->d_name[0] == '.' || !has_jpeg_suffix(e->d_name)) {
			errno = 0;
			continue;
		}
		if (ds->count >= PN_DATASET_MAX_IMAGES) {
			seterr(err, errlen,
			       "%s: more than %d images (the limit of a folder dataset)", ds->path,
			       PN_DATASET_MAX_IMAGES);
			goto fail;
		}
		n = strlen(e->d_name);
		if (ds_reserve(ds) < 0 || !(name = malloc(cls_len + n + 2))) {
			seterr(err, errlen, "%s: out of memory", ds->path);
			goto fail;
		}
		memcpy(name, cls, cls_len);
		name[cls_len] = '/';
		memcpy(name + cls_len + 1, e->d_name, n + 1);
		ds->names[ds->count] = name;
		ds->labels[ds->count] = label;
		ds->bad[ds->count] = 0;
		ds->count++;
		errno = 0;
	}
	if (errno) {
		seterr(err, errlen, "%s/%s: cannot read folder: %s", ds->path, cls,
		       strerror(errno));
		goto fail;
	}
	closedir(d);
	if (ds->count - first > 1)
		qsort(ds->names + first, ds->count - first, sizeof(char *), cmp_names);
	return 0;
fail:
	closedir(d);
	return -1;
}

static void format_classes(char *buf, size_t buflen, const char *const *classes, int nclasses)
{
	size_t used = 0;
	buf[0] = '\0';
	for (int k = 0; k < nclasses && used < buflen; k++) {
		int n = snprintf(buf + used, buflen - used, "%s%s", k ? ", " : "", classes[k]);
		if (n < 0)
			break;
		used += (size_t)n;
	}
}

/* A folder of class folders open at fd (taken): indexed, not decoded. */
static struct pn_dataset *open_folder(const char *path, int fd, int confined,
				      const char *const *classes, int nclasses, char *err,
				      size_t errlen)
{
	struct pn_dataset *ds = NULL;
	char *present = NULL;
	char shown_classes[512];
	struct dirent *e;
	int nfolders = 0, saw_bin = 0, lfd = dup(fd);
	size_t seen = 0;
	DIR *d = lfd >= 0 ? fdopendir(lfd) : NULL;

	if (!d) {
		seterr(err, errlen, "%s: cannot open folder: %s", path, strerror(errno));
		if (lfd >= 0)
			close(lfd);
		close(fd);
		return NULL;
	}
	if (!(ds = ds_new(DS_FOLDER, path))) {
		seterr(err, errlen, "%s: out of memory", path);
		close(fd);
		goto fail;
	}
	ds->fd = fd;
	ds->confined = confined;
	if (!classes || nclasses <= 0) {
		seterr(err, errlen, "%s: a folder of images needs the list of class names", path);
		goto fail;
	}
	format_classes(shown_classes, sizeof(shown_classes), classes, nclasses);
	if (!(present = calloc((size_t)nclasses, 1))) {
		seterr(err, errlen, "%s: out of memory", path);
		goto fail;
	}
	errno = 0;
	while ((e = readdir(d))) {
		struct stat st;
		int k;
		if (++seen > LIST_DIR_ENTRIES) {
			seterr(err, errlen, "%s: more than %d folder entries", path,
			       LIST_DIR_ENTRIES);
			goto fail;
		}
		if (e->d_name[0] == '.')
			continue;
		if (fstatat(dirfd(d), e->d_name, &st, 0) < 0) {
			errno = 0;
			continue;
		}
		if (!S_ISDIR(st.st_mode)) {
			saw_bin |= S_ISREG(st.st_mode) && has_suffix(e->d_name, ".bin");
			errno = 0;
			continue;
		}
		for (k = 0; k < nclasses; k++)
			if (classes[k] && strcmp(classes[k], e->d_name) == 0)
				break;
		if (k == nclasses) {
			seterr(err, errlen, "%s: folder '%s' is not one of the classes (%s)", path,
			       e->d_name, shown_classes);
			goto fail;
		}
		present[k] = 1;
		nfolders++;
		errno = 0;
	}
	if (errno) {
		seterr(err, errlen, "%s: cannot read folder: %s", path, strerror(errno));
		goto fail;
	}
	for (int k = 0; k < nclasses; k++)
		if (present[k] && add_class(ds, classes[k], k, err, errlen) < 0)
			goto fail;
	if (ds->count == 0) {
		if (nfolders)
			seterr(err, errlen, "%s: no .jpg or .jpeg files in its class folders",
			       path);
		else
			seterr(err, errlen,
			       "%s: no images: expected class folders DIR/CLASS/*.jpg with CLASS "
			       "one of (%s)%s",
			       path, shown_classes,
			       saw_bin ? "; for CIFAR-10 binary records give the .bin file "
					 "itself"
				       : "");
		goto fail;
	}
	closedir(d);
	free(present);
	return ds;
fail:
	pn_dataset_free(ds);
	closedir(d);
	free(present);
	return NULL;
}

/* The dataset open at fd (taken), a regular file or a folder. */
static struct pn_dataset *open_fd(const char *path, int fd, int confined,
				  const char *const *classes, int nclasses, char *err,
				  size_t errlen)
{
	struct stat st;
	uint8_t magic[3];
	if (fstat(fd, &st) < 0) {
		seterr(err, errlen, "%s: cannot stat: %s", path, strerror(errno));
		close(fd);
		return NULL;
	}
	if (S_ISDIR(st.st_mode))
		return open_folder(path, fd, confined, classes, nclasses, err, errlen);
	if (!S_ISREG(st.st_mode)) {
		seterr(err, errlen, "%s: not a regular file or a folder", path);
		close(fd);
		return NULL;
	}
	/* A JPEG by name or by its SOI marker (0xff is never a CIFAR label). */
	if (has_jpeg_suffix(path) || (st.st_size >= 3 && pread_full(fd, magic, 3, 0) == 0 &&
				      magic[0] == 0xff && magic[1] == 0xd8 && magic[2] == 0xff))
		return open_jpeg(path, fd, err, errlen);
	return open_cifar(path, fd, st.st_size, nclasses, err, errlen);
}

struct pn_dataset *pn_dataset_open(const char *path, const char *const *classes, int nclasses,
				   char *err, size_t errlen)
{
	int fd;
	if (!path || !*path) {
		seterr(err, errlen, "no dataset path given");
		return NULL;
	}
	fd = open(path, OPEN_FLAGS);
	if (fd < 0) {
		seterr(err, errlen, "%s: cannot open: %s", path, strerror(errno));
		return NULL;
	}
	return open_fd(path, fd, 0, classes, nclasses, err, errlen);
}

size_t pn_dataset_count(const struct pn_dataset *ds)
{
	return ds ? ds->count : 0;
}

size_t pn_dataset_skipped(const struct pn_dataset *ds)
{
	return ds ? ds->skipped : 0;
}

/* Image i of a folder dataset: decoded now; a bad one is warned about
 * once, counted and read as black without a label from then on. */
static void folder_get(struct pn_dataset *ds, size_t i, uint8_t *rgb, int *label)
{
	char why[JMSG_LENGTH_MAX + 128], msg[2 * NAME_MAX_BYTES + JMSG_LENGTH_MAX + 256];
	int status, fd = -1;
	if (!ds->bad[i]) {
		fd = open_under(ds->fd, ds->names[i], ds->confined, &status, why, sizeof(why));
		if (fd >= 0 && jpeg_fd_to_record(fd, rgb, why, sizeof(why)) == 0) {
			close(fd);
			if (label)
				*label = ds->labels[i];
			return;
		}
		if (fd >= 0)
			close(fd);
		snprintf(msg, sizeof(msg), "%s/%s: bad JPEG: %s; skipped", ds->path, ds->names[i],
			 why);
		ds_warn(msg);
		ds->bad[i] = 1;
		ds->skipped++;
	}
	memset(rgb, 0, PN_IMAGE_BYTES);
	if (label)
		*label = -1;
}

int pn_dataset_get(struct pn_dataset *ds, size_t i, uint8_t *rgb, int *label, char *err,
		   size_t errlen)
{
	uint8_t rec[PN_CIFAR_RECORD_BYTES];
	if (!ds || !rgb) {
		seterr(err, errlen, "no dataset or no image buffer");
		return -1;
	}
	if (i >= ds->count) {
		seterr(err, errlen, "%s: no record %zu (it has %zu)", ds->path, i, ds->count);
		return -1;
	}
	if (ds->kind == DS_JPEG) {
		memcpy(rgb, ds->pixels, PN_IMAGE_BYTES);
		if (label)
			*label = -1;
		return 0;
	}
	if (ds->kind == DS_FOLDER) {
		folder_get(ds, i, rgb, label);
		return 0;
	}
	if (pread_full(ds->fd, rec, sizeof(rec), (off_t)i * PN_CIFAR_RECORD_BYTES) < 0) {
		seterr(err, errlen, "%s record %zu: cannot read: %s", ds->path, i, read_error());
		return -1;
	}
	if (rec[0] >= ds->nlabels) {
		seterr(err, errlen, "%s record %zu: a label outside 0..%d", ds->path, i,
		       ds->nlabels - 1);
		return -1;
	}
	memcpy(rgb, rec + 1, PN_IMAGE_BYTES);
	if (label)
		*label = rec[0];
	return 0;
}

const char *pn_dataset_source(const struct pn_dataset *ds, size_t i, char *buf, size_t buflen)
{
	if (!buf || buflen == 0)
		return "";
	if (!ds)
		snprintf(buf, buflen, "(no dataset)");
	else if (i >= ds->count)
		snprintf(buf, buflen, "%s record %zu (out of range)", ds->path, i);
	else if (ds->kind == DS_FOLDER)
		snprintf(buf, buflen, "%s/%s", ds->path, ds->names[i]);
	else if (ds->kind == DS_JPEG)
		snprintf(buf, buflen, "%s", ds->path);
	else
		snprintf(buf, buflen, "%s record %zu", ds->path, i);
	return buf;
}

/* ---- the data directory ---- */

struct pn_datadir {
	int fd;
	char *path; /* as given, trailing slashes removed */
	char *real; /* canonical */
};

struct pn_datadir *pn_datadir_open(const char *path, char *err, size_t errlen)
{
	struct pn_datadir *d;
	struct stat st;
	if (!path || !*path) {
		seterr(err, errlen, "data_dir: no folder given");
		return NULL;
	}
	if (!(d = calloc(1, sizeof(*d)))) {
		seterr(err, errlen, "out of memory");
		return NULL;
	}
	d->fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (d->fd < 0 || fstat(d->fd, &st) < 0) {
		seterr(err, errlen, "data_dir %s: cannot open the folder: %s", path,
		       strerror(errno));
		goto fail;
	}
	d->path = strdup(path);
	d->real = realpath(path, NULL);
	if (!d->path || !d->real) {
		seterr(err, errlen, "data_dir %s: %s", path,
		       d->path ? strerror(errno) : "out of memory");
		goto fail;
	}
	for (size_t l = strlen(d->path); l > 1 && d->path[l - 1] == '/'; l--)
		d->path[l - 1] = '\0';
	return d;
fail:
	pn_datadir_free(d);
	return NULL;
}

void pn_datadir_free(struct pn_datadir *d)
{
	if (!d)
		return;
	if (d->fd >= 0)
		close(d->fd);
	free(d->path);
	free(d->real);
	free(d);
}

const char *pn_datadir_path(const struct pn_datadir *d)
{
	return d ? d->path : "";
}

/* An absolute name inside the folder, as relative to it; NULL outside. */
static const char *inside(const struct pn_datadir *d, const char *name)
{
	const char *roots[2] = {d->path, d->real};
	for (int k = 0; k < 2; k++) {
		size_t n = strlen(roots[k]);
		if (strcmp(roots[k], "/") == 0)
			return name[1] ? name + 1 : ".";
		if (strncmp(name, roots[k], n) == 0 && (name[n] == '/' || name[n] == '\0')) {
			name += n;
			while (*name == '/')
				name++;
			return *name ? name : ".";
		}
	}
	return NULL;
}

struct pn_dataset *pn_dataset_open_at(const struct pn_datadir *d, const char *name,
				      const char *const *classes, int nclasses, int *status,
				      char *err, size_t errlen)
{
	const char *rel = name;
	struct pn_dataset *ds;
	int fd;
	*status = 400;
	if (name && name[0] == '/' && !(rel = inside(d, name))) {
		*status = 403;
		seterr(err, errlen, "%s: an absolute path outside the data directory", name);
		return NULL;
	}
	if ((fd = pn_open_beneath(d->fd, rel, status, err, errlen)) < 0)
		return NULL;
	*status = 400;
	ds = open_fd(name, fd, 1, classes, nclasses, err, errlen);
	return ds;
}

/* ---- listing the data directory ---- */

struct lister {
	const char *const *classes;
	int nclasses;
	struct pn_dataset_info *out;
	size_t max, n;
	long budget; /* folder entries still to read */
};

static int class_index(const struct lister *l, const char *name)
{
	for (int k = 0; k < l->nclasses; k++)
		if (l->classes[k] && strcmp(l->classes[k], name) == 0)
			return k;
	return -1;
}

/* The JPEG names in the folder `name` under dirfd, counted (-1 past the
 * budget). */
static long count_jpegs(struct lister *l, int dirfd, const char *name)
{
	long n = 0;
	struct dirent *e;
	int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	if (!d) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	while ((e = readdir(d)))
		if (--l->budget < 0) {
			n = -1;
			break;
		} else if (e->d_name[0] != '.' && has_jpeg_suffix(e->d_name))
			n++;
	closedir(d);
	return n;
}

static void add_info(struct lister *l, const char *prefix, const char *name, const char *kind,
		     long records, long classes)
{
	struct pn_dataset_info *i;
	if (l->n >= l->max)
		return;
	i = &l->out[l->n];
	if (snprintf(i->name, sizeof(i->name), "%s%s", prefix, name) >= (int)sizeof(i->name))
		return; /* a name too long to show */
	i->kind = kind;
	i->records = records;
	i->classes = classes;
	l->n++;
}

/* The datasets in the folder open at fd (taken), names under prefix. */
static void list_folder(struct lister *l, int fd, const char *prefix, int depth)
{
	struct dirent *e;
	long seen = 0;
	DIR *d = fdopendir(fd);
	if (!d) {
		close(fd);
		return;
	}
	while ((e = readdir(d)) && l->n < l->max && --l->budget >= 0 &&
	       ++seen <= LIST_DIR_ENTRIES) {
		struct stat st;
		char sub[256];
		if (e->d_name[0] == '.' ||
		    fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			continue;
		if (S_ISREG(st.st_mode)) {
			uint8_t label = 0xff;
			int nlabels = l->nclasses > 0 ? l->nclasses : 10;
			if (has_jpeg_suffix(e->d_name) || st.st_size == 0 ||
			    st.st_size % PN_CIFAR_RECORD_BYTES != 0)
				continue;
			/* One byte read, the first label: not a JPEG, a class. */
			int f = openat(dirfd(d), e->d_name, OPEN_FLAGS | O_NOFOLLOW);
			if (f >= 0) {
				if (pread_full(f, &label, 1, 0) < 0)
					label = 0xff;
				close(f);
			}
			if (label < nlabels)
				add_info(l, prefix, e->d_name, "cifar10-bin",
					 (long)(st.st_size / PN_CIFAR_RECORD_BYTES), nlabels);
			continue;
		}
		if (!S_ISDIR(st.st_mode))
			continue;
		/* A folder whose sub-folders are all classes is a dataset;
		 * another one is looked into. */
		int sfd = openat(dirfd(d), e->d_name,
				 O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		DIR *sd = sfd >= 0 ? fdopendir(sfd) : NULL;
		struct dirent *se;
		long records = 0, nclasses = 0, others = 0;
		if (!sd) {
			if (sfd >= 0)
				close(sfd);
			continue;
		}
		while ((se = readdir(sd)) && --l->budget >= 0) {
			struct stat sst;
			if (se->d_name[0] == '.' ||
			    fstatat(dirfd(sd), se->d_name, &sst, AT_SYMLINK_NOFOLLOW) < 0 ||
			    !S_ISDIR(sst.st_mode))
				continue;
			if (class_index(l, se->d_name) < 0) {
				others++;
				continue;
			}
			long n = count_jpegs(l, dirfd(sd), se->d_name);
			nclasses++;
			records = n < 0 || records < 0 ? -1 : records + n;
		}
		closedir(sd);
		if (l->budget < 0)
			break;
		if (nclasses && !others) {
			add_info(l, prefix, e->d_name, "jpeg-folder", records, nclasses);
		} else if (depth < 2 && (size_t)snprintf(sub, sizeof(sub), "%s%s/", prefix,
							 e->d_name) < sizeof(sub)) {
			int cfd = openat(dirfd(d), e->d_name,
					 O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (cfd >= 0)
				list_folder(l, cfd, sub, depth + 1);
		}
	}
	closedir(d);
}

static int cmp_info(const void *a, const void *b)
{
	return strcmp(((const struct pn_dataset_info *)a)->name,
		      ((const struct pn_dataset_info *)b)->name);
}

size_t pn_datadir_list(const struct pn_datadir *d, const char *const *classes, int nclasses,
		       struct pn_dataset_info *out, size_t max)
{
	struct lister l = {classes, nclasses, out, max, 0, LIST_MAX_ENTRIES};
	int fd;
	if (!d || !out || max == 0)
		return 0;
	fd = openat(d->fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	list_folder(&l, fd, "", 1);
	if (l.n > 1)
		qsort(out, l.n, sizeof(*out), cmp_info);
	return l.n;
}

/* Fuzz target: a run's dataset name, resolved beneath a data directory
 * as POST /api/v1/runs resolves it, with openat2 and by the O_NOFOLLOW
 * walk in turn. Whatever the name, what is opened lies inside the folder
 * (its /proc/self/fd link says so), and a refusal is 400, 403 or 404. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dataset.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char top[PATH_MAX], inside[PATH_MAX + 8];
static int rootfd = -1;
static struct pn_datadir *dir;
static int turn;

static const char *const classes[] = {"cat", "dog"};

static void put(const char *rel, const void *data, size_t len)
{
	char p[PATH_MAX + 64];
	FILE *f;
	snprintf(p, sizeof(p), "%s/%s", top, rel);
	if ((f = fopen(p, "wb"))) {
		fwrite(data, 1, len, f);
		fclose(f);
	}
}

static void cleanup(void)
{
	char cmd[PATH_MAX + 32];
	pn_datadir_free(dir);
	if (rootfd >= 0)
		close(rootfd);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", top);
	if (system(cmd) != 0)
		fprintf(stderr, "fuzz-datapath: cannot remove %s\n", top);
}

/* TOP/secret.bin outside; TOP/data with files, a class folder and
 * symbolic links leading in and out. */
static int setup(void)
{
	static const uint8_t rec[PN_CIFAR_RECORD_BYTES];
	const char *tmp = getenv("TMPDIR");
	char p[PATH_MAX + 64], err[256];
	snprintf(top, sizeof(top), "%s/pn-fuzz-datapath-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(top))
		return -1;
	atexit(cleanup);
	put("secret.bin", rec, sizeof(rec));
	snprintf(p, sizeof(p), "%s/data", top);
	mkdir(p, 0700);
	snprintf(p, sizeof(p), "%s/data/sub", top);
	mkdir(p, 0700);
	snprintf(p, sizeof(p), "%s/data/imgs", top);
	mkdir(p, 0700);
	snprintf(p, sizeof(p), "%s/data/imgs/cat", top);
	mkdir(p, 0700);
	put("data/a.bin", rec, sizeof(rec));
	put("data/sub/b.bin", rec, sizeof(rec));
	put("data/imgs/cat/x.jpg", "not a jpeg", 10);
	snprintf(p, sizeof(p), "%s/data/out", top);
	if (symlink("../secret.bin", p) < 0)
		return -1;
	snprintf(p, sizeof(p), "%s/data/up", top);
	if (symlink("..", p) < 0)
		return -1;
	snprintf(p, sizeof(p), "%s/data/sub/in", top);
	if (symlink("../a.bin", p) < 0)
		return -1;
	snprintf(p, sizeof(p), "%s/data/abs", top);
	if (symlink("/etc", p) < 0)
		return -1;
	snprintf(p, sizeof(p), "%s/data", top);
	if (!realpath(p, inside) || (rootfd = open(p, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0 ||
	    !(dir = pn_datadir_open(p, err, sizeof(err))))
		return -1;
	return 0;
}

/* fd's file lies inside the data directory, or it is the folder. */
static int is_inside(int fd)
{
	char link[64], target[PATH_MAX];
	size_t n = strlen(inside);
	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	ssize_t len = readlink(link, target, sizeof(target) - 1);
	if (len < 0)
		return 1; /* no /proc: nothing to check against */
	target[len] = '\0';
	return strncmp(target, inside, n) == 0 && (target[n] == '/' || target[n] == '\0');
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char name[2048], err[512];
	int status = 0, fd;
	struct pn_dataset *ds;
	if (!dir && setup() < 0)
		abort();
	if (size >= sizeof(name))
		return 0;
	memcpy(name, data, size);
	name[size] = '\0';
	pn_open_beneath_walk_only(turn++ & 1);
	fd = pn_open_beneath(rootfd, name, &status, err, sizeof(err));
	if (fd >= 0) {
		if (!is_inside(fd))
			abort();
		close(fd);
	} else if (status != 400 && status != 403 && status != 404) {
		abort();
	}
	ds = pn_dataset_open_at(dir, name, classes, 2, &status, err, sizeof(err));
	if (!ds && status != 400 && status != 403 && status != 404)
		abort();
	pn_dataset_free(ds);
	return 0;
}

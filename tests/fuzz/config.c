/* Fuzz target: a pipenetd configuration file (JSON object of settings),
 * loaded and cross-checked as --config FILE does. */
#define _GNU_SOURCE
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

#include "settings.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int fd = memfd_create("pipenet-config", MFD_CLOEXEC);
	if (fd < 0)
		return 0;
	if (write(fd, data, size) == (ssize_t)size) {
		char path[64], err[512];
		struct pn_config c;
		snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
		pn_config_init(&c);
		if (pn_config_load(&c, path, err, sizeof err) == 0)
			pn_config_check(&c, err, sizeof err);
		pn_config_free(&c);
	}
	close(fd);
	return 0;
}

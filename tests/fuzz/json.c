/* Fuzz target: a JSON request body, loaded as pn_req_json loads every
 * body, read field by field with the pn_json_* helpers as the run and
 * split routes read theirs, and handed to pn_stage_configure (PUT
 * /v1/stage) of a stage holding the 32x32 model from the source tree. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <jansson.h>

#include "http.h"
#include "log.h"
#include "loop.h"
#include "model.h"
#include "sha256.h"
#include "stage.h"

#ifndef PN_TOP_SRCDIR
#define PN_TOP_SRCDIR "."
#endif

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct pn_stage *stage_once(void)
{
	static struct pn_loop *loop;
	static struct pn_model *model;
	static struct pn_stage *stage;
	static char sha[65];
	static const char *path = PN_TOP_SRCDIR "/models/mobilenetv2_cifar10_32.safetensors";
	char err[512];
	if (stage)
		return stage;
	pn_log_set_level(PN_LOG_ERROR);
	loop = pn_loop_new();
	model = pn_model_load(path, &pn_ops_scalar, err, sizeof err);
	if (!loop || !model || pn_sha256_file(path, sha, err, sizeof err) != 0) {
		fprintf(stderr, "fuzz-json: %s: %s\n", path, model ? "cannot hash" : err);
		abort();
	}
	static const struct pn_stage_opts o = {
		.queue_depth = 2,
		.out_depth = 1,
		.retry_s = 1,
		.max_batch = 16,
	};
	stage = pn_stage_new(loop, NULL, model, path, sha, &o);
	if (!stage)
		abort();
	return stage;
}

/* The keys of POST /api/v1/runs, read the way its handler reads them. */
static void run_fields(json_t *j)
{
	static const char *const known[] = {"dataset",	  "offset", "stride", "samples",
					    "batch_size", "mode",   "split",  "max_inflight",
					    "wire",	  NULL};
	char err[256];
	long long v;
	const char *str;
	pn_json_known(j, known, err, sizeof err);
	pn_json_str(j, "dataset", NULL, &str, err, sizeof err);
	pn_json_str(j, "mode", "pipelined", &str, err, sizeof err);
	pn_json_str(j, "wire", "f32", &str, err, sizeof err);
	pn_json_int(j, "offset", 0, 1 << 30, 0, &v, err, sizeof err);
	pn_json_int(j, "stride", 1, 1 << 20, 1, &v, err, sizeof err);
	pn_json_int(j, "samples", 1, 1 << 30, -1, &v, err, sizeof err);
	pn_json_int(j, "batch_size", 1, 4096, 8, &v, err, sizeof err);
	pn_json_int(j, "max_inflight", 1, 1024, 4, &v, err, sizeof err);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[256];
	json_t *j = pn_json_parse_object(data, size, err, sizeof err);
	if (!j)
		return 0;
	run_fields(j);
	json_t *reply = NULL;
	pn_stage_configure(stage_once(), j, &reply);
	json_decref(reply);
	json_decref(j);
	return 0;
}

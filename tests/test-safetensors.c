/* Broken model files: each kind of damage gets an error that names the
 * file and the tensor or key at fault, and nothing crashes (this test also
 * runs under ASan+UBSan). The broken files are made from the shipped
 * 32x32 model by editing its JSON header. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "model.h"
#include "tap.h"

static uint8_t *orig;
static size_t orig_size, orig_hlen;
static char dir[] = "/tmp/pn-st-XXXXXX";

static int load_original(const char *path)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return -1;
	fseek(f, 0, SEEK_END);
	orig_size = (size_t)ftell(f);
	fseek(f, 0, SEEK_SET);
	orig = malloc(orig_size);
	if (!orig || fread(orig, 1, orig_size, f) != orig_size) {
		fclose(f);
		return -1;
	}
	fclose(f);
	orig_hlen = 0;
	for (int i = 7; i >= 0; i--)
		orig_hlen = orig_hlen << 8 | orig[i];
	return 0;
}

static json_t *header(void)
{
	return json_loadb((const char *)orig + 8, orig_hlen, 0, NULL);
}

/* Writes header h (stolen) followed by data bytes [0, data_len) of the
 * original. */
static void write_model(const char *path, json_t *h, size_t data_len)
{
	char *text = json_dumps(h, JSON_COMPACT);
	size_t hlen = strlen(text);
	FILE *f = fopen(path, "wb");
	uint8_t len[8];
	for (int i = 0; i < 8; i++)
		len[i] = (uint8_t)((uint64_t)hlen >> (8 * i));
	fwrite(len, 1, 8, f);
	fwrite(text, 1, hlen, f);
	fwrite(orig + 8 + orig_hlen, 1, data_len, f);
	fclose(f);
	free(text);
	json_decref(h);
}

static void write_bytes(const char *path, const void *p, size_t n)
{
	FILE *f = fopen(path, "wb");
	fwrite(p, 1, n, f);
	fclose(f);
}

static void expect_error(const char *path, const char *what, const char *needle)
{
	char err[512] = "";
	struct pn_model *m = pn_model_load(path, &pn_ops_scalar, err, sizeof err);
	int ok = m == NULL && strstr(err, needle) != NULL && strstr(err, path) != NULL;
	tap_ok(ok, "%s: refused with \"%s\"", what, err);
	if (!ok)
		tap_diag("expected a message containing \"%s\" and the path", needle);
	pn_model_free(m);
}

static json_t *tensor(json_t *h, const char *name)
{
	return json_object_get(h, name);
}

int main(void)
{
	const char *top = getenv("top_srcdir");
	char model[1024], path[1200];
	snprintf(model, sizeof model, "%s/models/mobilenetv2_cifar10_32.safetensors",
		 top ? top : ".");
	if (load_original(model) < 0) {
		tap_ok(0, "read %s", model);
		return tap_done();
	}
	if (!mkdtemp(dir)) {
		tap_ok(0, "mkdtemp");
		return tap_done();
	}
	const size_t data_len = orig_size - 8 - orig_hlen;
	json_t *h;

	/* The unmodified header written back loads: the harness is sound. */
	snprintf(path, sizeof path, "%s/same.safetensors", dir);
	write_model(path, header(), data_len);
	char err[512];
	struct pn_model *m = pn_model_load(path, &pn_ops_scalar, err, sizeof err);
	tap_ok(m != NULL && pn_model_blocks(m) == 19 && pn_model_num_classes(m) == 10,
	       "rewritten original loads: 19 blocks, 10 classes");
	if (m) {
		uint64_t params = 0, macs = 0;
		for (int i = 0; i < 19; i++) {
			params += pn_model_block_params(m, i);
			macs += pn_model_block_macs(m, i);
		}
		tap_ok(params == 2236682, "parameter count %llu equals PyTorch's 2236682",
		       (unsigned long long)params);
		tap_diag("MACs per image at 32x32: %.1f M", macs / 1e6);
		struct pn_shape s = pn_model_shape(m, 18);
		tap_ok(s.h == 4 && s.w == 4 && s.c == 320, "block 18 input is 4x4x320");
	}
	pn_model_free(m);

	snprintf(path, sizeof path, "%s/does-not-exist.safetensors", dir);
	expect_error(path, "missing file", "cannot open");

	snprintf(path, sizeof path, "%s/short.safetensors", dir);
	write_bytes(path, orig, 5);
	expect_error(path, "5-byte file", "too short");

	snprintf(path, sizeof path, "%s/hlen.safetensors", dir);
	{
		uint8_t buf[64];
		memcpy(buf, orig, sizeof buf);
		buf[0] = 0xff;
		buf[1] = 0xff;
		buf[2] = 0xff;
		write_bytes(path, buf, sizeof buf);
	}
	expect_error(path, "header length past the end", "runs past the end of the file");

	snprintf(path, sizeof path, "%s/json.safetensors", dir);
	{
		uint8_t *buf = malloc(orig_size);
		memcpy(buf, orig, orig_size);
		buf[8] = 'x'; /* the header's opening brace */
		write_bytes(path, buf, orig_size);
		free(buf);
	}
	expect_error(path, "invalid JSON header", "not valid JSON");

	snprintf(path, sizeof path, "%s/truncated.safetensors", dir);
	write_model(path, header(), data_len / 2);
	expect_error(path, "data cut in half", "run past the end of the data");

	h = header();
	json_object_del(h, "features.5.conv.1.0.weight");
	snprintf(path, sizeof path, "%s/missing.safetensors", dir);
	write_model(path, h, data_len);
	expect_error(path, "tensor missing", "features.5.conv.1.0.weight is missing");

	h = header();
	json_object_set_new(tensor(h, "features.7.conv.1.1.bias"), "dtype", json_string("I32"));
	snprintf(path, sizeof path, "%s/dtype.safetensors", dir);
	write_model(path, h, data_len);
	expect_error(path, "wrong dtype", "features.7.conv.1.1.bias has dtype I32, expected F32");

	h = header();
	json_object_set_new(tensor(h, "features.2.conv.1.0.weight"), "shape",
			    json_pack("[i,i,i,i]", 96, 1, 9, 1));
	snprintf(path, sizeof path, "%s/shape.safetensors", dir);
	write_model(path, h, data_len);
	expect_error(path, "wrong shape",
		     "features.2.conv.1.0.weight has shape [96, 1, 9, 1], expected [96, 1, 3, 3]");

	h = header();
	/* Same byte count, but block 2's projection no longer takes its 96
	 * expanded channels. */
	json_object_set_new(tensor(h, "features.2.conv.2.weight"), "shape",
			    json_pack("[i,i,i,i]", 32, 72, 1, 1));
	snprintf(path, sizeof path, "%s/chain.safetensors", dir);
	write_model(path, h, data_len);
	expect_error(
		path, "channels that do not chain",
		"features.2.conv.2.weight: expected a 1x1 convolution of shape [out, 96, 1, 1]");

	h = header();
	json_object_set_new(tensor(h, "classifier.1.bias"), "data_offsets",
			    json_pack("[I,I]", (json_int_t)data_len, (json_int_t)data_len + 40));
	snprintf(path, sizeof path, "%s/offsets.safetensors", dir);
	write_model(path, h, data_len);
	expect_error(path, "offsets outside the data", "classifier.1.bias");

	h = header();
	{
		json_t *a =
			json_object_get(tensor(h, "features.1.conv.0.1.weight"), "data_offsets");
		json_t *b = tensor(h, "features.1.conv.0.1.bias");
		json_object_set(b, "data_offsets", a);
	}
	snprintf(path, sizeof path, "%s/overlap.safetensors", dir);
	write_model(path, h, data_len);
	expect_error(path, "overlapping tensors", "overlap");

	h = header();
	json_object_set_new(tensor(h, "features.4.conv.1.1.weight"), "shape",
			    json_pack("[i]", 150));
	snprintf(path, sizeof path, "%s/bytes.safetensors", dir);
	write_model(path, h, data_len);
	expect_error(path, "byte count disagreeing with shape", "features.4.conv.1.1.weight");

	h = header();
	json_object_del(json_object_get(h, "__metadata__"), "input_size");
	snprintf(path, sizeof path, "%s/nometa.safetensors", dir);
	write_model(path, h, data_len);
	expect_error(path, "metadata key missing", "metadata key input_size is missing");

	static const struct {
		const char *key, *value, *needle;
	} bad_meta[] = {
		{"mean", "0.5,0.5", "metadata key mean"},
		{"std", "0.2,0,0.2", "metadata key std"},
		{"input_size", "big", "metadata key input_size"},
		{"num_classes", "11", "num_classes is 11"},
		{"feature_strides", "1,1,3", "metadata key feature_strides"},
		{"feature_strides", "1,1,1,1,2,1,1,2,1,1,1,1,1,1,2,1,1,1,2", "stride 2"},
		{"bn_eps", "-1", "metadata key bn_eps"},
		{"classes", "a,,b,c,d,e,f,g,h,i", "empty name"},
	};
	for (size_t i = 0; i < sizeof bad_meta / sizeof bad_meta[0]; i++) {
		h = header();
		json_object_set_new(json_object_get(h, "__metadata__"), bad_meta[i].key,
				    json_string(bad_meta[i].value));
		snprintf(path, sizeof path, "%s/meta%zu.safetensors", dir, i);
		write_model(path, h, data_len);
		char what[128];
		snprintf(what, sizeof what, "metadata %s=\"%s\"", bad_meta[i].key,
			 bad_meta[i].value);
		expect_error(path, what, bad_meta[i].needle);
	}

	h = header();
	json_object_set_new(json_object_get(h, "__metadata__"), "input_size", json_integer(32));
	snprintf(path, sizeof path, "%s/metatype.safetensors", dir);
	write_model(path, h, data_len);
	expect_error(path, "metadata value not a string", "metadata key input_size");

	/* A negative running variance would make the folded weights NaN. */
	h = header();
	{
		json_t *t = tensor(h, "features.0.1.running_var");
		json_t *o = json_object_get(t, "data_offsets");
		size_t begin = (size_t)json_integer_value(json_array_get(o, 0));
		uint8_t *data = orig + 8 + orig_hlen;
		float neg = -1.0f;
		uint8_t save[4];
		memcpy(save, data + begin, 4);
		memcpy(data + begin, &neg, 4);
		snprintf(path, sizeof path, "%s/var.safetensors", dir);
		write_model(path, h, data_len);
		memcpy(data + begin, save, 4);
	}
	expect_error(path, "negative running_var", "features.0.1.running_var[0]");

	/* Clean up the temporary folder. */
	char cmd[1300];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		tap_diag("could not remove %s", dir);
	free(orig);
	return tap_done();
}

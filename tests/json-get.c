/* json-get PATH: prints the value at PATH of the JSON document on stdin,
 * for the shell tests. PATH is a jq-like subset: .key, [index], chained
 * (".stages[1].compute_ms"; [-1] is the last element); "." is the whole
 * document. Strings print
 * bare, other values as compact JSON; `length` after the path
 * (".runs|length") prints an array's or object's size. Exit 1 when the
 * path is absent. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: json-get PATH < FILE.json\n");
		return 2;
	}
	json_error_t jerr;
	json_t *root = json_loadf(stdin, 0, &jerr);
	if (!root) {
		fprintf(stderr, "json-get: stdin: %s\n", jerr.text);
		return 1;
	}
	const char *p = argv[1];
	json_t *v = root;
	int length = 0;
	while (*p && v) {
		if (strcmp(p, "|length") == 0) {
			length = 1;
			break;
		}
		if (*p == '.') {
			p++;
			size_t n = strcspn(p, ".[|");
			if (n == 0)
				continue;
			char key[256];
			if (n >= sizeof(key))
				return 1;
			memcpy(key, p, n);
			key[n] = '\0';
			v = json_object_get(v, key);
			p += n;
		} else if (*p == '[') {
			char *end;
			long i = strtol(p + 1, &end, 10);
			if (*end != ']')
				return 2;
			if (i < 0)
				i += (long)json_array_size(v);
			v = i < 0 ? NULL : json_array_get(v, (size_t)i);
			p = end + 1;
		} else {
			return 2;
		}
	}
	int rc = 1;
	if (v && length) {
		printf("%zu\n", json_is_array(v) ? json_array_size(v) : json_object_size(v));
		rc = 0;
	} else if (v && json_is_string(v)) {
		printf("%s\n", json_string_value(v));
		rc = 0;
	} else if (v) {
		char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
		printf("%s\n", s ? s : "");
		free(s);
		rc = 0;
	}
	json_decref(root);
	return rc;
}

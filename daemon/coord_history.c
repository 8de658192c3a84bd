/* A run's figures over time, kept so its charts can be drawn after it
 * ends: a row a second (the summary event's throughput figures) and a row
 * a batch (latency, accuracy so far). Each is a fixed buffer: when full,
 * every other row goes and one row is kept per twice as many offered, so
 * a run of any length keeps its whole shape in the same memory. */
#include "coord_internal.h"

static void history_add(struct history *h, const double *row)
{
	if (h->every < 1)
		h->every = 1;
	memcpy(h->last, row, sizeof(h->last));
	h->last_kept = 0;
	uint64_t idx = h->offered++;
	if (idx % (uint64_t)h->every != 0)
		return;
	if (h->n == HISTORY_ROWS) {
		for (int i = 0; i < HISTORY_ROWS / 2; i++)
			memcpy(h->v[i], h->v[2 * i], sizeof(h->v[0]));
		h->n = HISTORY_ROWS / 2;
		h->every *= 2;
		if (idx % (uint64_t)h->every != 0)
			return;
	}
	memcpy(h->v[h->n++], row, sizeof(h->v[0]));
	h->last_kept = 1;
}

static double number(json_t *j, const char *key)
{
	json_t *v = json_object_get(j, key);
	return json_is_number(v) ? json_number_value(v) : NAN;
}

void history_second(struct run *r, json_t *summary, uint64_t now)
{
	double row[HISTORY_COLS] = {r->t_start && now > r->t_start ? ms(now - r->t_start) / 1e3 : 0,
				    number(summary, "img_s_now"), number(summary, "img_s_overall"),
				    number(summary, "predicted_img_s")};
	history_add(&r->seconds, row);
}

void history_batch(struct run *r, double latency_ms)
{
	double row[HISTORY_COLS] = {(double)r->images_done, latency_ms,
				    r->labelled ? (double)r->correct / (double)r->labelled : NAN,
				    0};
	history_add(&r->batches, row);
}

static void append(json_t *a, double v, int integer)
{
	json_array_append_new(a, !isfinite(v) ? json_null()
				 : integer    ? json_integer((json_int_t)v)
					      : json_real(v));
}

/* Column by column, the newest row included even when it was not kept;
 * column 0 is a count when `counted`. */
static json_t *columns_json(const struct history *h, const char *const *names, int ncols,
			    int counted)
{
	json_t *j = json_pack("{s:i}", "kept_every", h->every ? h->every : 1);
	for (int c = 0; c < ncols; c++) {
		json_t *a = json_array();
		for (int i = 0; i < h->n; i++)
			append(a, h->v[i][c], counted && c == 0);
		if (h->offered && !h->last_kept)
			append(a, h->last[c], counted && c == 0);
		json_object_set_new(j, names[c], a);
	}
	return j;
}

json_t *history_json(const struct run *r)
{
	static const char *const seconds[] = {"t_s", "img_s_now", "img_s_overall",
					      "predicted_img_s"};
	static const char *const batches[] = {"images_done", "latency_ms", "accuracy"};
	json_t *j = json_pack("{s:i, s:s, s:o, s:o}", "run", r->id, "state", state_names[r->state],
			      "seconds", columns_json(&r->seconds, seconds, 4, 0), "batches",
			      columns_json(&r->batches, batches, 3, 1));
	/* The summary events' "time" minus t_s, so live points join the history. */
	json_object_set_new(j, "start_time",
			    r->t_start ? json_real(wall_time() - ms(pn_now_ns() - r->t_start) / 1e3)
				       : json_null());
	return j;
}

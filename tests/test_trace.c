/* engine/trace.c without a GPU: attributing block records (in slot order)
 * to launches by grid, SM utilisation (interval unions per SM, per tower),
 * the refusals (a grid that does not fit, records left over or missing),
 * and the Chrome trace JSON being valid JSON with one row per SM. */
#include "config.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "testutil.h"
#include "trace.h"

static mmf_trace_rec rec(unsigned long long t0, unsigned long long t1, unsigned sm, unsigned block, unsigned part,
			 unsigned grid)
{
	mmf_trace_rec r = {t0, t1, sm, block, part, grid};
	return r;
}

static int analyse(const mmf_trace_rec *r, unsigned n, const trace_launch *l, int nl, int nsm, trace_util *u, mmf_err *err,
		   gpu_trace **keep)
{
	gpu_trace *t = NULL;
	int rc = gpu_trace_from_records(r, n, &t, err);
	if (rc == 0)
		rc = gpu_trace_analyse(t, l, nl, nsm, u, err);
	if (keep && rc == 0)
		*keep = t;
	else
		gpu_trace_free(t);
	return rc;
}

int main(void)
{
	mmf_err err = {0};
	trace_util u;
	/* Two SMs. Launch 0 (image, grid 2): SM0 [0,100), SM1 [0,50).
	 * Launch 1 (text, grid 1): SM0 [120,200). Launch 2 (fused inter, grid 2):
	 * SM0 image part [200,260), SM1 text part [210,300). Records are in
	 * slot order (launch by launch), times as they fell. */
	mmf_trace_rec r[] = {
		rec(0, 100, 0, 0, 0, 2), rec(0, 50, 1, 1, 0, 2), rec(120, 200, 0, 0, 0, 1),
		rec(200, 260, 0, 0, 1, 2), rec(210, 300, 1, 1, 2, 2),
	};
	trace_launch l[3] = {{"conv1", TRACE_IMAGE, 1}, {"block0.ln1", TRACE_TEXT, 1}, {"conv2 + block0.qkv", TRACE_BOTH, 1}};
	gpu_trace *t = NULL;
	int rc = analyse(r, 5, l, 3, 2, &u, &err, &t);
	CHECK(rc == 0, "analyse: %s", err.msg);
	/* span 300; SM0 busy [0,100)+[120,260) = 240, SM1 [0,50)+[210,300) = 140 */
	CHECK(fabs(u.span_us - 0.3) < 1e-9, "span %g us", u.span_us);
	CHECK(fabs(u.total - 380.0 / 600) < 1e-9, "total %g, expected %g", u.total, 380.0 / 600);
	/* image: SM0 [0,100)+[200,260) = 160, SM1 [0,50) = 50; text: SM0 [120,200) = 80, SM1 [210,300) = 90 */
	CHECK(fabs(u.image - 210.0 / 600) < 1e-9, "image %g", u.image);
	CHECK(fabs(u.text - 170.0 / 600) < 1e-9, "text %g", u.text);
	CHECK(u.records == 5 && u.sms_seen == 2, "records %d, SMs %d", u.records, u.sms_seen);

	/* the Chrome trace: valid JSON, a row name per SM, one slice per record and per launch */
	char path[] = "/tmp/mmf-test-trace-XXXXXX";
	int fd = mkstemp(path);
	if (fd >= 0)
		close(fd);
	trace_extra x[2] = {{TRACE_ROW_HOST, 7, "cudaLaunchKernel", 900, 1500}, {TRACE_ROW_STREAM, 13, "gemm_kernel", 1000, 2000}};
	rc = gpu_trace_write_chrome(t, l, 3, x, 2, "test \"trace\"", path, &err);
	CHECK(rc == 0, "write: %s", err.msg);
	json_error_t je;
	json_t *j = json_load_file(path, 0, &je);
	CHECK(j != NULL, "trace JSON does not parse: %s (line %d)", je.text, je.line);
	int slices = 0, sm_rows = 0, launches = 0, host = 0, streams = 0, groups = 0;
	json_t *ev = json_object_get(j, "traceEvents");
	for (size_t i = 0; i < json_array_size(ev); i++) {
		json_t *e = json_array_get(ev, i);
		const char *ph = json_string_value(json_object_get(e, "ph"));
		int pid = (int)json_integer_value(json_object_get(e, "pid"));
		if (ph && !strcmp(ph, "X") && pid == 2)
			slices++;
		if (ph && !strcmp(ph, "X") && pid == 1)
			launches++;
		if (ph && !strcmp(ph, "X") && pid == TRACE_ROW_HOST)
			host += json_integer_value(json_object_get(e, "tid")) == 7 &&
				fabs(json_real_value(json_object_get(e, "ts")) - 0.9) < 1e-9;
		if (ph && !strcmp(ph, "X") && pid == TRACE_ROW_STREAM)
			streams += fabs(json_real_value(json_object_get(e, "dur")) - 1.0) < 1e-9;
		if (ph && !strcmp(ph, "M") && !strcmp(json_string_value(json_object_get(e, "name")), "process_name"))
			groups++;
		if (ph && !strcmp(ph, "M") && !strcmp(json_string_value(json_object_get(e, "name")), "thread_name"))
			sm_rows++;
	}
	CHECK(slices == 5 && launches == 3 && sm_rows == 2, "%d slices, %d launches, %d SM rows", slices, launches, sm_rows);
	CHECK(host == 1 && streams == 1 && groups == 4, "extra rows: %d host, %d stream slices, %d groups", host, streams, groups);
	unsigned long long s0 = 1, s2 = 0, s9;
	CHECK(gpu_trace_launch_start(t, 0, &s0) == 0 && s0 == 0 && gpu_trace_launch_start(t, 2, &s2) == 0 && s2 == 200 &&
		      gpu_trace_launch_start(t, 9, &s9) == -1,
	      "launch starts %llu %llu", s0, s2);
	json_decref(j);
	unlink(path);
	gpu_trace_free(t);

	/* several steps as one document: launches named per step, one time base */
	{
		mmf_trace_rec r1[] = {rec(1000, 1100, 0, 0, 0, 1)}, r2[] = {rec(5000, 5300, 1, 0, 0, 1)};
		trace_launch la[1] = {{"conv1", TRACE_IMAGE, 1}}, lb[1] = {{"block0.ln1", TRACE_TEXT, 1}};
		gpu_trace *ta = NULL, *tb = NULL;
		CHECK(analyse(r1, 1, la, 1, 2, &u, &err, &ta) == 0 && analyse(r2, 1, lb, 1, 2, &u, &err, &tb) == 0, "steps: %s",
		      err.msg);
		if (ta && tb) {
			const trace_step steps[2] = {{ta, la, 1}, {tb, lb, 1}};
			char *js = gpu_trace_chrome_steps(steps, 2, "two steps", &err);
			json_t *d = js ? json_loads(js, 0, &je) : NULL;
			CHECK(d != NULL, "steps JSON does not parse: %s", js ? je.text : err.msg);
			int named = 0, later = 0;
			json_t *evs = json_object_get(d, "traceEvents");
			for (size_t i = 0; i < json_array_size(evs); i++) {
				json_t *e = json_array_get(evs, i);
				const char *nm = json_string_value(json_object_get(e, "name"));
				if (json_integer_value(json_object_get(e, "pid")) == 1 && nm && !strcmp(nm, "step 1: block0.ln1")) {
					named++;
					later += fabs(json_real_value(json_object_get(e, "ts")) - 4.0) < 1e-9;
				}
			}
			CHECK(named == 1 && later == 1, "step 1's launch: %d named, %d at 4 us", named, later);
			json_decref(d);
			free(js);
		}
		gpu_trace_free(ta), gpu_trace_free(tb);
	}

	/* intra-block fusion: two records per block */
	mmf_trace_rec ib[] = {rec(0, 10, 0, 0, 1, 1), rec(0, 20, 0, 0, 2, 1)};
	trace_launch lib[1] = {{"a + b", TRACE_BOTH, 2}};
	CHECK(analyse(ib, 2, lib, 1, 1, &u, &err, NULL) == 0, "intra-block: %s", err.msg);
	CHECK(fabs(u.total - 1) < 1e-9 && fabs(u.image - 0.5) < 1e-9 && fabs(u.text - 1) < 1e-9, "intra-block %g %g %g",
	      u.total, u.image, u.text);

	/* two streams: a text launch whose block ran during the image launch
	 * (its slot still comes after the image launch's) */
	mmf_trace_rec st[] = {rec(0, 100, 0, 0, 0, 1), rec(10, 60, 1, 0, 0, 1)};
	trace_launch lst[2] = {{"conv1", TRACE_IMAGE, 1}, {"block0.ln1", TRACE_TEXT, 1}};
	CHECK(analyse(st, 2, lst, 2, 2, &u, &err, NULL) == 0, "two streams: %s", err.msg);
	CHECK(fabs(u.total - 150.0 / 200) < 1e-9 && fabs(u.image - 0.5) < 1e-9 && fabs(u.text - 0.25) < 1e-9,
	      "two streams %g %g %g", u.total, u.image, u.text);

	/* refusals, each with its message */
	trace_launch two[2] = {{"x", TRACE_IMAGE, 1}, {"y", TRACE_TEXT, 1}};
	mmf_trace_rec mixed[] = {rec(0, 10, 0, 0, 0, 2), rec(1, 11, 0, 0, 0, 3), rec(20, 30, 0, 0, 0, 1)};
	CHECK(analyse(mixed, 3, two, 2, 1, &u, &err, NULL) == -EINVAL, "overlapping launches accepted");
	CHECK_MSG(err.msg, "launch 0 ('x')", "do not follow the launches");
	mmf_trace_rec few[] = {rec(0, 10, 0, 0, 0, 3)};
	CHECK(analyse(few, 1, two, 2, 1, &u, &err, NULL) == -EINVAL, "missing records accepted");
	CHECK_MSG(err.msg, "has only 1 of its 3 records");
	mmf_trace_rec extra[] = {rec(0, 10, 0, 0, 0, 1), rec(20, 30, 0, 0, 0, 1), rec(40, 50, 0, 0, 0, 1)};
	CHECK(analyse(extra, 3, two, 2, 1, &u, &err, NULL) == -EINVAL, "records left over accepted");
	CHECK_MSG(err.msg, "1 records left after the 2 launches");
	CHECK(analyse(extra, 0, two, 2, 1, &u, &err, NULL) == -EINVAL, "no records accepted");
	CHECK_MSG(err.msg, "records end at launch 0 of 2");
	/* The launch order of two towers on two streams: in turn, op by op. */
	op oi[3] = {{.name = "i0"}, {.name = "i1"}, {.name = "i2"}}, ot[1] = {{.name = "t0"}};
	chain ci = {.ops = oi, .nops = 3}, ct = {.ops = ot, .nops = 1};
	trace_launch *tl = NULL;
	int n2 = trace_launches_chains(&ci, &ct, 1, &tl);
	CHECK(n2 == 4 && !strcmp(tl[0].name, "i0") && tl[0].tower == 0 && !strcmp(tl[1].name, "t0") && tl[1].tower == 1 &&
		      !strcmp(tl[2].name, "i1") && !strcmp(tl[3].name, "i2") && tl[3].tower == 0,
	      "two-stream launch order: %d launches", n2);
	free(tl);
	/* and one after the other on one stream */
	n2 = trace_launches_chains(&ci, &ct, 0, &tl);
	CHECK(n2 == 4 && !strcmp(tl[0].name, "i0") && !strcmp(tl[2].name, "i2") && !strcmp(tl[3].name, "t0") &&
		      tl[3].tower == 1,
	      "one-stream launch order: %d launches", n2);
	free(tl);
	/* the turn order when the second list is the longer */
	int w, i;
	chain_turn(1, 3, 3, &w, &i);
	CHECK(w == 1 && i == 2, "chain_turn(1, 3, 3) = list %d op %d, expected list 1 op 2", w, i);
	return test_done("test_trace");
}

/* mmf-bench: runs the CLIP towers and reports latency, on the CPU backend or
 * (bench/gpu_bench.c) on the GPU in every execution mode and SM partition. */
#include "config.h"
#include "engine/sortcmp.h"

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "engine/chain.h"
#include "engine/cpu.h"
#include "engine/model.h"
#include "engine/synth.h"
#include "gpu_bench.h"	/* GPU_BENCH_MAX_SPLITS: --split-sms is parsed (and refused) without CUDA too */
#include "infer.h"
#ifdef MMF_GPU_BENCH
#include "engine/plan.h"
#include "report.h"
#endif

static void usage(FILE *fp)
{
	fprintf(fp,
		"Usage: mmf-bench [OPTIONS]\n"
		"       mmf-bench [--model FILE] [--device cpu|cuda] --image FILE... [--text TEXT...]\n"
		"Run the CLIP image and text towers and report per-tower latency; or, with\n"
		"--image/--text/--labels, run real inputs in process: every image against\n"
		"every text as zero-shot probabilities (softmax over the texts, most likely\n"
		"first), or the embeddings when only one kind is given.\n"
		"\n"
		"Real inputs:\n"
		"  --image FILE        a JPEG or PNG image (repeatable)\n"
		"  --text TEXT         a text (repeatable)\n"
		"  --labels \"a,b,c\"   comma-separated texts, added after the --text ones\n"
		"  --vocab FILE        CLIP BPE vocabulary [$MMF_BPE_VOCAB, else the installed\n"
		"                      bpe_simple_vocab_16e6.txt.gz]\n"
		"  --out FILE          write the embeddings as raw float32 (images, then texts)\n"
		"  --tokenize          only print each text's token ids (JSON; no model), also of\n"
		"                      every string in --texts-json FILE (a JSON array)\n"
		"  --json FILE         write embeddings, token ids and logits as JSON\n"
		"\n"
		"Options:\n"
		"  --model FILE|NAME   open_clip safetensors file, or a synthetic configuration\n"
		"                      (tiny, small, rn50, rn101, rn50x4: written once with seeded\n"
		"                      weights under $MMF_CACHE, default /tmp/mmf-cache) [rn50]\n"
		"  --device cpu|cuda   backend [cpu]\n"
		"  --weights W         auto, fp16, int8 or fp32: int8 quantises every convolution\n"
		"                      and linear weight per output channel at load (the CPU then\n"
		"                      computes with the dequantised values; CUDA runs int8\n"
		"                      weights); fp32 runs CUDA in fp32 on the CUDA cores (SIMT\n"
		"                      kernels, no tensor cores: the baseline); auto is int8 for\n"
		"                      a file written by mmf-mkmodel --quantize, else fp16 [auto]\n"
		"  --sms LIST          cuda: SM partitions to run in, e.g. 8,16,32,all; each is a\n"
		"                      green context of that many SMs (L2 and DRAM bandwidth are\n"
		"                      not partitioned) [all]\n"
		"  --modes LIST        cuda: seq, streams, graph, graph-streams, fused, fused-graph,\n"
		"                      graph-split [all seven]; the fused modes run the\n"
		"                      partition's plan; graph-split runs the image tower on the\n"
		"                      partition's first SMs and the text tower on the others\n"
		"                      (green contexts), each with GEMM shapes tuned on its own\n"
		"                      SMs, as one graph (needs two groups of SMs: 16 on Hopper)\n"
		"  --split-sms LIST    cuda: image-tower SM counts graph-split tries, the fastest\n"
		"                      in a short trial kept [half the partition and two groups\n"
		"                      either side, e.g. 48,56,64,72,80 of 132]\n"
		"  --strategy S        cuda: fuse pairs with inter, intra-block, intra-thread or\n"
		"                      auto (best measured per pair) [auto]\n"
		"  --plan              cuda: print each partition's fusion plan (planned once and\n"
		"                      cached under $MMF_CACHE/plans)\n"
		"  --profile MODE      cuda: run one seq or fused iteration of the first partition\n"
		"                      between cudaProfilerStart/Stop (for ncu --profile-from-start\n"
		"                      off; see tools/ncu_metrics.sh) and list its launches in\n"
		"                      --profile-ops FILE [profile-ops.csv]\n"
		"  --trace FILE        cuda: per-block records of one seq, streams, graph-streams and\n"
		"                      fused iteration of every partition: SM utilisation (total,\n"
		"                      per tower) and the cost of tracing; the first partition's\n"
		"                      fused iteration written to FILE as Chrome trace JSON (open\n"
		"                      in Perfetto)\n"
		"  --trace-mode MODE   cuda: write the seq, streams, graph-streams or fused\n"
		"                      iteration to the --trace FILE instead [fused; seq when\n"
		"                      there is no plan]\n"
		"  --report DIR        cuda: run the analysis report's scenario matrix into DIR:\n"
		"                      fp16, int8 and fp32 x batch 1, 4, 8 x fusion strategy\n"
		"                      (auto with every mode, per-SM traces and SM utilisation;\n"
		"                      inter, intra-block, intra-thread with the fused modes), on\n"
		"                      each --sms partition [8,16,32,all], plus the PyTorch peer\n"
		"                      (tools/torch_baseline.py; open_clip must import); then\n"
		"                      tools/report.py writes DIR/REPORT.md and its plots\n"
		"                      (matplotlib). Finished scenarios are kept: rerun to resume\n"
		"  --report-quick      with --report: batch 1 and strategy auto only\n"
		"  --report-gpus N     with --report: run N scenarios at once, one per GPU of\n"
		"                      this machine (CUDA_VISIBLE_DEVICES) [1]\n"
		"  --pairs             cuda: also time each stage's 3x3 conv paired with the text\n"
		"                      QKV GEMM, MLP GEMM and attention (and conv x conv) in\n"
		"                      sequence, on two streams and fused by each strategy\n"
		"  --dram-gbs X        cuda, experimental: limit each partition's DRAM bandwidth\n"
		"                      to about X GB/s with a hog on every other SM, its pace\n"
		"                      calibrated against the partition's streaming copy (not\n"
		"                      with 'all'). The floor is the GPU's: an H100 reaches 250\n"
		"                      GB/s at 8 SMs and 450 at 16, not a Jetson's 68-205, and\n"
		"                      the hog also slows the partition's GEMMs\n"
		"                      (docs/PARTITIONS.md); a target below it, or one the\n"
		"                      hog cannot hold within 10%%, is refused\n"
		"  --no-tune           cuda: pick GEMM tile shapes by heuristic instead of timing\n"
		"  --tune-sms N        cuda: time GEMM shapes on an N-SM partition (default: the\n"
		"                      partition being run; smaller sizes each GEMM for a share)\n"
		"  --tune-graph LIST   cuda: on these partitions (a --sms list) tune each GEMM's\n"
		"                      shape again, one GEMM at a time, against the time of the\n"
		"                      whole two-tower graph (graph-streams; graph-split on its\n"
		"                      own towers): slow, 1-2 minutes a partition per mode\n"
		"  --batch N           images and texts per run [1]\n"
		"  --iters N           timed runs per tower [20 on cpu, 200 on cuda]\n"
		"  --warmup N          untimed runs first [2 on cpu, 20 on cuda]\n"
		"  --threads N         CPU threads (0: all cores) [0]\n"
		"  --seed N            seed for inputs and synthetic weights [1]\n"
		"  --chain             print both op chains (shapes, FLOPs, bytes) and exit\n"
		"  --ops               add a per-op table (time; on cuda also TFLOP/s, GB/s and %%\n"
		"                      of the roofline measured on that partition)\n"
		"  --json FILE         also write the results as JSON to FILE\n"
		"  -h, --help          this text\n"
		"\n"
		"Environment:\n"
		"  MMF_CACHE           synthetic models and fusion plans [/tmp/mmf-cache]\n"
		"  MMF_COMMIT          the commit named in --json results [the build's]\n"
		"  MMF_PDL, MMF_CLUSTER, MMF_POOL_FOLD and MMF_GEMV are switches: 1 (the\n"
		"  default) or 0; any other value is an error.\n"
		"  MMF_PDL=0           cuda: no programmatic dependent launch (on by default on\n"
		"                      sm_90 and later)\n"
		"  MMF_CLUSTER=0       cuda: split-K GEMMs reduce through a global workspace and\n"
		"                      ticket instead of thread-block clusters (clusters are the\n"
		"                      default on sm_90 and later; the results are the same bits)\n"
		"  MMF_SPLIT_TUNE=alone cuda: graph-split tunes each tower's GEMM shapes alone on\n"
		"                      its SMs only [and then again while the other tower runs]\n"
		"  MMF_POOL_FOLD=0     cuda: fp16 models run the attention pool with k and v\n"
		"                      computed for every token (a tokens x 2C x C GEMM) instead\n"
		"                      of folded into the weights (two weight passes against a\n"
		"                      vector, the default: the same result summed in another\n"
		"                      order; no fusion for those two ops)\n"
		"  MMF_GEMV=0          cuda: fp16 linears of at most 8 rows (batch 1: the\n"
		"                      attention pool's q and c_proj, the text projection) run\n"
		"                      as tensor-core GEMM tiles instead of the default\n"
		"                      weight-streaming matrix-vector tile (untuned, never fused)\n");
}

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static double pct(double *v, int n, double p)
{
	qsort(v, (size_t)n, sizeof *v, mmf_cmp_double);
	double idx = p * (n - 1);
	int lo = (int)idx;
	return lo + 1 < n ? v[lo] + (idx - lo) * (v[lo + 1] - v[lo]) : v[lo];
}

static void note_stderr(const char *msg) { fprintf(stderr, "mmf-bench: %s\n", msg); }

typedef struct op_times { double *ms; double last; } op_times;

static void op_hook(void *ud, const chain *c, int i, const float *out, int batch)
{
	(void)out, (void)batch;
	op_times *t = ud;
	double n = now_ms();
	if (i >= 0 && i < c->nops)
		t->ms[i] += n - t->last;
	t->last = n;
}

typedef struct tower_result {
	double p10, p50, p90, p99;
	int finite;
	double norm_min, norm_max;
} tower_result;

static int bench_tower(const chain *c, int batch, int iters, int warmup, unsigned long long seed, int ops,
		       float *emb, tower_result *r, mmf_err *err)
{
	const clip_config *cfg = &c->model->cfg;
	cpu_engine *e;
	int rc = cpu_engine_new(c, batch, &e, err);
	if (rc < 0)
		return rc;
	float *px = NULL;
	int32_t *tok = NULL;
	double *times = NULL;
	op_times ot = {NULL, 0};
	if (c->tower == TOWER_IMAGE) {
		size_t n = (size_t)batch * 3 * cfg->image_size * cfg->image_size;
		if (!(px = malloc(n * sizeof *px)))
			goto oom;
	} else if (!(tok = malloc((size_t)batch * cfg->context * sizeof *tok)))
		goto oom;
	clip_synth_inputs(cfg, batch, seed, px, tok);
	times = calloc((size_t)iters, sizeof *times);
	ot.ms = calloc((size_t)c->nops, sizeof(double));
	if (!times || !ot.ms)
		goto oom;
	for (int it = -warmup; it < iters; it++) {
		if (ops && it >= 0) {
			cpu_engine_set_hook(e, op_hook, &ot);
			ot.last = now_ms();
		}
		double t0 = now_ms();
		rc = c->tower == TOWER_IMAGE ? cpu_embed_image(e, px, batch, emb, err) : cpu_embed_text(e, tok, batch, emb, err);
		if (rc < 0)
			goto out;
		if (it >= 0)
			times[it] = now_ms() - t0;
	}
	r->p50 = pct(times, iters, 0.5);
	r->p10 = pct(times, iters, 0.1);
	r->p90 = pct(times, iters, 0.9);
	r->p99 = pct(times, iters, 0.99);
	int E = cfg->embed_dim;
	r->finite = 1;
	r->norm_min = INFINITY, r->norm_max = 0;
	for (int s = 0; s < batch; s++) {
		double ss = 0;
		for (int j = 0; j < E; j++) {
			float v = emb[(size_t)s * E + j];
			if (!isfinite(v))
				r->finite = 0;
			ss += (double)v * v;
		}
		r->norm_min = fmin(r->norm_min, sqrt(ss));
		r->norm_max = fmax(r->norm_max, sqrt(ss));
	}
	if (ops) {
		printf("\nper-op time, %s tower (CPU, mean of %d runs, batch %d)\n", tower_name(c->tower), iters, batch);
		printf("%4s  %-26s %-12s %10s %10s\n", "#", "op", "kind", "ms", "GFLOP/s");
		for (int i = 0; i < c->nops; i++) {
			double ms = ot.ms[i] / iters;
			printf("%4d  %-26s %-12s %10.3f %10.2f\n", i, c->ops[i].name, op_kind_name(c->ops[i].kind), ms,
			       ms > 0 ? c->ops[i].flops * batch / ms / 1e6 : 0);
		}
	}
	rc = 0;
	goto out;
oom:
	rc = mmf_err_set(err, -ENOMEM, "out of memory");
out:
	free(ot.ms);
	free(times);
	free(px);
	free(tok);
	cpu_engine_free(e);
	return rc;
}

static void cpu_name(char *buf, size_t len)
{
	snprintf(buf, len, "unknown");
	FILE *fp = fopen("/proc/cpuinfo", "r");
	if (!fp)
		return;
	char line[512];
	while (fgets(line, sizeof line, fp))
		if (!strncmp(line, "model name", 10)) {
			char *p = strchr(line, ':');
			if (p) {
				p += 1 + (p[1] == ' ');
				p[strcspn(p, "\n")] = 0;
				snprintf(buf, len, "%s", p);
			}
			break;
		}
	fclose(fp);
}

/* The commit this binary was built from: $MMF_COMMIT when set (a copied
 * tree has no .git), else git's HEAD here. */
static void git_commit(char *buf, size_t len)
{
	const char *env = getenv("MMF_COMMIT");
	if (env && *env) {
		snprintf(buf, len, "%s", env);
		return;
	}
	snprintf(buf, len, "unknown");
	FILE *fp = popen("git rev-parse --short=12 HEAD 2>/dev/null", "r");
	if (!fp)
		return;
	if (fgets(buf, (int)len, fp))
		buf[strcspn(buf, "\n")] = 0;
	else
		snprintf(buf, len, "unknown");
	pclose(fp);
}

int main(int argc, char **argv)
{
	enum { O_MODEL = 256, O_DEVICE, O_BATCH, O_ITERS, O_WARMUP, O_THREADS, O_SEED, O_CHAIN, O_OPS, O_JSON, O_SMS,
	       O_MODES, O_NOTUNE, O_STRATEGY, O_PLAN, O_PAIRS, O_PROFILE, O_PROFILE_OPS, O_TUNE_SMS, O_SPLIT_SMS, O_IMAGE, O_TEXT,
	       O_LABELS, O_VOCAB, O_OUT, O_TOKENIZE, O_TEXTS_JSON, O_TRACE, O_WEIGHTS, O_REPORT, O_REPORT_QUICK,
	       O_REPORT_GPUS, O_DRAM_GBS, O_TRACE_MODE, O_TUNE_GRAPH };
	static const struct option opts[] = {
		{"model", required_argument, 0, O_MODEL}, {"device", required_argument, 0, O_DEVICE},
		{"batch", required_argument, 0, O_BATCH}, {"iters", required_argument, 0, O_ITERS},
		{"warmup", required_argument, 0, O_WARMUP}, {"threads", required_argument, 0, O_THREADS},
		{"seed", required_argument, 0, O_SEED}, {"chain", no_argument, 0, O_CHAIN},
		{"ops", no_argument, 0, O_OPS}, {"json", required_argument, 0, O_JSON},
		{"sms", required_argument, 0, O_SMS}, {"modes", required_argument, 0, O_MODES},
		{"no-tune", no_argument, 0, O_NOTUNE}, {"tune-sms", required_argument, 0, O_TUNE_SMS},
		{"tune-graph", required_argument, 0, O_TUNE_GRAPH},
		{"split-sms", required_argument, 0, O_SPLIT_SMS}, {"strategy", required_argument, 0, O_STRATEGY},
		{"plan", no_argument, 0, O_PLAN}, {"pairs", no_argument, 0, O_PAIRS},
		{"profile", required_argument, 0, O_PROFILE}, {"profile-ops", required_argument, 0, O_PROFILE_OPS},
		{"image", required_argument, 0, O_IMAGE}, {"text", required_argument, 0, O_TEXT},
		{"labels", required_argument, 0, O_LABELS}, {"vocab", required_argument, 0, O_VOCAB},
		{"out", required_argument, 0, O_OUT}, {"tokenize", no_argument, 0, O_TOKENIZE},
		{"texts-json", required_argument, 0, O_TEXTS_JSON}, {"trace", required_argument, 0, O_TRACE},
		{"weights", required_argument, 0, O_WEIGHTS}, {"report", required_argument, 0, O_REPORT},
		{"report-quick", no_argument, 0, O_REPORT_QUICK}, {"report-gpus", required_argument, 0, O_REPORT_GPUS},
		{"dram-gbs", required_argument, 0, O_DRAM_GBS}, {"trace-mode", required_argument, 0, O_TRACE_MODE},
		{"help", no_argument, 0, 'h'}, {0, 0, 0, 0},
	};
	/* --image and --text/--labels collect at most one per argument */
	/* static: still reachable (not a leak) when an option error returns early */
	static const char **images, **texts;
	images = calloc((size_t)argc, sizeof *images);
	texts = calloc((size_t)argc * 2 + 1, sizeof *texts);
	int nimages = 0, ntexts = 0;
	const char *vocab = NULL, *out_path = NULL, *texts_json = NULL, *trace = NULL, *trace_mode = NULL;
	int tokenize = 0;
	if (!images || !texts) {
		fprintf(stderr, "mmf-bench: out of memory\n");
		return 1;
	}
	const char *model_arg = "rn50", *device = "cpu", *json = NULL, *sms = "all", *modes = "seq,streams,graph,graph-streams,fused,fused-graph,graph-split", *strategy = "auto", *profile = NULL,
		   *profile_ops = "profile-ops.csv";
	int batch = 1, iters = -1, warmup = -1, threads = 0, show_chain = 0, ops = 0, tune = 1, show_plan = 0, pairs = 0, tune_sms = 0, c;
	const char *tune_graph = NULL;
	unsigned long long seed = 1;
	clip_weights weights = CLIP_WEIGHTS_AUTO;
	const char *report = NULL;
	int split_sms[GPU_BENCH_MAX_SPLITS], nsplit = 0;
	int report_quick = 0, sms_given = 0, report_gpus = 1;
	double dram_gbs = 0;
	const char *cuda_only = NULL;	/* the first CUDA-only option given */
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		char *end = NULL;
		if (!cuda_only && (c == O_SMS || c == O_MODES || c == O_NOTUNE || c == O_TUNE_SMS || c == O_TUNE_GRAPH || c == O_SPLIT_SMS || c == O_STRATEGY ||
				   c == O_PLAN || c == O_PAIRS || c == O_PROFILE || c == O_PROFILE_OPS || c == O_TRACE ||
				   c == O_DRAM_GBS || c == O_TRACE_MODE))
			for (const struct option *q = opts; q->name; q++)
				if (q->val == c)
					cuda_only = q->name;
		long v = 0;
		if (c == O_BATCH || c == O_ITERS || c == O_WARMUP || c == O_THREADS || c == O_SEED || c == O_TUNE_SMS ||
		    c == O_REPORT_GPUS) {
			errno = 0;
			v = strtol(optarg, &end, 10);
			if (errno || *end || !*optarg || v < 0 || v > 1000000 || ((c == O_BATCH || c == O_ITERS) && v < 1) ||
			    (c == O_REPORT_GPUS && (v < 1 || v > 64))) {
				const char *name = "?";
				for (const struct option *q = opts; q->name; q++)
					if (q->val == c)
						name = q->name;
				fprintf(stderr, "mmf-bench: --%s '%s': expected a%s integer\n", name, optarg,
					c == O_REPORT_GPUS ? " 1..64" : c == O_BATCH || c == O_ITERS ? " positive" : " non-negative");
				return 2;
			}
		}
		switch (c) {
		case 'h': usage(stdout); return 0;
		case O_MODEL: model_arg = optarg; break;
		case O_DEVICE: device = optarg; break;
		case O_BATCH: batch = (int)v; break;
		case O_ITERS: iters = (int)v; break;
		case O_WARMUP: warmup = (int)v; break;
		case O_THREADS: threads = (int)v; break;
		case O_SEED: seed = (unsigned long long)v; break;
		case O_CHAIN: show_chain = 1; break;
		case O_OPS: ops = 1; break;
		case O_JSON: json = optarg; break;
		case O_SMS: sms = optarg, sms_given = 1; break;
		case O_REPORT: report = optarg; break;
		case O_REPORT_QUICK: report_quick = 1; break;
		case O_REPORT_GPUS: report_gpus = (int)v; break;
		case O_MODES: modes = optarg; break;
		case O_NOTUNE: tune = 0; break;
		case O_TUNE_GRAPH: tune_graph = optarg; break;
		case O_TUNE_SMS: tune_sms = (int)v; break;
		case O_SPLIT_SMS:
			nsplit = 0;
			for (const char *q = optarg;;) {
				errno = 0;
				long k = strtol(q, &end, 10);
				if (errno || end == q || k < 1 || k > 100000 || (*end && *end != ',')) {
					fprintf(stderr, "mmf-bench: --split-sms '%s': expected a comma-separated list of positive SM "
						"counts\n", optarg);
					return 2;
				}
				if (nsplit == GPU_BENCH_MAX_SPLITS) {
					fprintf(stderr, "mmf-bench: --split-sms '%s': more than %d counts\n", optarg, GPU_BENCH_MAX_SPLITS);
					return 2;
				}
				split_sms[nsplit++] = (int)k;
				if (!*end)
					break;
				q = end + 1;
			}
			break;
		case O_DRAM_GBS:
			errno = 0;
			dram_gbs = strtod(optarg, &end);
			if (errno || *end || !*optarg || !(dram_gbs >= 1 && dram_gbs <= 100000)) {
				fprintf(stderr, "mmf-bench: --dram-gbs '%s': expected a bandwidth in GB/s, 1 to 100000\n", optarg);
				return 2;
			}
			break;
		case O_STRATEGY:
			if (strcmp(optarg, "inter") && strcmp(optarg, "intra-block") && strcmp(optarg, "intra-thread") &&
			    strcmp(optarg, "auto")) {
				fprintf(stderr, "mmf-bench: --strategy '%s': expected inter, intra-block, intra-thread or auto\n", optarg);
				return 2;
			}
			strategy = optarg;
			break;
		case O_PLAN: show_plan = 1; break;
		case O_PAIRS: pairs = 1; break;
		case O_PROFILE:
			if (strcmp(optarg, "seq") && strcmp(optarg, "fused")) {
				fprintf(stderr, "mmf-bench: --profile '%s': expected seq or fused\n", optarg);
				return 2;
			}
			profile = optarg;
			break;
		case O_PROFILE_OPS: profile_ops = optarg; break;
		case O_IMAGE: images[nimages++] = optarg; break;
		case O_TEXT: texts[ntexts++] = optarg; break;
		case O_LABELS: {
			/* split in place: argv's strings are ours to modify */
			char *save = NULL;
			for (char *t = strtok_r(optarg, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
				while (*t == ' ')
					t++;
				if (*t && ntexts < argc * 2)
					texts[ntexts++] = t;
			}
			break;
		}
		case O_VOCAB: vocab = optarg; break;
		case O_OUT: out_path = optarg; break;
		case O_TOKENIZE: tokenize = 1; break;
		case O_TEXTS_JSON: texts_json = optarg; break;
		case O_TRACE: trace = optarg; break;
		case O_TRACE_MODE:
			if (strcmp(optarg, "seq") && strcmp(optarg, "streams") && strcmp(optarg, "graph-streams") &&
			    strcmp(optarg, "fused")) {
				fprintf(stderr, "mmf-bench: --trace-mode '%s': expected seq, streams, graph-streams or fused\n", optarg);
				return 2;
			}
			trace_mode = optarg;
			break;
		case O_WEIGHTS:
			if (clip_weights_parse(optarg, &weights) < 0) {
				fprintf(stderr, "mmf-bench: --weights '%s': expected auto, fp16, int8 or fp32\n", optarg);
				return 2;
			}
			break;
		default: usage(stderr); return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "mmf-bench: unexpected argument '%s' (see --help)\n", argv[optind]);
		return 2;
	}
	if ((report_quick || report_gpus != 1) && !report) {
		fprintf(stderr, "mmf-bench: --report-%s goes with --report\n", report_quick ? "quick" : "gpus");
		return 2;
	}
	if (report && dram_gbs > 0) {
		fprintf(stderr, "mmf-bench: --dram-gbs does not go with --report (its scenarios use the full DRAM bandwidth)\n");
		return 2;
	}
	if (report)
		device = "cuda";
	int cuda = !strcmp(device, "cuda");
	if (!cuda && strcmp(device, "cpu") != 0) {
		fprintf(stderr, "mmf-bench: --device '%s': expected cpu or cuda\n", device);
		return 2;
	}
	if (!cuda && cuda_only) {
		fprintf(stderr, "mmf-bench: --%s applies to --device cuda only\n", cuda_only);
		return 2;
	}
	if (trace_mode && !trace) {
		fprintf(stderr, "mmf-bench: --trace-mode needs --trace FILE\n");
		return 2;
	}
#ifndef MMF_GPU_BENCH
	if (cuda) {
		fprintf(stderr, "mmf-bench: --device cuda: this build has no CUDA backend\n");
		return 2;
	}
#endif
	if (tokenize || texts_json) {
		if (!tokenize || nimages) {
			fprintf(stderr, "mmf-bench: --tokenize takes texts only (--text, --labels, --texts-json)\n");
			return 2;
		}
		infer_opts io = {.texts = texts, .ntexts = ntexts, .vocab = vocab, .json = json};
		return infer_tokenize(&io, texts_json, 77);
	}
	if (iters < 0)
		iters = cuda ? 200 : 20;
	if (warmup < 0)
		warmup = cuda ? 20 : 2;
#ifdef MMF_GPU_BENCH
	if (report) {
		mmf_err rerr = {0};
		char rpath[4096];
		if (clip_model_resolve(model_arg, seed, rpath, sizeof rpath, note_stderr, &rerr) < 0) {
			fprintf(stderr, "mmf-bench: %s\n", rerr.msg);
			return 1;
		}
		report_opts ro = {.dir = report, .model_path = rpath, .sms = sms_given ? sms : "8,16,32,all", .iters = iters,
				  .warmup = warmup, .seed = seed, .quick = report_quick, .gpus = report_gpus};
		return report_run(&ro);
	}
#endif
	mmf_err err = {0};
	char path[4096];
	clip_model *m = NULL;
	chain *ch[2] = {NULL, NULL};
	float *emb[2] = {NULL, NULL};
	int rc = 1;
	int prec = CLIP_PREC_FP16;
	if (clip_model_resolve(model_arg, seed, path, sizeof path, note_stderr, &err) < 0 ||
	    clip_model_load_w(path, weights, &m, &prec, &err) < 0 ||
	    chain_build(m, TOWER_IMAGE, &ch[0], &err) < 0 || chain_build(m, TOWER_TEXT, &ch[1], &err) < 0) {
		fprintf(stderr, "mmf-bench: %s\n", err.msg);
		goto out;
	}
	char desc[256];
	clip_config_str(&m->cfg, desc, sizeof desc);
	printf("model: %s\n  %s\n  %.1f M parameters\n", path, desc, m->nparams / 1e6);
	if (m->nint8 || prec == CLIP_PREC_INT8)
		printf("  weights: %s%s (%d of %d convolution and linear weights int8, per output channel%s)\n",
		       clip_prec_name(prec), prec == CLIP_PREC_INT8 ? "" : ", dequantised from int8", m->nint8, m->nweights,
		       cuda ? "" : "; the CPU computes with their dequantised values");
	if (show_chain) {
		for (int t = 0; t < 2; t++) {
			printf("\n");
			chain_print(ch[t], stdout, batch, 2);
		}
		printf("\n(bytes are the fewest a GPU run must move at fp16: inputs and weights read once, outputs written once)\n");
		rc = 0;
		goto out;
	}
	if (nimages || ntexts) {
		int sms_n = 0;
		if (strcmp(sms, "all")) {
			char *end;
			sms_n = (int)strtol(sms, &end, 10);
			if (*end || sms_n < 0) {
				fprintf(stderr, "mmf-bench: --sms '%s': with --image/--text give one partition (a number or all)\n", sms);
				rc = 2;
				goto out;
			}
		}
		infer_opts io = {.images = images, .nimages = nimages, .texts = texts, .ntexts = ntexts, .vocab = vocab,
				 .cuda = cuda, .sms = sms_n, .threads = threads, .out = out_path, .json = json,
				 .precision = prec};
		rc = infer_run(&io, m, path, ch);
		goto out;
	}
	if (out_path || vocab) {
		fprintf(stderr, "mmf-bench: --%s goes with --image or --text\n", out_path ? "out" : "vocab");
		rc = 2;
		goto out;
	}
	cpu_set_threads(threads);
	char cpu[256], commit[64], date[64];
	cpu_name(cpu, sizeof cpu);
	git_commit(commit, sizeof commit);
	time_t now = time(NULL);
	strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%SZ", gmtime(&now));
#ifdef MMF_GPU_BENCH
	if (cuda) {
		FILE *jf = NULL;
		if (json && !(jf = fopen(json, "w"))) {
			fprintf(stderr, "mmf-bench: %s: cannot write: %s\n", json, strerror(errno));
			goto out;
		}
		if (jf)
			fprintf(jf, "{\n  \"benchmark\": \"mmf-bench\",\n  \"date\": \"%s\",\n  \"commit\": \"%s\",\n  \"device\": \"cuda\",\n"
				"  \"model\": \"%s\",\n  \"config\": \"%s\",\n  \"weights\": \"%s\",\n  \"batch\": %d,\n  \"iters\": %d,\n  \"warmup\": %d,\n  \"host_cpu\": \"%s\",\n",
				date, commit, model_arg, desc, clip_prec_name(prec), batch, iters, warmup, cpu);
		int strat = fuse_strategy_parse(strategy);	/* validated with the options */
		gpu_bench_opts go = {.sms = sms, .modes = modes, .batch = batch, .iters = iters, .warmup = warmup,
				     .ops = ops, .tune = tune, .tune_graph = tune_graph, .seed = seed, .model_name = model_arg, .commit = commit,
				     .date = date, .json = jf, .model_path = path, .strategy = strat, .show_plan = show_plan,
				     .pairs = pairs, .profile = profile, .profile_ops = profile_ops,
				     .tune_sms = tune_sms, .nsplit_sms = nsplit, .trace = trace, .trace_mode = trace_mode, .precision = prec, .dram_gbs = dram_gbs};
		memcpy(go.split_sms, split_sms, sizeof split_sms);
		int g = gpu_bench_run(&go, m, ch);
		if (jf) {
			fprintf(jf, "  \"checks_passed\": %s\n}\n", g == 0 ? "true" : "false");
			fclose(jf);
			printf("results written to %s\n", json);
		}
		rc = g == 0 ? 0 : g == 2 ? 2 : 1;
		goto out;
	}
#endif
	int nthreads = threads ? threads : (int)sysconf(_SC_NPROCESSORS_ONLN);
	printf("device: cpu (%s, %d threads), batch %d, %d iterations after %d warm-up\n", cpu, nthreads, batch, iters, warmup);
	tower_result r[2];
	for (int t = 0; t < 2; t++) {
		if (!(emb[t] = malloc((size_t)batch * m->cfg.embed_dim * sizeof(float)))) {
			fprintf(stderr, "mmf-bench: out of memory\n");
			goto out;
		}
		if (bench_tower(ch[t], batch, iters, warmup, seed, ops, emb[t], &r[t], &err) < 0) {
			fprintf(stderr, "mmf-bench: %s tower: %s\n", tower_name((tower)t), err.msg);
			goto out;
		}
	}
	printf("\n%-8s %10s %10s %10s %12s\n", "tower", "p10 ms", "median ms", "p90 ms", "GFLOP/s");
	for (int t = 0; t < 2; t++)
		printf("%-8s %10.2f %10.2f %10.2f %12.2f\n", tower_name((tower)t), r[t].p10, r[t].p50, r[t].p90,
		       chain_flops(ch[t]) * batch / r[t].p50 / 1e6);
	int ok = r[0].finite && r[1].finite && fabs(r[0].norm_min - 1) < 1e-3 && fabs(r[0].norm_max - 1) < 1e-3 &&
		 fabs(r[1].norm_min - 1) < 1e-3 && fabs(r[1].norm_max - 1) < 1e-3;
	float logit;
	clip_logits(emb[0], 1, emb[1], 1, m->cfg.embed_dim, m->logit_scale, &logit);
	printf("\nembedding check: %s (image and text embeddings finite, norms %.6f..%.6f and %.6f..%.6f; logit[0][0] %.4f)\n",
	       ok ? "ok" : "FAILED", r[0].norm_min, r[0].norm_max, r[1].norm_min, r[1].norm_max, logit);
	if (json) {
		FILE *fp = fopen(json, "w");
		if (!fp) {
			fprintf(stderr, "mmf-bench: %s: cannot write: %s\n", json, strerror(errno));
			goto out;
		}
		fprintf(fp, "{\n  \"benchmark\": \"mmf-bench\",\n  \"date\": \"%s\",\n  \"commit\": \"%s\",\n", date, commit);
		fprintf(fp, "  \"device\": \"cpu\",\n  \"cpu\": \"%s\",\n  \"threads\": %d,\n", cpu, nthreads);
		fprintf(fp, "  \"model\": \"%s\",\n  \"config\": \"%s\",\n  \"weights\": \"%s\",\n  \"batch\": %d,\n  \"iters\": %d,\n  \"warmup\": %d,\n",
			model_arg, desc, m->nint8 ? "int8 (dequantised on the CPU)" : "fp32", batch, iters, warmup);
		fprintf(fp, "  \"towers\": {\n");
		for (int t = 0; t < 2; t++)
			fprintf(fp, "    \"%s\": {\"p10_ms\": %.4f, \"median_ms\": %.4f, \"p90_ms\": %.4f, \"p99_ms\": %.4f, \"gflop\": %.4f}%s\n",
				tower_name((tower)t), r[t].p10, r[t].p50, r[t].p90, r[t].p99, chain_flops(ch[t]) * batch / 1e9, t ? "" : ",");
		fprintf(fp, "  },\n  \"embedding_check\": %s\n}\n", ok ? "true" : "false");
		fclose(fp);
		printf("results written to %s\n", json);
	}
	rc = ok ? 0 : 1;
out:
	free(images);
	free(texts);
	free(emb[0]);
	free(emb[1]);
	chain_free(ch[0]);
	chain_free(ch[1]);
	clip_model_free(m);
	return rc;
}

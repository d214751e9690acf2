/* mmf-mkmodel: writes a CLIP ModifiedResNet model with seeded random
 * weights as an open_clip safetensors file. */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sys/stat.h>
#include <unistd.h>

#include "engine/model.h"
#include "engine/quant.h"
#include "engine/synth.h"

static void usage(FILE *fp)
{
	fprintf(fp,
		"Usage: mmf-mkmodel [OPTIONS] CONFIG OUT.safetensors\n"
		"       mmf-mkmodel --quantize IN.safetensors|CONFIG OUT.safetensors\n"
		"Write a CLIP ModifiedResNet model with seeded random weights, as an open_clip\n"
		"safetensors state dict (open_clip key names, BatchNorm not folded).\n"
		"With --quantize, write the model IN (an open_clip file, or CONFIG's seeded\n"
		"weights) with every convolution and linear weight as int8, symmetric per\n"
		"output channel: the tensor keeps its name and shape as I8, and\n"
		"<name>_scale holds its F32 scales (docs/INT8.md). mmfd and mmf-bench run\n"
		"such a file with int8 weights (--weights auto).\n"
		"\n"
		"CONFIG is one of:\n"
		"  tiny     image 64,  width 16, layers 1,1,1,1, embed 64;  text 64 wide, 2 layers\n"
		"  small    image 224, width 16, layers 3,4,6,3, embed 128; text 128 wide, 12 layers\n"
		"  rn50     image 224, width 64, layers 3,4,6,3, embed 1024; text 512 wide, 12 layers\n"
		"  rn101    image 224, width 64, layers 3,4,23,3, embed 512; text 512 wide, 12 layers\n"
		"  rn50x4   image 288, width 80, layers 4,6,10,6, embed 640; text 640 wide, 12 layers\n"
		"The options below override single sizes of the named configuration.\n"
		"\n"
		"Options:\n"
		"  --seed N            weight seed (default 1)\n"
		"  --dtype T           f32, f16 or bf16 (default f32, as open_clip publishes)\n"
		"  --image-size N      input size, a multiple of 32\n"
		"  --width N           vision stem width (stage s has 4*width<<s channels)\n"
		"  --layers A,B,C,D    bottleneck blocks per stage\n"
		"  --vision-heads N    attention pool heads\n"
		"  --embed-dim N       joint embedding size\n"
		"  --text-width N      --text-heads N   --text-layers N\n"
		"  --context N         text context length (default 77)\n"
		"  --vocab N           vocabulary size (default 49408)\n"
		"  --gelu              erf GELU in the text MLP instead of QuickGELU\n"
		"  --print             print the configuration and exit without writing\n"
		"  --quantize          write int8 weights (see above)\n"
		"  -h, --help          this text\n");
}

static int parse_int(const char *opt, const char *s, int *out)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno || *s == '\0' || *end || v < 0 || v > 1 << 24) {
		fprintf(stderr, "mmf-mkmodel: %s '%s': expected a non-negative integer\n", opt, s);
		return -1;
	}
	*out = (int)v;
	return 0;
}

/* A progress line on a terminal; nothing in logs (the summary follows). */
static void progress(const char *name, int i, int n)
{
	(void)name;
	if (!isatty(STDERR_FILENO))
		return;
	if (i % 50 == 0 || i == n - 1)
		fprintf(stderr, "\rmmf-mkmodel: quantising: tensor %d of %d", i + 1, n);
	if (i == n - 1)
		fprintf(stderr, "\n");
}

/* --quantize IN OUT, then a check that OUT loads as a model. */
static int quantize_file(const char *in, const char *out)
{
	mmf_err err = {0};
	char tmp[4200];
	snprintf(tmp, sizeof tmp, "%s.tmp-%ld", out, (long)getpid());
	if (mmf_quantize_file(in, tmp, progress, &err) < 0) {
		fprintf(stderr, "mmf-mkmodel: %s\n", err.msg);
		unlink(tmp);
		return 1;
	}
	clip_model *m;
	if (clip_model_load(tmp, &m, &err) < 0) {
		fprintf(stderr, "mmf-mkmodel: the quantised copy does not load: %s\n", err.msg);
		unlink(tmp);
		return 1;
	}
	if (rename(tmp, out) < 0) {
		fprintf(stderr, "mmf-mkmodel: %s: cannot rename to %s: %s\n", tmp, out, strerror(errno));
		unlink(tmp);
		clip_model_free(m);
		return 1;
	}
	struct stat a, b;
	if (stat(in, &a) == 0 && stat(out, &b) == 0)
		fprintf(stderr, "mmf-mkmodel: wrote %s: %d of %d convolution and linear weights int8, %.1f MB (from %.1f MB)\n",
			out, m->nint8, m->nweights, b.st_size / 1e6, a.st_size / 1e6);
	clip_model_free(m);
	return 0;
}

int main(int argc, char **argv)
{
	enum { O_SEED = 256, O_DTYPE, O_IMAGE, O_WIDTH, O_LAYERS, O_VHEADS, O_EMBED, O_TWIDTH, O_THEADS,
	       O_TLAYERS, O_CONTEXT, O_VOCAB, O_GELU, O_PRINT, O_QUANTIZE };
	static const struct option opts[] = {
		{"seed", required_argument, 0, O_SEED}, {"dtype", required_argument, 0, O_DTYPE},
		{"image-size", required_argument, 0, O_IMAGE}, {"width", required_argument, 0, O_WIDTH},
		{"layers", required_argument, 0, O_LAYERS}, {"vision-heads", required_argument, 0, O_VHEADS},
		{"embed-dim", required_argument, 0, O_EMBED}, {"text-width", required_argument, 0, O_TWIDTH},
		{"text-heads", required_argument, 0, O_THEADS}, {"text-layers", required_argument, 0, O_TLAYERS},
		{"context", required_argument, 0, O_CONTEXT}, {"vocab", required_argument, 0, O_VOCAB},
		{"gelu", no_argument, 0, O_GELU}, {"print", no_argument, 0, O_PRINT},
		{"quantize", no_argument, 0, O_QUANTIZE},
		{"help", no_argument, 0, 'h'}, {0, 0, 0, 0},
	};
	struct { int set, val; } ov[O_PRINT - O_SEED + 1] = {{0, 0}};
	unsigned long long seed = 1;
	st_dtype dtype = ST_F32;
	int layers[4] = {0}, have_layers = 0, gelu = 0, print = 0, quantize = 0, c;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'h':
			usage(stdout);
			return 0;
		case O_SEED: {
			char *end;
			errno = 0;
			seed = strtoull(optarg, &end, 0);
			if (errno || *end || !*optarg) {
				fprintf(stderr, "mmf-mkmodel: --seed '%s': expected an integer\n", optarg);
				return 2;
			}
			break;
		}
		case O_DTYPE:
			if (!strcmp(optarg, "f32")) dtype = ST_F32;
			else if (!strcmp(optarg, "f16")) dtype = ST_F16;
			else if (!strcmp(optarg, "bf16")) dtype = ST_BF16;
			else {
				fprintf(stderr, "mmf-mkmodel: --dtype '%s': expected f32, f16 or bf16\n", optarg);
				return 2;
			}
			break;
		case O_LAYERS:
			if (sscanf(optarg, "%d,%d,%d,%d", &layers[0], &layers[1], &layers[2], &layers[3]) != 4) {
				fprintf(stderr, "mmf-mkmodel: --layers '%s': expected four comma-separated counts, e.g. 3,4,6,3\n", optarg);
				return 2;
			}
			have_layers = 1;
			break;
		case O_GELU:
			gelu = 1;
			break;
		case O_PRINT:
			print = 1;
			break;
		case O_QUANTIZE:
			quantize = 1;
			break;
		case '?':
			usage(stderr);
			return 2;
		default:
			if (parse_int(opts[c - O_SEED].name, optarg, &ov[c - O_SEED].val) < 0)
				return 2;
			ov[c - O_SEED].set = 1;
		}
	}
	if (argc - optind != (print ? 1 : 2)) {
		fprintf(stderr, "mmf-mkmodel: expected CONFIG%s (see --help)\n", print ? "" : " and OUT.safetensors");
		return 2;
	}
	clip_config cfg;
	struct stat st;
	size_t alen = strlen(argv[optind]);
	if (quantize && !print &&
	    (stat(argv[optind], &st) == 0 || strchr(argv[optind], '/') ||
	     (alen > 12 && !strcmp(argv[optind] + alen - 12, ".safetensors"))))
		return quantize_file(argv[optind], argv[optind + 1]);
	if (clip_config_named(argv[optind], &cfg) < 0) {
		fprintf(stderr, "mmf-mkmodel: unknown configuration '%s' (expected tiny, small, rn50, rn101 or rn50x4)\n", argv[optind]);
		return 2;
	}
#define OV(opt, field) if (ov[opt - O_SEED].set) cfg.field = ov[opt - O_SEED].val
	OV(O_IMAGE, image_size); OV(O_WIDTH, vision_width); OV(O_VHEADS, vision_heads); OV(O_EMBED, embed_dim);
	OV(O_TWIDTH, text_width); OV(O_THEADS, text_heads); OV(O_TLAYERS, text_layers); OV(O_CONTEXT, context);
	OV(O_VOCAB, vocab);
#undef OV
	if (have_layers)
		memcpy(cfg.vision_layers, layers, sizeof layers);
	if (gelu)
		cfg.quick_gelu = 0;
	mmf_err err = {0};
	if (clip_config_check(&cfg, &err) < 0) {
		fprintf(stderr, "mmf-mkmodel: %s\n", err.msg);
		return 2;
	}
	char desc[256];
	clip_config_str(&cfg, desc, sizeof desc);
	if (print) {
		printf("%s\n", desc);
		return 0;
	}
	const char *out = argv[optind + 1];
	char tmp[4200];
	snprintf(tmp, sizeof tmp, "%s.float-%ld", out, (long)getpid());
	fprintf(stderr, "mmf-mkmodel: writing %s (%s, seed %llu, %s)\n", quantize ? tmp : out, desc, seed, st_dtype_name(dtype));
	if (clip_synth_write(&cfg, seed, dtype, quantize ? tmp : out, &err) < 0) {
		fprintf(stderr, "mmf-mkmodel: %s\n", err.msg);
		return 1;
	}
	if (!quantize)
		return 0;
	int rc = quantize_file(tmp, out);
	unlink(tmp);
	return rc;
}

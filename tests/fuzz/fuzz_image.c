/* fuzz_image: libFuzzer target for the image decoders and the resize.
 *
 * Every input goes through mmf_image_decode() with a 4 Mpx limit (large
 * enough for every code path, small enough that one input stays fast). A
 * rejected input must come back with a negative code, the image zeroed,
 * err.code equal to the code and a NUL-terminated message starting
 * "image: ". An accepted one must be a w x h image inside the limit whose
 * every byte can be read (so ASan sees a short buffer); it is then
 * preprocessed to a size taken from the input's last byte (1..48, so
 * upscales and downscales of every shape happen), and every output value
 * must lie in the range (0/255 - mean)/std .. (255/255 - mean)/std of its
 * channel. Broken promises abort(), which libFuzzer records as a crash.
 *
 * The decoders (and libjpeg/libpng's longjmp error paths) are compiled into
 * the target with the sanitizers; libjpeg-turbo and libpng themselves are
 * the system's, uninstrumented. */
#include "config.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/image.h"

#define FUZZ_MAX_PIXELS (4LL * 1000 * 1000)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define REQUIRE(cond)                                                              \
	do {                                                                       \
		if (!(cond)) {                                                     \
			fprintf(stderr, "fuzz_image: broken promise: %s (line %d)\n", #cond, __LINE__); \
			abort();                                                   \
		}                                                                  \
	} while (0)

static void check_preprocess(const mmf_image *im, int s)
{
	static const float mean[3] = {0.48145466f, 0.4578275f, 0.40821073f};
	static const float std[3] = {0.26862954f, 0.26130258f, 0.27577711f};
	size_t n = (size_t)3 * (size_t)s * (size_t)s;
	float *out = malloc(n * sizeof *out);
	if (!out)
		return;
	mmf_err err;
	memset(&err, 0, sizeof err);
	int rc = mmf_image_preprocess(im->rgb, im->w, im->h, s, out, &err);
	/* Only memory can run out: the sizes are valid. */
	REQUIRE(rc == 0 || rc == -12);
	for (size_t i = 0; rc == 0 && i < n; i++) {
		int c = (int)(i / ((size_t)s * (size_t)s));
		float lo = (0.0f - mean[c]) / std[c] - 1e-5f, hi = (1.0f - mean[c]) / std[c] + 1e-5f;
		REQUIRE(out[i] >= lo && out[i] <= hi);
	}
	free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	mmf_image im;
	mmf_err err;
	memset(&err, 0, sizeof err);
	int rc = mmf_image_decode(data, size, FUZZ_MAX_PIXELS, &im, &err);
	if (rc < 0) {
		REQUIRE(im.rgb == NULL && im.w == 0 && im.h == 0);
		REQUIRE(err.code == rc);
		REQUIRE(memchr(err.msg, '\0', sizeof err.msg) != NULL);
		REQUIRE(strncmp(err.msg, "image: ", 7) == 0);
		return 0;
	}
	REQUIRE(rc == 0 && im.rgb != NULL);
	REQUIRE(im.w > 0 && im.h > 0 && (long long)im.w * im.h <= FUZZ_MAX_PIXELS);
	volatile unsigned sink = 0;
	size_t n = (size_t)im.w * (size_t)im.h * 3;
	for (size_t i = 0; i < n; i++)
		sink += im.rgb[i];
	(void)sink;
	check_preprocess(&im, 1 + (size ? data[size - 1] % 48 : 0));
	mmf_image_free(&im);
	REQUIRE(im.rgb == NULL);
	return 0;
}

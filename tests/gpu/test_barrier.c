/* test_barrier: the intra-thread fused kernel's named-barrier pattern with
 * no op in it (tests/gpu/test_barrier_kernel.cu): every read must see the
 * value written before its barrier, in each variant. check-gpu also runs it
 * under compute-sanitizer racecheck, which settles whether racecheck's
 * report on the intra-thread conv x attention pair (docs/NOTES.md) comes
 * from the barrier pattern itself. */
#include "config.h"

#include <cuda_runtime.h>
#include <stdlib.h>

#include "tests/gpu/gputest.h"
#include "tests/testutil.h"

int test_barrier_run(int variant, int blocks, int iters, unsigned *mismatches);

int main(int argc, char **argv)
{
	/* An argument picks one variant (for a racecheck run per variant). */
	char *end = NULL;
	long only = argc > 1 ? strtol(argv[1], &end, 10) : -1;
	if (argc > 2 || (argc > 1 && (end == argv[1] || *end || only < 0 || only > 5))) {
		fprintf(stderr, "usage: test_barrier [VARIANT]: VARIANT 0 to 5, not '%s'\n", argv[argc > 2 ? 2 : 1]);
		return 2;
	}
	gpu_test_require_device();
	static const char *const what[] = {"team B of 64 on barrier 2 (the attention tile's team)", "team B of 128",
					   "no team B", "variant 0, block-wide sync on barrier 0",
					   "variant 0, the rest pass two barriers of their own",
					   "variant 0, team A on barrier 0"};
	for (int v = 0; v < 6; v++) {
		if (only >= 0 && v != only)
			continue;
		unsigned bad = 1;
		int rc = test_barrier_run(v, 264, 200, &bad);
		CHECK(rc == 0, "variant %d: %s", v, cudaGetErrorString((cudaError_t)rc));
		CHECK(bad == 0, "variant %d (%s): %u reads missed the value written before their barrier", v, what[v], bad);
		printf("variant %d (%s): %u mismatches\n", v, what[v], bad);
	}
	return test_done("test_barrier");
}

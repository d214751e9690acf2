/* launch: the switch behind mmf_launch() (team.cuh), which adds the
 * programmatic-dependent-launch attribute to every kernel launch when on. */
#include "mmf_kernels.h"
#include "mmf_trace.h"

/* Off until the engine turns it on for a device that has it (compute
 * capability 9.0+). */
bool mmf_pdl_on = false;

extern "C" void mmf_set_pdl(int on) { mmf_pdl_on = on != 0; }
extern "C" int mmf_get_pdl(void) { return mmf_pdl_on; }

/* Split-K GEMMs in thread-block clusters (gemm.cu): off until the engine
 * turns it on for a device that has clusters (compute capability 9.0+). */
int mmf_cluster_max = 0;

extern "C" void mmf_set_cluster(int on) { mmf_cluster_max = on ? 8 : 0; }
extern "C" int mmf_get_cluster(void) { return mmf_cluster_max; }

extern "C" int mmf_smem_optin(void)
{
	static int v = -1;
	if (v < 0) {
		int dev = 0;
		if (cudaGetDevice(&dev) != cudaSuccess ||
		    cudaDeviceGetAttribute(&v, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev) != cudaSuccess)
			v = 48 << 10;
	}
	return v;
}

/* Tracing (team.cuh: mmf_launch_traced): the buffer, its size, and the
 * records handed out since tracing was turned on. */
bool mmf_trace_on = false;
static mmf_trace_ctl mmf_trace_buf;
static unsigned int mmf_trace_count;

mmf_trace_rec *mmf_trace_next(unsigned int n)
{
	unsigned int b = mmf_trace_count;
	mmf_trace_count += n;
	return mmf_trace_count <= mmf_trace_buf.cap ? mmf_trace_buf.buf + b : nullptr;
}

extern "C" unsigned int mmf_trace_slots(void) { return mmf_trace_count; }

extern "C" int mmf_trace_set(const mmf_trace_ctl *c)
{
	mmf_trace_on = c && c->buf;
	if (mmf_trace_on) {
		mmf_trace_buf = *c;
		mmf_trace_count = 0;
	}
	return 0;
}

/* launch: the switch behind mmf_launch() (team.cuh), which adds the
 * programmatic-dependent-launch attribute to every kernel launch when on. */
#include "mmf_kernels.h"
#include "mmf_trace.h"

/* Off until the engine turns it on for a device that has it (compute
 * capability 9.0+). */
bool mmf_pdl_on = false;

extern "C" void mmf_set_pdl(int on) { mmf_pdl_on = on != 0; }
extern "C" int mmf_get_pdl(void) { return mmf_pdl_on; }

/* Every kernel unit's tracing control (team.cuh: MMF_TRACE_TU). */
extern "C" int mmf_trace_set_attn_causal(const mmf_trace_ctl *c);
extern "C" int mmf_trace_set_attn_pool(const mmf_trace_ctl *c);
extern "C" int mmf_trace_set_avgpool2(const mmf_trace_ctl *c);
extern "C" int mmf_trace_set_embed(const mmf_trace_ctl *c);
extern "C" int mmf_trace_set_eot_gather(const mmf_trace_ctl *c);
extern "C" int mmf_trace_set_l2norm(const mmf_trace_ctl *c);
extern "C" int mmf_trace_set_layernorm(const mmf_trace_ctl *c);
extern "C" int mmf_trace_set_pool_tokens(const mmf_trace_ctl *c);
extern "C" int mmf_trace_set_gemm(const mmf_trace_ctl *c);
extern "C" int mmf_trace_set_fuse(const mmf_trace_ctl *c);

bool mmf_trace_on = false;
static unsigned int mmf_trace_count;

unsigned int mmf_trace_next(unsigned int n)
{
	unsigned int b = mmf_trace_count;
	mmf_trace_count += n;
	return b;
}

extern "C" unsigned int mmf_trace_slots(void) { return mmf_trace_count; }

extern "C" int mmf_trace_set(const mmf_trace_ctl *c)
{
	mmf_trace_on = c && c->buf;
	if (mmf_trace_on)
		mmf_trace_count = 0;
	return mmf_trace_set_attn_causal(c) == 0 &&
	    mmf_trace_set_attn_pool(c) == 0 &&
	    mmf_trace_set_avgpool2(c) == 0 &&
	    mmf_trace_set_embed(c) == 0 &&
	    mmf_trace_set_eot_gather(c) == 0 &&
	    mmf_trace_set_l2norm(c) == 0 &&
	    mmf_trace_set_layernorm(c) == 0 &&
	    mmf_trace_set_pool_tokens(c) == 0 &&
	    mmf_trace_set_gemm(c) == 0 &&
	    mmf_trace_set_fuse(c) == 0 ? 0 : -5;	/* -EIO */
}

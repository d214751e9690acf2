/* launch: the switch behind mmf_launch() (team.cuh), which adds the
 * programmatic-dependent-launch attribute to every kernel launch when on. */
#include "mmf_kernels.h"

/* Off until the engine turns it on for a device that has it (compute
 * capability 9.0+). */
bool mmf_pdl_on = false;

extern "C" void mmf_set_pdl(int on) { mmf_pdl_on = on != 0; }
extern "C" int mmf_get_pdl(void) { return mmf_pdl_on; }

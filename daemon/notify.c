/* sd_notify and socket activation, when built with libsystemd. */
#include "config.h"
#include "notify.h"

#ifdef HAVE_SYSTEMD
#include <stdio.h>
#include <systemd/sd-daemon.h>

#include "log.h"

void notify_ready(void) { sd_notify(0, "READY=1"); }
void notify_watchdog(void) { sd_notify(0, "WATCHDOG=1"); }
void notify_stopping(void) { sd_notify(0, "STOPPING=1\nSTATUS=draining"); }

void notify_status(const char *line)
{
	char buf[600];
	snprintf(buf, sizeof buf, "STATUS=%s", line);
	sd_notify(0, buf);
}

uint64_t notify_watchdog_usec(void)
{
	uint64_t usec = 0;
	return sd_watchdog_enabled(0, &usec) > 0 ? usec : 0;
}

int notify_listen_fds(void) { return sd_listen_fds(1); }

#else
void notify_ready(void) {}
void notify_watchdog(void) {}
void notify_stopping(void) {}
void notify_status(const char *line) { (void)line; }
uint64_t notify_watchdog_usec(void) { return 0; }
int notify_listen_fds(void) { return 0; }
#endif

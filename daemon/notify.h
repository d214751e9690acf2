/* notify: the systemd service manager interface (sd_notify, sd_listen_fds,
 * the watchdog). Built without libsystemd every call is a no-op and no
 * sockets are passed. */
#ifndef MMFD_NOTIFY_H
#define MMFD_NOTIFY_H

#include <stdint.h>

void notify_ready(void);
void notify_status(const char *line);
void notify_watchdog(void);
void notify_stopping(void);
/* The watchdog interval in us, 0 when systemd does not expect pings. */
uint64_t notify_watchdog_usec(void);
/* Passed listening sockets (starting at fd 3): their count, 0 if none,
 * or -errno. */
int notify_listen_fds(void);

#endif

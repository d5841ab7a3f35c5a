/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The wgfleet authors */
/* notify: telling systemd a daemon is ready, without libsystemd. */
#ifndef WGF_COMMON_NOTIFY_H
#define WGF_COMMON_NOTIFY_H

/*
 * systemd's notify protocol is one datagram to the unix socket named by NOTIFY_SOCKET
 * (a path, or an abstract name starting with '@'). Both daemons run Type=notify and
 * send READY=1 once they serve; without NOTIFY_SOCKET this does nothing.
 */

/* Sends READY=1; 0 when sent or when there is nobody to tell, else a negative errno. */
int wgf_notify_ready(void);

#endif

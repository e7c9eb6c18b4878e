/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * fs-watch.c - the group "fswatch": no methods; with --events fs, the
 * events fs.full (a filesystem got at least --fs-full-threshold percent
 * full, default 90) and fs.full.cleared (below it again), without
 * polling.
 *
 * How it learns of writes: fanotify filesystem marks (FAN_MODIFY, with
 * FAN_REPORT_FID so that no event carries an open file) on every local
 * disk mounted read-write.  The first write after a check stops the
 * reading of fanotify and arms a check CHECK_DELAY_MS later: statvfs of
 * the watched filesystems (local disks: answered from memory), then
 * fanotify is read again.  A busy disk costs one check per
 * CHECK_DELAY_MS, an idle guest nothing.  Mounts come and go: the mount
 * table is watched through its poll notice (/proc/self/mountinfo reports
 * EPOLLPRI on a change; the loop polls for input only, so the file sits
 * in an epoll set of its own whose fd the loop polls).
 *
 * fanotify needs CAP_SYS_ADMIN and Linux 5.1: without them there are no
 * fs.* events (logged once).  A filesystem over the threshold when the
 * agent starts is reported at its first write.  A filesystem is used
 * (used + available) percent as df computes it, rounded up.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/fanotify.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "events.h"
#include "groups.h"
#include "log.h"
#include "methods.h"
#include "mounts.h"

#define CHECK_DELAY_MS 500
#define MAX_WATCHED 256

enum fill { UNKNOWN, BELOW, FULL };

struct watched {
	char *mountpoint, *type, *source;
	unsigned major, minor;
	enum fill fill;
};

struct fswatch {
	struct va_agent *a;
	int fan;                /* fanotify, -1: no events */
	int mfd, ep;            /* mountinfo and its epoll set */
	va_loop_timer *check;
	struct watched *w;
	size_t n;
	char *buf;
};

static void
watched_free(struct watched *w)
{
	free(w->mountpoint);
	free(w->type);
	free(w->source);
}

/* The table of watched filesystems made to match the mounts (marks for new ones). */
static void
rescan(struct fswatch *fw)
{
	struct va_mounts m;

	if (va_mounts_read(&m) < 0) {
		va_mounts_free(&m);
		return;
	}
	struct watched *nw = calloc(MAX_WATCHED, sizeof(*nw));
	size_t nn = 0;
	for (size_t i = 0; nw && i < m.n && nn < MAX_WATCHED; i++) {
		const struct va_mount *mt = &m.v[i];
		if (!va_mounts_writable_disk(&m, i))
			continue;
		struct watched *old = NULL;
		for (size_t k = 0; k < fw->n; k++)
			if (fw->w[k].major == mt->major && fw->w[k].minor == mt->minor &&
			    fw->w[k].mountpoint && strcmp(fw->w[k].mountpoint, mt->mountpoint) == 0)
				old = &fw->w[k];
		if (old) {
			nw[nn++] = *old;
			memset(old, 0, sizeof(*old));
			continue;
		}
		if (fanotify_mark(fw->fan, FAN_MARK_ADD | FAN_MARK_FILESYSTEM, FAN_MODIFY, AT_FDCWD,
				  mt->mountpoint) < 0) {
			va_log_debug("fs events: cannot watch %s: %s", mt->mountpoint, strerror(errno));
			continue;
		}
		struct watched *w = &nw[nn];
		w->mountpoint = strdup(mt->mountpoint);
		w->type = strdup(mt->type);
		w->source = strdup(mt->source);
		w->major = mt->major;
		w->minor = mt->minor;
		w->fill = UNKNOWN;
		if (!w->mountpoint || !w->type || !w->source)
			watched_free(w);
		else
			nn++;
	}
	va_mounts_free(&m);
	if (!nw)
		return;
	for (size_t k = 0; k < fw->n; k++)
		watched_free(&fw->w[k]);
	free(fw->w);
	fw->w = nw;
	fw->n = nn;
}

static void
send_fill(struct fswatch *fw, const struct watched *w, const char *name, const struct statvfs *s,
	  unsigned pct, unsigned threshold)
{
	uint64_t bs = s->f_frsize ? s->f_frsize : s->f_bsize;
	xmlrpc_env env;
	xmlrpc_env_init(&env);
	xmlrpc_value *d = xmlrpc_struct_new(&env);
	va_set_text_z(&env, d, "mountpoint", w->mountpoint);
	va_set_text_z(&env, d, "type", w->type);
	va_set_text_z(&env, d, "device", w->source);
	va_set_int(&env, d, "used_percent", pct);
	va_set_int(&env, d, "threshold_percent", threshold);
	va_set_i8(&env, d, "total_bytes", (int64_t)(s->f_blocks * bs));
	va_set_i8(&env, d, "used_bytes", (int64_t)((s->f_blocks - s->f_bfree) * bs));
	va_set_i8(&env, d, "free_bytes", (int64_t)(s->f_bavail * bs));
	if (!env.fault_occurred) {
		va_log_info("%s: %s is %u%% full (threshold %u%%)", name, w->mountpoint, pct, threshold);
		va_event(fw->a, name, d);
	}
	if (d)
		xmlrpc_DECREF(d);
	xmlrpc_env_clean(&env);
}

static void
check(void *opaque)
{
	struct fswatch *fw = opaque;
	unsigned threshold = va_agent_config(fw->a)->fs_full_threshold;

	for (size_t i = 0; i < fw->n && threshold > 0; i++) {
		struct watched *w = &fw->w[i];
		struct statvfs s;
		if (statvfs(w->mountpoint, &s) < 0)
			continue;
		uint64_t used = s.f_blocks - s.f_bfree, total = used + s.f_bavail;
		/* df's Use%: rounded up. */
		unsigned pct = total ? (unsigned)((used * 100 + total - 1) / total) : 0;
		enum fill now = pct >= threshold ? FULL : BELOW;
		if (now == FULL && w->fill != FULL)
			send_fill(fw, w, "fs.full", &s, pct, threshold);
		else if (now == BELOW && w->fill == FULL)
			send_fill(fw, w, "fs.full.cleared", &s, pct, threshold);
		w->fill = now;
	}
	va_loop_fd_events(va_agent_loop(fw->a), fw->fan, POLLIN);
}

static void
on_fanotify(void *opaque, int fd, unsigned revents)
{
	struct fswatch *fw = opaque;

	(void)revents;
	/* The events say "something was written": which file does not matter. */
	for (int i = 0; i < 64; i++) {
		ssize_t n = read(fd, fw->buf, 4096);
		if (n <= 0 && !(n < 0 && errno == EINTR))
			break;
	}
	va_loop_fd_events(va_agent_loop(fw->a), fd, 0);
	if (!va_loop_timer_armed(fw->check))
		va_loop_timer_in(fw->check, CHECK_DELAY_MS);
}

static void
on_mounts(void *opaque, int fd, unsigned revents)
{
	struct fswatch *fw = opaque;
	struct epoll_event ev[4];

	(void)revents;
	while (epoll_wait(fd, ev, 4, 0) > 0)
		;
	rescan(fw);
}

static int
fswatch_init(struct va_agent *a, void **state)
{
	struct fswatch *fw = calloc(1, sizeof(*fw));

	if (!fw)
		return -1;
	fw->a = a;
	fw->fan = fw->mfd = fw->ep = -1;
	*state = fw;
	if (!(va_agent_config(a)->events & VA_EVENTS_FS))
		return 0;
	fw->buf = malloc(4096);
	fw->check = va_loop_timer_new(va_agent_loop(a), check, fw);
	if (!fw->buf || !fw->check)
		return -1;
	fw->fan = fanotify_init(FAN_CLASS_NOTIF | FAN_REPORT_FID | FAN_NONBLOCK | FAN_CLOEXEC,
				O_RDONLY | O_CLOEXEC);
	if (fw->fan < 0) {
		va_log_warnx("fs events: fanotify: %s; no fs.full events", strerror(errno));
		return 0;
	}
	if (va_loop_fd_set(va_agent_loop(a), fw->fan, POLLIN, on_fanotify, fw) < 0)
		return -1;
	fw->mfd = open("/proc/self/mountinfo", O_RDONLY | O_CLOEXEC);
	fw->ep = epoll_create1(EPOLL_CLOEXEC);
	struct epoll_event ev = { .events = EPOLLPRI };
	if (fw->mfd < 0 || fw->ep < 0 || epoll_ctl(fw->ep, EPOLL_CTL_ADD, fw->mfd, &ev) < 0 ||
	    va_loop_fd_set(va_agent_loop(a), fw->ep, POLLIN, on_mounts, fw) < 0) {
		va_log_warnx("fs events: cannot watch the mount table (%s); new mounts are not "
			     "watched", strerror(errno));
		if (fw->ep >= 0)
			close(fw->ep);
		fw->ep = -1;
	}
	rescan(fw);
	return 0;
}

static void
fswatch_cleanup(void *state)
{
	struct fswatch *fw = state;
	va_loop *l = va_agent_loop(fw->a);

	if (fw->fan >= 0) {
		va_loop_fd_clear(l, fw->fan);
		close(fw->fan);
	}
	if (fw->ep >= 0) {
		va_loop_fd_clear(l, fw->ep);
		close(fw->ep);
	}
	if (fw->mfd >= 0)
		close(fw->mfd);
	va_loop_timer_free(fw->check);
	for (size_t k = 0; k < fw->n; k++)
		watched_free(&fw->w[k]);
	free(fw->w);
	free(fw->buf);
	free(fw);
}

const struct va_method_group va_group_fswatch = {
	.name = "fswatch",
	.init = fswatch_init,
	.cleanup = fswatch_cleanup,
};

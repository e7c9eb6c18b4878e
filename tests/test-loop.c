/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * test-loop.c - the event loop (common/loop.c): fds, timers in order and
 * across re-arming, what a callback may do to others, work posted from
 * other threads, signals, and that an idle loop sleeps.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <CUnit/Basic.h>

#include "cunit-main.h"

#include "loop.h"

/* ---- fds ---- */

struct fdrec {
	int calls;
	unsigned last;
	va_loop *l;
	int clear_fd; /* cleared by this callback when >= 0 */
	int drain;
};

static void
fd_cb(void *opaque, int fd, unsigned revents)
{
	struct fdrec *r = opaque;
	r->calls++;
	r->last = revents;
	if (r->drain) {
		char b[256];
		while (read(fd, b, sizeof(b)) > 0)
			;
	}
	if (r->clear_fd >= 0)
		va_loop_fd_clear(r->l, r->clear_fd);
}

static void
test_fd_read_write(void)
{
	va_loop *l = va_loop_new();
	int sv[2];
	struct fdrec r = { .l = l, .clear_fd = -1, .drain = 1 };

	CU_ASSERT_PTR_NOT_NULL_FATAL(l);
	CU_ASSERT_EQUAL_FATAL(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
	CU_ASSERT_EQUAL(va_loop_fd_set(l, sv[0], POLLIN, fd_cb, &r), 0);
	/* Nothing to read: the pass times out with nothing run. */
	CU_ASSERT_EQUAL(va_loop_run_once(l, 20), 0);
	CU_ASSERT_EQUAL(r.calls, 0);
	CU_ASSERT_EQUAL(write(sv[1], "x", 1), 1);
	CU_ASSERT_EQUAL(va_loop_run_once(l, 1000), 1);
	CU_ASSERT_EQUAL(r.calls, 1);
	CU_ASSERT_EQUAL(r.last, POLLIN);
	/* Writable at once when asked for. */
	CU_ASSERT_EQUAL(va_loop_fd_events(l, sv[0], POLLOUT), 0);
	CU_ASSERT_EQUAL(va_loop_run_once(l, 1000), 1);
	CU_ASSERT_EQUAL(r.last, POLLOUT);
	/* Events 0: out of the wait, even for a hang-up. */
	CU_ASSERT_EQUAL(va_loop_fd_events(l, sv[0], 0), 0);
	close(sv[1]);
	CU_ASSERT_EQUAL(va_loop_run_once(l, 30), 0);
	CU_ASSERT_EQUAL(r.calls, 2);
	/* Back in: the hang-up is reported with POLLIN. */
	CU_ASSERT_EQUAL(va_loop_fd_events(l, sv[0], POLLIN), 0);
	CU_ASSERT_EQUAL(va_loop_run_once(l, 1000), 1);
	CU_ASSERT(r.last & POLLHUP);
	va_loop_fd_clear(l, sv[0]);
	CU_ASSERT_EQUAL(va_loop_run_once(l, 20), 0);
	CU_ASSERT_EQUAL(r.calls, 3);
	/* Unknown fds are fine to clear; events of an unknown fd fail. */
	va_loop_fd_clear(l, 1000);
	CU_ASSERT_EQUAL(va_loop_fd_events(l, 1000, POLLIN), -ENOENT);
	CU_ASSERT_EQUAL(va_loop_fd_set(l, -1, POLLIN, fd_cb, &r), -EINVAL);
	close(sv[0]);
	va_loop_free(l);
}

static void
test_fd_regular_file(void)
{
	va_loop *l = va_loop_new();
	struct fdrec r = { .clear_fd = -1 };
	char path[] = "/tmp/va-loop-XXXXXX";
	int fd = mkstemp(path);

	CU_ASSERT_FATAL(fd >= 0);
	unlink(path);
	CU_ASSERT_EQUAL(va_loop_fd_set(l, fd, POLLIN, fd_cb, &r), -EPERM);
	/* Not registered after the failure. */
	CU_ASSERT_EQUAL(va_loop_fd_events(l, fd, POLLIN), -ENOENT);
	close(fd);
	va_loop_free(l);
}

/* A callback clears another fd that is ready in the same pass: no event of it runs. */
static void
test_fd_cleared_by_other(void)
{
	va_loop *l = va_loop_new();
	int a[2], b[2];
	struct fdrec ra = { .l = l, .drain = 1 }, rb = { .l = l, .drain = 1 };

	CU_ASSERT_EQUAL_FATAL(pipe2(a, O_NONBLOCK), 0);
	CU_ASSERT_EQUAL_FATAL(pipe2(b, O_NONBLOCK), 0);
	ra.clear_fd = b[0];
	rb.clear_fd = a[0];
	CU_ASSERT_EQUAL(va_loop_fd_set(l, a[0], POLLIN, fd_cb, &ra), 0);
	CU_ASSERT_EQUAL(va_loop_fd_set(l, b[0], POLLIN, fd_cb, &rb), 0);
	CU_ASSERT_EQUAL(write(a[1], "x", 1), 1);
	CU_ASSERT_EQUAL(write(b[1], "x", 1), 1);
	CU_ASSERT_EQUAL(va_loop_run_once(l, 1000), 1);
	CU_ASSERT_EQUAL(ra.calls + rb.calls, 1);
	close(a[0]);
	close(a[1]);
	close(b[0]);
	close(b[1]);
	va_loop_free(l);
}

/*
 * An fd number closed and reused by another file (without a clear in
 * between, as happens when the owner re-registers after a reconnect):
 * set again, the new file is polled.
 */
static void
test_fd_number_reused(void)
{
	va_loop *l = va_loop_new();
	int a[2], b[2];
	struct fdrec r = { .l = l, .clear_fd = -1, .drain = 1 };

	CU_ASSERT_EQUAL_FATAL(pipe2(a, O_NONBLOCK), 0);
	CU_ASSERT_EQUAL(va_loop_fd_set(l, a[0], POLLIN, fd_cb, &r), 0);
	int num = a[0];
	close(a[0]); /* epoll forgets it; the loop still has it */
	CU_ASSERT_EQUAL_FATAL(pipe2(b, O_NONBLOCK), 0);
	if (b[0] != num) {
		CU_ASSERT_EQUAL_FATAL(dup2(b[0], num), num);
		close(b[0]);
		b[0] = num;
	}
	CU_ASSERT_EQUAL(va_loop_fd_set(l, num, POLLIN, fd_cb, &r), 0);
	CU_ASSERT_EQUAL(write(b[1], "y", 1), 1);
	CU_ASSERT_EQUAL(va_loop_run_once(l, 1000), 1);
	CU_ASSERT_EQUAL(r.calls, 1);
	va_loop_fd_clear(l, num);
	close(a[1]);
	close(b[0]);
	close(b[1]);
	va_loop_free(l);
}

/* ---- timers ---- */

struct trec {
	int *order;
	int *n;
	int id;
	va_loop_timer *self, *other;
	int rearm_ms; /* >= 0: re-arm itself this far ahead, once */
	int free_other, free_self, stop_other;
	uint64_t ran_at;
};

static void
timer_cb(void *opaque)
{
	struct trec *t = opaque;
	t->order[(*t->n)++] = t->id;
	t->ran_at = va_now_ms();
	if (t->stop_other)
		va_loop_timer_stop(t->other);
	if (t->free_other) {
		va_loop_timer_free(t->other);
		t->other = NULL;
	}
	if (t->rearm_ms >= 0) {
		int ms = t->rearm_ms;
		t->rearm_ms = -1;
		va_loop_timer_in(t->self, (uint64_t)ms);
	}
	if (t->free_self)
		va_loop_timer_free(t->self);
}

static int
run_until(va_loop *l, int *n, int want, int max_ms)
{
	uint64_t end = va_now_ms() + (uint64_t)max_ms;
	while (*n < want && va_now_ms() < end)
		va_loop_run_once(l, 10);
	return *n;
}

static void
test_timer_order(void)
{
	va_loop *l = va_loop_new();
	int order[16], n = 0;
	struct trec t[6];
	uint64_t now = va_now_ms();
	/* Due times out of order, two the same (they run in arming order). */
	const int due[6] = { 40, 10, 30, 10, 20, 50 };

	memset(t, 0, sizeof(t));
	for (int i = 0; i < 6; i++) {
		t[i] = (struct trec){ .order = order, .n = &n, .id = i, .rearm_ms = -1 };
		t[i].self = va_loop_timer_new(l, timer_cb, &t[i]);
		CU_ASSERT_PTR_NOT_NULL_FATAL(t[i].self);
		va_loop_timer_at(t[i].self, now + (uint64_t)due[i]);
		CU_ASSERT(va_loop_timer_armed(t[i].self));
	}
	/* Moved: 5 from 50 to 5 ms (first now), then stopped and armed again. */
	va_loop_timer_at(t[5].self, now + 5);
	CU_ASSERT_EQUAL(va_loop_timer_due(t[5].self), now + 5);
	CU_ASSERT_EQUAL(run_until(l, &n, 6, 2000), 6);
	const int want[6] = { 5, 1, 3, 4, 2, 0 };
	for (int i = 0; i < 6; i++)
		CU_ASSERT_EQUAL(order[i], want[i]);
	for (int i = 0; i < 6; i++) {
		CU_ASSERT(!va_loop_timer_armed(t[i].self));
		CU_ASSERT_EQUAL(va_loop_timer_due(t[i].self), UINT64_MAX);
		CU_ASSERT(t[i].ran_at >= now + (uint64_t)(i == 5 ? 5 : due[i]));
	}
	/* Stopped timers never run. */
	va_loop_timer_in(t[0].self, 5);
	va_loop_timer_stop(t[0].self);
	va_loop_run_once(l, 30);
	CU_ASSERT_EQUAL(n, 6);
	for (int i = 0; i < 6; i++)
		va_loop_timer_free(t[i].self);
	va_loop_free(l);
}

/* Many timers armed and moved at random: each runs once, in due order. */
static void
test_timer_heap_random(void)
{
	enum { N = 500 };
	va_loop *l = va_loop_new();
	static int order[N];
	int n = 0;
	static struct trec t[N];
	uint64_t base = va_now_ms() + 5;
	unsigned seed = 12345;

	for (int i = 0; i < N; i++) {
		t[i] = (struct trec){ .order = order, .n = &n, .id = i, .rearm_ms = -1 };
		t[i].self = va_loop_timer_new(l, timer_cb, &t[i]);
		va_loop_timer_at(t[i].self, base + (uint64_t)(rand_r(&seed) % 60));
	}
	for (int k = 0; k < 2000; k++) {
		int i = rand_r(&seed) % N;
		if (rand_r(&seed) % 4 == 0)
			va_loop_timer_stop(t[i].self);
		else
			va_loop_timer_at(t[i].self, base + (uint64_t)(rand_r(&seed) % 60));
	}
	int armed = 0;
	for (int i = 0; i < N; i++)
		armed += va_loop_timer_armed(t[i].self);
	run_until(l, &n, armed, 3000);
	CU_ASSERT_EQUAL(n, armed);
	/* In due order (ran_at is ms-grained: never earlier than the one before). */
	for (int k = 1; k < n; k++)
		CU_ASSERT(t[order[k - 1]].ran_at <= t[order[k]].ran_at);
	for (int i = 0; i < N; i++)
		va_loop_timer_free(t[i].self);
	va_loop_free(l);
}

/* A timer that re-arms itself for now runs once per pass, not in a loop. */
static int slices;
static va_loop_timer *slice_timer;

static void
slice_cb(void *opaque)
{
	(void)opaque;
	if (++slices < 5)
		va_loop_timer_in(slice_timer, 0);
}

static void
test_timer_slices_yield(void)
{
	va_loop *l = va_loop_new();
	struct va_loop_stats st;

	slices = 0;
	slice_timer = va_loop_timer_new(l, slice_cb, NULL);
	va_loop_timer_soon(slice_timer);
	CU_ASSERT_EQUAL(va_loop_run_once(l, 1000), 1);
	CU_ASSERT_EQUAL(slices, 1);
	/* The next pass does not wait (due now) and runs the next slice. */
	uint64_t t0 = va_now_ms();
	CU_ASSERT_EQUAL(va_loop_run_once(l, 1000), 1);
	CU_ASSERT(va_now_ms() - t0 < 500);
	CU_ASSERT_EQUAL(slices, 2);
	while (slices < 5)
		va_loop_run_once(l, 1000);
	CU_ASSERT_EQUAL(va_loop_run_once(l, 20), 0);
	va_loop_stats(l, &st);
	CU_ASSERT_EQUAL(st.timer_calls, 5);
	/* soon on an armed-for-later timer brings it forward, not back. */
	va_loop_timer_in(slice_timer, 10000);
	va_loop_timer_soon(slice_timer);
	CU_ASSERT(va_loop_timer_due(slice_timer) <= va_now_ms());
	va_loop_timer_free(slice_timer);
	va_loop_free(l);
}

static void
test_timer_callbacks_free_and_stop(void)
{
	va_loop *l = va_loop_new();
	int order[8], n = 0;
	struct trec a = { .order = order, .n = &n, .id = 1, .rearm_ms = -1 };
	struct trec b = { .order = order, .n = &n, .id = 2, .rearm_ms = -1 };
	struct trec c = { .order = order, .n = &n, .id = 3, .rearm_ms = -1 };
	uint64_t now = va_now_ms();

	a.self = va_loop_timer_new(l, timer_cb, &a);
	b.self = va_loop_timer_new(l, timer_cb, &b);
	c.self = va_loop_timer_new(l, timer_cb, &c);
	/* All due in the same step: a frees b (due with it), c frees itself. */
	a.other = b.self;
	a.free_other = 1;
	c.free_self = 1;
	va_loop_timer_at(a.self, now);
	va_loop_timer_at(b.self, now);
	va_loop_timer_at(c.self, now);
	va_loop_run_once(l, 100);
	CU_ASSERT_EQUAL(n, 2);
	CU_ASSERT_EQUAL(order[0], 1);
	CU_ASSERT_EQUAL(order[1], 3);
	/* a stops a later timer, and re-arms itself. */
	struct trec d = { .order = order, .n = &n, .id = 4, .rearm_ms = -1 };
	d.self = va_loop_timer_new(l, timer_cb, &d);
	a.other = d.self;
	a.free_other = 0;
	a.stop_other = 1;
	a.rearm_ms = 15;
	va_loop_timer_in(a.self, 0);
	va_loop_timer_in(d.self, 10);
	run_until(l, &n, 4, 1000);
	CU_ASSERT_EQUAL(n, 4);
	CU_ASSERT_EQUAL(order[2], 1);
	CU_ASSERT_EQUAL(order[3], 1);
	va_loop_run_once(l, 40);
	CU_ASSERT_EQUAL(n, 4); /* d never ran */
	va_loop_timer_free(a.self);
	va_loop_timer_free(d.self);
	va_loop_free(l);
}

/* ---- posted work and stop ---- */

struct poster {
	va_loop *l;
	int count;
	int *ran;
};

static void
work(void *arg)
{
	(*(int *)arg)++;
}

static void *
poster_main(void *arg)
{
	struct poster *p = arg;
	for (int i = 0; i < p->count; i++) {
		va_loop_post(p->l, work, p->ran);
		if (i % 100 == 0)
			usleep(100);
	}
	return NULL;
}

static void
test_post_from_threads(void)
{
	va_loop *l = va_loop_new();
	int ran = 0;
	struct poster p = { l, 2000, &ran };
	pthread_t th[2];

	for (int i = 0; i < 2; i++)
		pthread_create(&th[i], NULL, poster_main, &p);
	uint64_t end = va_now_ms() + 5000;
	/* Long waits: only the wake-ups end them. */
	while (ran < 4000 && va_now_ms() < end)
		va_loop_run_once(l, 1000);
	for (int i = 0; i < 2; i++)
		pthread_join(th[i], NULL);
	va_loop_run_once(l, 0);
	CU_ASSERT_EQUAL(ran, 4000);
	/* Posted and never run: dropped by free, not called. */
	va_loop_post(l, work, &ran);
	va_loop_free(l);
	CU_ASSERT_EQUAL(ran, 4000);
}

/*
 * Two threads post in bursts while the loop waits for ever between
 * passes: a lost wake-up (the flag left set with the eventfd drained, so
 * that no later post writes) leaves work queued and the loop asleep; the
 * guard thread then stops it and the count is short.
 */
struct burst {
	va_loop *l;
	atomic_int ran;
	atomic_int posted;
	atomic_int quit; /* the test is over: posters stop waiting */
	int per_thread;
	int pipe[2];     /* the guard's own wake-up, not through the flag */
};

static void
burst_work(void *arg)
{
	struct burst *b = arg;
	atomic_fetch_add(&b->ran, 1);
}

static void *
burst_main(void *arg)
{
	struct burst *b = arg;
	for (int i = 0; i < b->per_thread && !atomic_load(&b->quit); i++) {
		va_loop_post(b->l, burst_work, b);
		atomic_fetch_add(&b->posted, 1);
		if (i % 64 == 63) {
			/* Let the loop catch up and sleep: the window is at its wake-up. */
			while (atomic_load(&b->ran) < atomic_load(&b->posted) &&
			       !atomic_load(&b->quit))
				sched_yield();
		}
	}
	return NULL;
}

static void *
burst_guard(void *arg)
{
	struct burst *b = arg;
	for (int i = 0; i < 300 && atomic_load(&b->ran) < 2 * b->per_thread; i++)
		usleep(100 * 1000);
	va_loop_stop(b->l);
	/* With a lost wake-up, stop's own wake-up is lost too. */
	ssize_t r = write(b->pipe[1], "x", 1);
	(void)r;
	return NULL;
}

static void
burst_pipe_cb(void *opaque, int fd, unsigned revents)
{
	char c;
	(void)opaque;
	(void)revents;
	ssize_t r = read(fd, &c, 1);
	(void)r;
}

static void
test_post_no_lost_wakeup(void)
{
	struct burst b = { .l = va_loop_new(), .per_thread = 50000 };
	pthread_t th[2], guard;

	CU_ASSERT_EQUAL_FATAL(pipe(b.pipe), 0);
	va_loop_fd_set(b.l, b.pipe[0], POLLIN, burst_pipe_cb, NULL);

	for (int i = 0; i < 2; i++)
		pthread_create(&th[i], NULL, burst_main, &b);
	pthread_create(&guard, NULL, burst_guard, &b);
	while (atomic_load(&b.ran) < 2 * b.per_thread && !va_loop_stopping(b.l))
		va_loop_run_once(b.l, -1);
	CU_ASSERT_EQUAL(atomic_load(&b.ran), 2 * b.per_thread);
	atomic_store(&b.quit, 1);
	for (int i = 0; i < 2; i++)
		pthread_join(th[i], NULL);
	va_loop_run_posted(b.l);
	pthread_join(guard, NULL);
	va_loop_fd_clear(b.l, b.pipe[0]);
	close(b.pipe[0]);
	close(b.pipe[1]);
	va_loop_free(b.l);
}

static void *
stopper_main(void *arg)
{
	usleep(50000);
	va_loop_stop(arg);
	return NULL;
}

static void
test_stop_from_thread(void)
{
	va_loop *l = va_loop_new();
	pthread_t th;
	uint64_t t0 = va_now_ms();

	pthread_create(&th, NULL, stopper_main, l);
	CU_ASSERT_EQUAL(va_loop_run(l), 0);
	CU_ASSERT(va_now_ms() - t0 < 2000);
	CU_ASSERT(va_loop_stopping(l));
	pthread_join(th, NULL);
	/* Posted after the stop: run by va_loop_run_posted. */
	int ran = 0;
	va_loop_post(l, work, &ran);
	va_loop_run_posted(l);
	CU_ASSERT_EQUAL(ran, 1);
	va_loop_free(l);
}

/* ---- signals ---- */

static int hups;

static void
on_hup(void *opaque)
{
	(void)opaque;
	hups++;
}

static void
test_signal(void)
{
	va_loop *l = va_loop_new(), *other = va_loop_new();

	hups = 0;
	CU_ASSERT_EQUAL(va_loop_signal(l, SIGHUP, on_hup, NULL), 0);
	CU_ASSERT_EQUAL(va_loop_signal(other, SIGUSR1, on_hup, NULL), -EBUSY);
	CU_ASSERT_EQUAL(va_loop_signal(l, 0, on_hup, NULL), -EINVAL);
	/* Two in a row before the loop runs: one call. */
	raise(SIGHUP);
	raise(SIGHUP);
	CU_ASSERT_EQUAL(va_loop_run_once(l, 1000), 1);
	CU_ASSERT_EQUAL(hups, 1);
	raise(SIGHUP);
	va_loop_run_once(l, 1000);
	CU_ASSERT_EQUAL(hups, 2);
	va_loop_free(l);
	/* Freed: another loop may own signals now. */
	CU_ASSERT_EQUAL(va_loop_signal(other, SIGUSR1, on_hup, NULL), 0);
	va_loop_free(other);
	signal(SIGUSR1, SIG_DFL);
}

/* ---- an idle loop sleeps ---- */

static void
test_idle_no_cpu(void)
{
	va_loop *l = va_loop_new();
	struct fdrec r = { .clear_fd = -1 };
	int sv[2];
	struct rusage a, b;
	struct va_loop_stats st;

	CU_ASSERT_EQUAL_FATAL(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
	va_loop_fd_set(l, sv[0], POLLIN, fd_cb, &r);
	va_loop_timer *t = va_loop_timer_new(l, work, &r.calls);
	va_loop_timer_in(t, 400);
	getrusage(RUSAGE_SELF, &a);
	uint64_t t0 = va_now_ms();
	/* One pass: sleeps until the timer, 400 ms, in one wait. */
	CU_ASSERT_EQUAL(va_loop_run_once(l, -1), 1);
	uint64_t waited = va_now_ms() - t0;
	getrusage(RUSAGE_SELF, &b);
	CU_ASSERT(waited >= 399);
	long us = (b.ru_utime.tv_sec - a.ru_utime.tv_sec) * 1000000L +
		  (b.ru_utime.tv_usec - a.ru_utime.tv_usec) +
		  (b.ru_stime.tv_sec - a.ru_stime.tv_sec) * 1000000L +
		  (b.ru_stime.tv_usec - a.ru_stime.tv_usec);
	CU_ASSERT(us < 20000);
	va_loop_stats(l, &st);
	CU_ASSERT_EQUAL(st.passes, 1);
	CU_ASSERT_EQUAL(st.wakeups, 0);
	va_loop_timer_free(t);
	va_loop_fd_clear(l, sv[0]);
	close(sv[0]);
	close(sv[1]);
	va_loop_free(l);
}

static const struct va_test tests[] = {
	{ "fd read, write, events 0, hang-up", test_fd_read_write },
	{ "regular file refused (EPERM)", test_fd_regular_file },
	{ "fd cleared by another callback of the same pass", test_fd_cleared_by_other },
	{ "fd number reused by another file", test_fd_number_reused },
	{ "timers in due order, ties in arming order", test_timer_order },
	{ "500 timers moved at random", test_timer_heap_random },
	{ "a timer re-armed for now runs once per pass", test_timer_slices_yield },
	{ "callbacks free and stop timers", test_timer_callbacks_free_and_stop },
	{ "work posted from two threads", test_post_from_threads },
	{ "two threads posting in bursts: no wake-up lost", test_post_no_lost_wakeup },
	{ "stop from another thread", test_stop_from_thread },
	{ "signals on the loop", test_signal },
	{ "an idle loop sleeps in one wait", test_idle_no_cpu },
};

int
main(void)
{
	return va_test_run("loop", VA_TESTS(tests));
}

/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * loop.c - epoll, a timer heap and a posted-work queue (see loop.h).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "loop.h"

#define MAX_EVENTS 128
#define NO_SLOT ((size_t)-1)

struct fd_slot {
	va_loop_fd_fn *fn;
	void *opaque;
	unsigned events;   /* what the owner wants (0: not polled; POLLHUP: hang-ups only) */
	unsigned gen;      /* changes at every set after a clear */
	unsigned char used;
	unsigned char in_epoll;
};

struct va_loop_timer {
	va_loop *l;
	va_loop_timer_fn *fn;
	void *opaque;
	uint64_t due;
	uint64_t seq;      /* arming order: ties run in it */
	size_t heap_i;     /* NO_SLOT when not in the heap */
	/* Due in the running timer step: on the run list. */
	va_loop_timer *run_next;
	int on_run_list;
};

struct posted {
	struct posted *next;
	va_loop_work_fn *fn;
	void *arg;
};

struct va_loop {
	int epfd;
	int wake_fd;

	struct fd_slot *fds;
	size_t nfds;

	va_loop_timer **heap; /* room for every timer (ntimers) */
	size_t nheap, ntimers;
	uint64_t seq;
	va_loop_timer *run_list; /* due in the running timer step */

	pthread_mutex_t q_lock;
	struct posted *q_head, **q_tail;
	atomic_int stop;
	atomic_int woken; /* a wake-up is pending in wake_fd */

	va_loop_work_fn *before_wait;
	void *before_wait_opaque;

	struct va_loop_stats st;
};

uint64_t
va_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* ---- the timer heap (a binary min-heap on (due, seq)) ---- */

static int
earlier(const va_loop_timer *a, const va_loop_timer *b)
{
	return a->due < b->due || (a->due == b->due && a->seq < b->seq);
}

static void
heap_place(va_loop *l, size_t i, va_loop_timer *t)
{
	l->heap[i] = t;
	t->heap_i = i;
}

static void
heap_up(va_loop *l, size_t i)
{
	va_loop_timer *t = l->heap[i];
	while (i > 0) {
		size_t p = (i - 1) / 2;
		if (!earlier(t, l->heap[p]))
			break;
		heap_place(l, i, l->heap[p]);
		i = p;
	}
	heap_place(l, i, t);
}

static void
heap_down(va_loop *l, size_t i)
{
	va_loop_timer *t = l->heap[i];
	for (;;) {
		size_t c = 2 * i + 1;
		if (c >= l->nheap)
			break;
		if (c + 1 < l->nheap && earlier(l->heap[c + 1], l->heap[c]))
			c++;
		if (!earlier(l->heap[c], t))
			break;
		heap_place(l, i, l->heap[c]);
		i = c;
	}
	heap_place(l, i, t);
}

static void
heap_remove(va_loop *l, va_loop_timer *t)
{
	size_t i = t->heap_i;
	if (i == NO_SLOT)
		return;
	t->heap_i = NO_SLOT;
	l->nheap--;
	if (i == l->nheap)
		return;
	va_loop_timer *moved = l->heap[l->nheap];
	heap_place(l, i, moved);
	heap_down(l, i);
	heap_up(l, moved->heap_i);
}

/* Never fails: va_loop_timer_new() made room for every timer. */
static void
heap_insert(va_loop *l, va_loop_timer *t)
{
	heap_place(l, l->nheap++, t);
	heap_up(l, t->heap_i);
}

static void
run_list_remove(va_loop_timer *t)
{
	if (!t->on_run_list)
		return;
	for (va_loop_timer **pp = &t->l->run_list; *pp; pp = &(*pp)->run_next) {
		if (*pp == t) {
			*pp = t->run_next;
			break;
		}
	}
	t->on_run_list = 0;
	t->run_next = NULL;
}

/* ---- timers ---- */

va_loop_timer *
va_loop_timer_new(va_loop *l, va_loop_timer_fn *fn, void *opaque)
{
	va_loop_timer **h = realloc(l->heap, (l->ntimers + 1) * sizeof(*h));
	if (!h)
		return NULL;
	l->heap = h;
	va_loop_timer *t = calloc(1, sizeof(*t));
	if (!t)
		return NULL;
	l->ntimers++;
	t->l = l;
	t->fn = fn;
	t->opaque = opaque;
	t->due = UINT64_MAX;
	t->heap_i = NO_SLOT;
	return t;
}

void
va_loop_timer_stop(va_loop_timer *t)
{
	if (!t)
		return;
	heap_remove(t->l, t);
	run_list_remove(t);
	t->due = UINT64_MAX;
}

void
va_loop_timer_at(va_loop_timer *t, uint64_t due_ms)
{
	va_loop *l = t->l;

	va_loop_timer_stop(t);
	if (due_ms == UINT64_MAX)
		return;
	t->due = due_ms;
	t->seq = ++l->seq;
	heap_insert(l, t);
}

void
va_loop_timer_in(va_loop_timer *t, uint64_t delay_ms)
{
	uint64_t now = va_now_ms();
	va_loop_timer_at(t, delay_ms > UINT64_MAX - 1 - now ? UINT64_MAX - 1 : now + delay_ms);
}

void
va_loop_timer_soon(va_loop_timer *t)
{
	uint64_t now = va_now_ms();
	if (t->heap_i != NO_SLOT && t->due <= now)
		return;
	if (t->on_run_list)
		return; /* runs in this step already */
	va_loop_timer_at(t, now);
}

int
va_loop_timer_armed(const va_loop_timer *t)
{
	return t->heap_i != NO_SLOT || t->on_run_list;
}

uint64_t
va_loop_timer_due(const va_loop_timer *t)
{
	return va_loop_timer_armed(t) ? t->due : UINT64_MAX;
}

void
va_loop_timer_free(va_loop_timer *t)
{
	if (!t)
		return;
	va_loop_timer_stop(t);
	t->l->ntimers--;
	free(t);
}

/* ---- fds ---- */

static int
grow_fds(va_loop *l, int fd)
{
	size_t n = l->nfds ? l->nfds : 64;
	while (n <= (size_t)fd)
		n *= 2;
	if (n == l->nfds)
		return 0;
	struct fd_slot *s = realloc(l->fds, n * sizeof(*s));
	if (!s)
		return -ENOMEM;
	memset(s + l->nfds, 0, (n - l->nfds) * sizeof(*s));
	l->fds = s;
	l->nfds = n;
	return 0;
}

/* Makes the epoll set match slot->events. */
static int
sync_epoll(va_loop *l, int fd, struct fd_slot *s)
{
	struct epoll_event ev = { 0 };
	int r;

	if (s->events == 0) {
		if (s->in_epoll && epoll_ctl(l->epfd, EPOLL_CTL_DEL, fd, NULL) < 0 &&
		    errno != ENOENT && errno != EBADF)
			return -errno;
		s->in_epoll = 0;
		return 0;
	}
	/* POLLHUP alone: 0, for which epoll still reports EPOLLHUP and EPOLLERR. */
	ev.events = (s->events & POLLIN ? EPOLLIN : 0) | (s->events & POLLOUT ? EPOLLOUT : 0);
	ev.data.u64 = (uint64_t)(unsigned)fd | (uint64_t)s->gen << 32;
	r = epoll_ctl(l->epfd, s->in_epoll ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, fd, &ev);
	/* epoll drops a closed fd by itself: a number reused since is new to
	 * it (ENOENT on MOD); one we thought out may still be in (EEXIST). */
	if (r < 0 && errno == ENOENT && s->in_epoll)
		r = epoll_ctl(l->epfd, EPOLL_CTL_ADD, fd, &ev);
	else if (r < 0 && errno == EEXIST && !s->in_epoll)
		r = epoll_ctl(l->epfd, EPOLL_CTL_MOD, fd, &ev);
	if (r < 0) {
		int e = errno;
		s->in_epoll = 0;
		return -e;
	}
	s->in_epoll = 1;
	return 0;
}

int
va_loop_fd_set(va_loop *l, int fd, unsigned events, va_loop_fd_fn *fn, void *opaque)
{
	if (fd < 0 || !fn)
		return -EINVAL;
	if ((size_t)fd >= l->nfds && grow_fds(l, fd) < 0)
		return -ENOMEM;
	struct fd_slot *s = &l->fds[fd];
	if (!s->used) {
		s->gen++;
		s->used = 1;
		s->in_epoll = 0;
	}
	s->fn = fn;
	s->opaque = opaque;
	s->events = events & (POLLIN | POLLOUT | POLLHUP);
	int r = sync_epoll(l, fd, s);
	if (r < 0) {
		s->used = 0;
		s->events = 0;
	}
	return r;
}

int
va_loop_fd_events(va_loop *l, int fd, unsigned events)
{
	if (fd < 0 || (size_t)fd >= l->nfds || !l->fds[fd].used)
		return -ENOENT;
	struct fd_slot *s = &l->fds[fd];
	events &= POLLIN | POLLOUT | POLLHUP;
	if (events == s->events && (events == 0 || s->in_epoll))
		return 0;
	s->events = events;
	return sync_epoll(l, fd, s);
}

void
va_loop_fd_clear(va_loop *l, int fd)
{
	if (fd < 0 || (size_t)fd >= l->nfds || !l->fds[fd].used)
		return;
	struct fd_slot *s = &l->fds[fd];
	s->events = 0;
	sync_epoll(l, fd, s);
	s->used = 0;
	s->fn = NULL;
	s->opaque = NULL;
}

/* ---- posted work ---- */

static void
wake(va_loop *l)
{
	uint64_t one = 1;
	ssize_t r;

	if (atomic_exchange(&l->woken, 1))
		return; /* a wake-up is on its way already */
	do
		r = write(l->wake_fd, &one, sizeof(one));
	while (r < 0 && errno == EINTR);
	/* EAGAIN: the counter is full, so the loop wakes anyway. */
}

int
va_loop_post(va_loop *l, va_loop_work_fn *fn, void *arg)
{
	struct posted *p = malloc(sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->fn = fn;
	p->arg = arg;
	p->next = NULL;
	pthread_mutex_lock(&l->q_lock);
	*l->q_tail = p;
	l->q_tail = &p->next;
	pthread_mutex_unlock(&l->q_lock);
	wake(l);
	return 0;
}

static int
run_posted(va_loop *l)
{
	int n = 0;

	pthread_mutex_lock(&l->q_lock);
	struct posted *p = l->q_head;
	l->q_head = NULL;
	l->q_tail = &l->q_head;
	pthread_mutex_unlock(&l->q_lock);
	while (p) {
		struct posted *next = p->next;
		p->fn(p->arg);
		free(p);
		p = next;
		n++;
	}
	l->st.posted_calls += (uint64_t)n;
	return n;
}

void
va_loop_run_posted(va_loop *l)
{
	run_posted(l);
}

static void
wake_fd_cb(void *opaque, int fd, unsigned revents)
{
	va_loop *l = opaque;
	uint64_t v;

	(void)revents;
	/*
	 * Drain first, then clear the flag.  A post between the two saw the
	 * flag set and did not write, but its work is queued already and runs
	 * in step 4 of this pass; a post after the clear writes and wakes us.
	 * (Clearing first lost wake-ups for good: a post between the clear
	 * and the read had its write drained here and left the flag set, so
	 * no later post wrote again.)
	 */
	while (read(fd, &v, sizeof(v)) > 0)
		;
	atomic_store(&l->woken, 0);
}

/* ---- the loop ---- */

static va_loop *sig_loop;
static void release_signals(void);

va_loop *
va_loop_new(void)
{
	va_loop *l = calloc(1, sizeof(*l));
	if (!l)
		return NULL;
	l->wake_fd = -1;
	l->q_tail = &l->q_head;
	pthread_mutex_init(&l->q_lock, NULL);
	l->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (l->epfd < 0)
		goto fail;
	l->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (l->wake_fd < 0)
		goto fail;
	if (va_loop_fd_set(l, l->wake_fd, POLLIN, wake_fd_cb, l) < 0)
		goto fail;
	return l;
fail:;
	int e = errno;
	va_loop_free(l);
	errno = e;
	return NULL;
}

void
va_loop_free(va_loop *l)
{
	if (!l)
		return;
	pthread_mutex_lock(&l->q_lock);
	struct posted *p = l->q_head;
	l->q_head = NULL;
	pthread_mutex_unlock(&l->q_lock);
	while (p) {
		struct posted *next = p->next;
		free(p);
		p = next;
	}
	if (sig_loop == l)
		release_signals();
	if (l->wake_fd >= 0)
		close(l->wake_fd);
	if (l->epfd >= 0)
		close(l->epfd);
	pthread_mutex_destroy(&l->q_lock);
	free(l->heap);
	free(l->fds);
	free(l);
}

static unsigned
revents_of(uint32_t ev)
{
	unsigned r = 0;
	if (ev & EPOLLIN)
		r |= POLLIN;
	if (ev & EPOLLOUT)
		r |= POLLOUT;
	if (ev & (EPOLLHUP | EPOLLRDHUP))
		r |= POLLHUP;
	if (ev & EPOLLERR)
		r |= POLLERR;
	return r;
}

static int
run_timers(va_loop *l)
{
	uint64_t now = va_now_ms();
	int n = 0;

	/* The due ones first: what they arm, even for now, waits for the
	 * next pass (loop.h, step 3). */
	va_loop_timer **tail = &l->run_list;
	while (l->nheap > 0 && l->heap[0]->due <= now) {
		va_loop_timer *t = l->heap[0];
		heap_remove(l, t);
		t->on_run_list = 1;
		t->run_next = NULL;
		*tail = t;
		tail = &t->run_next;
	}
	while (l->run_list) {
		va_loop_timer *t = l->run_list;
		l->run_list = t->run_next;
		t->run_next = NULL;
		t->on_run_list = 0;
		t->due = UINT64_MAX;
		n++;
		t->fn(t->opaque); /* may free t */
	}
	l->st.timer_calls += (uint64_t)n;
	return n;
}

/* How long the wait may last: until the first timer, at most max_wait_ms. */
static int
wait_ms(va_loop *l, int max_wait_ms)
{
	if (l->nheap == 0)
		return max_wait_ms;
	const va_loop_timer *t = l->heap[0];
	/* Armed during the last timer step for "now": due, no waiting. */
	uint64_t now = va_now_ms();
	if (t->due <= now)
		return 0;
	uint64_t d = t->due - now;
	if (d > INT32_MAX)
		d = INT32_MAX;
	if (max_wait_ms >= 0 && (uint64_t)max_wait_ms < d)
		return max_wait_ms;
	return (int)d;
}

int
va_loop_run_once(va_loop *l, int max_wait_ms)
{
	struct epoll_event ev[MAX_EVENTS];
	int n = 0;

	l->st.passes++;
	if (l->before_wait)
		l->before_wait(l->before_wait_opaque);
	int timeout = wait_ms(l, max_wait_ms);
	int k = epoll_wait(l->epfd, ev, MAX_EVENTS, timeout);
	if (k < 0) {
		if (errno != EINTR)
			return -errno;
		k = 0;
	}
	if (k > 0)
		l->st.wakeups++;
	for (int i = 0; i < k; i++) {
		int fd = (int)(ev[i].data.u64 & 0xffffffffu);
		unsigned gen = (unsigned)(ev[i].data.u64 >> 32);
		/* Cleared, or cleared and set anew, by an earlier callback. */
		if ((size_t)fd >= l->nfds)
			continue;
		struct fd_slot *s = &l->fds[fd];
		if (!s->used || s->gen != gen || !s->in_epoll)
			continue;
		unsigned rev = revents_of(ev[i].events) & (s->events | POLLHUP | POLLERR);
		if (!rev)
			continue;
		l->st.fd_calls++;
		n++;
		s->fn(s->opaque, fd, rev);
	}
	n += run_timers(l);
	n += run_posted(l);
	return n;
}

int
va_loop_run(va_loop *l)
{
	while (!atomic_load(&l->stop)) {
		int r = va_loop_run_once(l, -1);
		if (r < 0)
			return r;
	}
	return 0;
}

void
va_loop_set_before_wait(va_loop *l, va_loop_work_fn *fn, void *opaque)
{
	l->before_wait = fn;
	l->before_wait_opaque = opaque;
}

void
va_loop_stop(va_loop *l)
{
	atomic_store(&l->stop, 1);
	wake(l);
}

int
va_loop_stopping(const va_loop *l)
{
	return atomic_load(&((va_loop *)l)->stop);
}

void
va_loop_stats(const va_loop *l, struct va_loop_stats *st)
{
	*st = l->st;
}

/* ---- signals ---- */

/*
 * The handler writes the signal's number to a pipe that the loop polls;
 * the callbacks then run on the loop.  File-scope because a signal
 * handler has no opaque pointer; one loop per process owns signals.
 */
static int sig_pipe[2] = { -1, -1 };
static struct {
	va_loop_work_fn *fn;
	void *opaque;
} sig_cb[NSIG];

static void
on_signal(int signo)
{
	int saved = errno;
	unsigned char b = (unsigned char)signo;
	ssize_t r = write(sig_pipe[1], &b, 1);
	(void)r; /* full pipe: a wake-up is pending already */
	errno = saved;
}

static void
sig_pipe_cb(void *opaque, int fd, unsigned revents)
{
	unsigned char buf[64];
	unsigned char seen[NSIG] = { 0 };
	ssize_t r;

	(void)opaque;
	(void)revents;
	while ((r = read(fd, buf, sizeof(buf))) > 0)
		for (ssize_t i = 0; i < r; i++)
			if (buf[i] < NSIG)
				seen[buf[i]] = 1;
	for (int s = 1; s < NSIG; s++)
		if (seen[s] && sig_cb[s].fn)
			sig_cb[s].fn(sig_cb[s].opaque);
}

static void
release_signals(void)
{
	for (int s = 1; s < NSIG; s++) {
		if (sig_cb[s].fn)
			signal(s, SIG_DFL);
		sig_cb[s].fn = NULL;
	}
	va_loop_fd_clear(sig_loop, sig_pipe[0]);
	close(sig_pipe[0]);
	close(sig_pipe[1]);
	sig_pipe[0] = sig_pipe[1] = -1;
	sig_loop = NULL;
}

int
va_loop_signal(va_loop *l, int signo, va_loop_work_fn *fn, void *opaque)
{
	struct sigaction sa;

	if (signo <= 0 || signo >= NSIG || signo > 255 || !fn)
		return -EINVAL;
	if (sig_loop && sig_loop != l)
		return -EBUSY;
	if (sig_pipe[0] < 0) {
		if (pipe2(sig_pipe, O_NONBLOCK | O_CLOEXEC) < 0)
			return -errno;
		int r = va_loop_fd_set(l, sig_pipe[0], POLLIN, sig_pipe_cb, NULL);
		if (r < 0)
			return r;
		sig_loop = l;
	}
	sig_cb[signo].fn = fn;
	sig_cb[signo].opaque = opaque;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = SA_RESTART;
	if (sigaction(signo, &sa, NULL) < 0)
		return -errno;
	return 0;
}

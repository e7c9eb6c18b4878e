/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * relay - the floor of a call's two hops, for the benchmark (bench/run).
 *
 * A va.ping through va-proxy and va-agent is two hops each way: the
 * client writes to the proxy, the proxy to the agent, and back.  This
 * program does the same with nothing else: no parsing, no HTTP, no
 * XML.  Three roles, each a process of its own, over unix sockets:
 *
 *   relay --echo PATH                  listens on PATH; every byte read
 *                                      from a connection is written back
 *   relay --relay PATH --to PATH2      listens on PATH, connects to PATH2
 *                                      for each connection, and copies
 *                                      bytes both ways
 *   relay --client PATH [--size N] [--seconds S] [--warmup S]
 *                                      writes N bytes (default 300), waits
 *                                      for N bytes back, again and again
 *
 * Echo and relay wait in epoll_wait and move what one read() brings with
 * one write(), as an event-driven daemon does at the least; the client
 * blocks in read().  The client prints one line of JSON, with the fields
 * of bench/loadgen's: calls, errors, seconds, calls_per_s, p50_us,
 * p99_us, max_us, client_cpu_s.  Echo and relay run until killed.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define BUF 65536
#define MAX_FDS 4096
#define MAX_SIZE (1 << 20)

static void
die(const char *what)
{
	fprintf(stderr, "relay: %s: %s\n", what, strerror(errno));
	exit(1);
}

static double
now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static struct sockaddr_un
addr_of(const char *path)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	if (strlen(path) >= sizeof(a.sun_path)) {
		fprintf(stderr, "relay: %s: path too long\n", path);
		exit(2);
	}
	strcpy(a.sun_path, path);
	return a;
}

static int
listen_on(const char *path)
{
	struct sockaddr_un a = addr_of(path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		die("socket");
	unlink(path);
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(fd, 64) < 0)
		die(path);
	return fd;
}

static int
connect_to(const char *path, int nonblock)
{
	struct sockaddr_un a = addr_of(path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		die("socket");
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0)
		die(path);
	if (nonblock && fcntl(fd, F_SETFL, O_NONBLOCK) < 0)
		die("fcntl");
	return fd;
}

/*
 * Writes all of p to a non-blocking socket; a full socket (a slow peer)
 * is waited for in poll-less retries, which a 300-byte message never
 * meets.
 */
static int
write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (w < 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/*
 * Echo (to < 0) or relay (to names the next hop): one epoll loop; peer[fd]
 * is where fd's bytes go (itself for echo).
 */
static _Noreturn void
serve(const char *listen_path, const char *to)
{
	static int peer[MAX_FDS];
	static char buf[BUF];
	int lfd = listen_on(listen_path);
	int ep = epoll_create1(EPOLL_CLOEXEC);
	struct epoll_event ev = { .events = EPOLLIN, .data.fd = lfd };

	if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev) < 0)
		die("epoll");
	for (;;) {
		struct epoll_event evs[64];
		int k = epoll_wait(ep, evs, 64, -1);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			die("epoll_wait");
		for (int i = 0; i < k; i++) {
			int fd = evs[i].data.fd;
			if (fd == lfd) {
				int c = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
				if (c < 0)
					continue;
				int o = to ? connect_to(to, 1) : c;
				if (c >= MAX_FDS || o >= MAX_FDS) {
					close(c);
					if (o != c)
						close(o);
					continue;
				}
				peer[c] = o;
				peer[o] = c;
				ev = (struct epoll_event){ .events = EPOLLIN, .data.fd = c };
				epoll_ctl(ep, EPOLL_CTL_ADD, c, &ev);
				if (o != c) {
					ev.data.fd = o;
					epoll_ctl(ep, EPOLL_CTL_ADD, o, &ev);
				}
				continue;
			}
			ssize_t r = read(fd, buf, sizeof(buf));
			if (r < 0 && (errno == EAGAIN || errno == EINTR))
				continue;
			if (r <= 0 || write_all(peer[fd], buf, (size_t)r) < 0) {
				int o = peer[fd];
				close(fd);
				if (o != fd)
					close(o);
			}
		}
	}
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double
quantile_us(const double *v, size_t n, double q)
{
	return n ? v[(size_t)(q * (double)(n - 1) + 0.5)] * 1e6 : 0;
}

static double
cpu_s(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
	       (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static int
client(const char *path, size_t size, double seconds, double warmup)
{
	int fd = connect_to(path, 0);
	char *out = malloc(size), *in = malloc(size);
	size_t cap = 1 << 16, n = 0;
	double *lat = malloc(cap * sizeof(*lat));

	if (!out || !in || !lat)
		die("malloc");
	/* Something like a request: printable, never all one byte. */
	for (size_t i = 0; i < size; i++)
		out[i] = (char)('a' + i % 26);
	double t0 = now(), t_measure = t0 + warmup, t_end = t_measure + seconds, c0 = 0;
	int measuring = 0;
	for (;;) {
		double t = now();
		if (!measuring && t >= t_measure) {
			measuring = 1;
			t_measure = t;
			c0 = cpu_s();
		}
		if (t >= t_end)
			break;
		if (write_all(fd, out, size) < 0)
			die("write");
		for (size_t got = 0; got < size;) {
			ssize_t r = read(fd, in + got, size - got);
			if (r < 0 && errno == EINTR)
				continue;
			if (r <= 0) {
				errno = r < 0 ? errno : ECONNRESET;
				die("read");
			}
			got += (size_t)r;
		}
		double done = now();
		if (memcmp(in, out, size) != 0) {
			fprintf(stderr, "relay: the answer differs from the message\n");
			return 1;
		}
		if (measuring && done <= t_end) {
			if (n == cap) {
				cap *= 2;
				lat = realloc(lat, cap * sizeof(*lat));
				if (!lat)
					die("realloc");
			}
			lat[n++] = done - t;
		}
	}
	double cpu = cpu_s() - c0, elapsed = now() - t_measure;
	if (elapsed > seconds)
		elapsed = seconds;
	qsort(lat, n, sizeof(*lat), cmp_double);
	printf("{\"calls\": %zu, \"errors\": 0, \"seconds\": %.3f, \"calls_per_s\": %.1f, "
	       "\"p50_us\": %.1f, \"p99_us\": %.1f, \"max_us\": %.1f, \"client_cpu_s\": %.3f}\n",
	       n, elapsed, (double)n / elapsed, quantile_us(lat, n, 0.5),
	       quantile_us(lat, n, 0.99), quantile_us(lat, n, 1.0), cpu);
	close(fd);
	return n == 0;
}

static void
usage(void)
{
	fprintf(stderr, "usage: relay --echo PATH\n"
			"       relay --relay PATH --to PATH2\n"
			"       relay --client PATH [--size N] [--seconds S] [--warmup S]\n");
	exit(2);
}

int
main(int argc, char **argv)
{
	const char *echo = NULL, *relay = NULL, *to = NULL, *cl = NULL;
	long size = 300;
	double seconds = 3, warmup = 0.3;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (i + 1 >= argc)
			usage();
		const char *v = argv[++i];
		if (!strcmp(a, "--echo"))
			echo = v;
		else if (!strcmp(a, "--relay"))
			relay = v;
		else if (!strcmp(a, "--to"))
			to = v;
		else if (!strcmp(a, "--client"))
			cl = v;
		else if (!strcmp(a, "--size"))
			size = atol(v);
		else if (!strcmp(a, "--seconds"))
			seconds = atof(v);
		else if (!strcmp(a, "--warmup"))
			warmup = atof(v);
		else
			usage();
	}
	signal(SIGPIPE, SIG_IGN);
	if (echo && !relay && !cl)
		serve(echo, NULL);
	if (relay && to && !echo && !cl)
		serve(relay, to);
	if (cl && !echo && !relay && size > 0 && size <= MAX_SIZE && seconds > 0 && warmup >= 0)
		return client(cl, (size_t)size, seconds, warmup);
	usage();
	return 2;
}

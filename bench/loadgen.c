/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * loadgen - a small XML-RPC load generator for the benchmark (bench/run).
 *
 * N clients, each a libcurl easy handle with a keep-alive connection of
 * its own, driven by one libcurl multi handle on one thread, call one
 * method (va.ping by default) back to back for a given time, after a
 * warm-up.  Client i posts to PATH, or with --guests G to PATH/guest<i%G>
 * (one proxy serving G guests).  Every answer must be HTTP 200 with an
 * XML-RPC response that is not a fault, or it counts as an error.
 *
 *   loadgen (--unix SOCKET | --url http://HOST:PORT) [--path /RPC2]
 *           [--clients N] [--guests G] [--seconds S] [--warmup S]
 *           [--method NAME] [--user USER:PASSWORD]
 *
 * --user sends HTTP Basic credentials with every call (va-proxy's TCP
 * listeners ask for them).
 *
 * Prints one line of JSON: calls, errors, seconds, calls_per_s, p50_us,
 * p99_us, max_us, the load generator's own CPU seconds, and per guest
 * (with --guests) calls and p99_us, so the slowest guest can be found.
 */
#include <curl/curl.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#define MAX_CLIENTS 1024
#define RESP_MAX 4096

struct client {
	CURL *h;
	int guest;
	char url[512];
	double start;
	char resp[RESP_MAX];
	size_t resp_len;
};

struct lat {
	double *v;
	size_t n, cap;
};

static double
now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void
lat_add(struct lat *l, double x)
{
	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 4096;
		l->v = realloc(l->v, l->cap * sizeof(*l->v));
		if (!l->v) {
			fprintf(stderr, "loadgen: out of memory\n");
			exit(1);
		}
	}
	l->v[l->n++] = x;
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/* The q-quantile (0..1) of a sorted array, in microseconds. */
static double
quantile_us(const struct lat *l, double q)
{
	if (l->n == 0)
		return 0;
	size_t i = (size_t)(q * (double)(l->n - 1) + 0.5);
	return l->v[i] * 1e6;
}

static size_t
on_data(char *p, size_t size, size_t n, void *arg)
{
	struct client *c = arg;
	size_t len = size * n, room = RESP_MAX - 1 - c->resp_len;

	/* A ping's answer is small; keep what fits, count the rest. */
	memcpy(c->resp + c->resp_len, p, len < room ? len : room);
	c->resp_len += len < room ? len : room;
	return len;
}

static void
usage(void)
{
	fprintf(stderr, "usage: loadgen (--unix SOCKET | --url http://HOST:PORT) [--path /RPC2] "
			"[--clients N] [--guests G] [--seconds S] [--warmup S] [--method NAME] "
			"[--user USER:PASSWORD]\n");
	exit(2);
}

int
main(int argc, char **argv)
{
	const char *unix_path = NULL, *base = "http://localhost", *path = "/RPC2";
	const char *method = "va.ping", *userpwd = NULL;
	int nclients = 1, nguests = 0;
	double seconds = 3, warmup = 0.5;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (i + 1 >= argc)
			usage();
		const char *v = argv[++i];
		if (!strcmp(a, "--unix"))
			unix_path = v;
		else if (!strcmp(a, "--url"))
			base = v;
		else if (!strcmp(a, "--path"))
			path = v;
		else if (!strcmp(a, "--clients"))
			nclients = atoi(v);
		else if (!strcmp(a, "--guests"))
			nguests = atoi(v);
		else if (!strcmp(a, "--seconds"))
			seconds = atof(v);
		else if (!strcmp(a, "--warmup"))
			warmup = atof(v);
		else if (!strcmp(a, "--method"))
			method = v;
		else if (!strcmp(a, "--user"))
			userpwd = v;
		else
			usage();
	}
	if (nclients < 1 || nclients > MAX_CLIENTS || nguests < 0 || seconds <= 0)
		usage();

	char body[512];
	int blen = snprintf(body, sizeof(body),
			    "<?xml version=\"1.0\"?>\r\n<methodCall>\r\n<methodName>%s</methodName>\r\n"
			    "<params>\r\n</params>\r\n</methodCall>\r\n", method);
	if (blen < 0 || (size_t)blen >= sizeof(body))
		usage();

	curl_global_init(CURL_GLOBAL_DEFAULT);
	CURLM *m = curl_multi_init();
	/* Every client keeps its own connection open. */
	curl_multi_setopt(m, CURLMOPT_MAXCONNECTS, (long)nclients);
	struct curl_slist *hdrs = NULL;
	hdrs = curl_slist_append(hdrs, "Content-Type: text/xml");
	hdrs = curl_slist_append(hdrs, "Expect:");

	struct client *cl = calloc((size_t)nclients, sizeof(*cl));
	int ng = nguests > 0 ? nguests : 1;
	struct lat *per_guest = calloc((size_t)ng, sizeof(*per_guest));
	struct lat all = { 0 };
	uint64_t errors = 0, calls = 0;
	if (!cl || !per_guest)
		return 1;
	for (int i = 0; i < nclients; i++) {
		struct client *c = &cl[i];
		c->guest = i % ng;
		if (nguests > 0)
			snprintf(c->url, sizeof(c->url), "%s%s/guest%d", base, path, c->guest);
		else
			snprintf(c->url, sizeof(c->url), "%s%s", base, path);
		c->h = curl_easy_init();
		curl_easy_setopt(c->h, CURLOPT_URL, c->url);
		if (unix_path)
			curl_easy_setopt(c->h, CURLOPT_UNIX_SOCKET_PATH, unix_path);
		curl_easy_setopt(c->h, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(c->h, CURLOPT_POSTFIELDSIZE, (long)blen);
		curl_easy_setopt(c->h, CURLOPT_HTTPHEADER, hdrs);
		curl_easy_setopt(c->h, CURLOPT_WRITEFUNCTION, on_data);
		curl_easy_setopt(c->h, CURLOPT_WRITEDATA, c);
		curl_easy_setopt(c->h, CURLOPT_PRIVATE, c);
		curl_easy_setopt(c->h, CURLOPT_TIMEOUT, 60L);
		curl_easy_setopt(c->h, CURLOPT_TCP_NODELAY, 1L);
		if (userpwd) {
			curl_easy_setopt(c->h, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
			curl_easy_setopt(c->h, CURLOPT_USERPWD, userpwd);
		}
		c->start = now();
		curl_multi_add_handle(m, c->h);
	}

	struct rusage ru0, ru1;
	double t_start = now(), t_measure = t_start + warmup, t_end = t_measure + seconds;
	int measuring = 0, running = nclients;
	getrusage(RUSAGE_SELF, &ru0);
	while (running > 0) {
		int still = 0, nmsg;
		curl_multi_perform(m, &still);
		CURLMsg *msg;
		double t = now();
		if (!measuring && t >= t_measure) {
			measuring = 1;
			getrusage(RUSAGE_SELF, &ru0);
			t_measure = t;
		}
		while ((msg = curl_multi_info_read(m, &nmsg))) {
			if (msg->msg != CURLMSG_DONE)
				continue;
			struct client *c;
			long code = 0;
			curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&c);
			curl_easy_getinfo(c->h, CURLINFO_RESPONSE_CODE, &code);
			c->resp[c->resp_len] = '\0';
			int ok = msg->data.result == CURLE_OK && code == 200 &&
				 strstr(c->resp, "<methodResponse>") && !strstr(c->resp, "<fault>");
			double done = now();
			/* Calls that started during the warm-up do not count. */
			if (measuring && c->start >= t_measure && done <= t_end) {
				if (ok) {
					calls++;
					lat_add(&all, done - c->start);
					lat_add(&per_guest[c->guest], done - c->start);
				} else {
					errors++;
					if (errors <= 3)
						fprintf(stderr, "loadgen: call failed: %s, HTTP %ld: %.200s\n",
							curl_easy_strerror(msg->data.result), code, c->resp);
				}
			}
			curl_multi_remove_handle(m, c->h);
			if (done < t_end) {
				c->resp_len = 0;
				c->start = now();
				curl_multi_add_handle(m, c->h);
			} else {
				running--;
			}
		}
		if (running > 0)
			curl_multi_poll(m, NULL, 0, 100, NULL);
	}
	double elapsed = now() - t_measure;
	if (elapsed > seconds)
		elapsed = seconds;
	getrusage(RUSAGE_SELF, &ru1);
	double cpu = (double)(ru1.ru_utime.tv_sec - ru0.ru_utime.tv_sec) +
		     (double)(ru1.ru_utime.tv_usec - ru0.ru_utime.tv_usec) / 1e6 +
		     (double)(ru1.ru_stime.tv_sec - ru0.ru_stime.tv_sec) +
		     (double)(ru1.ru_stime.tv_usec - ru0.ru_stime.tv_usec) / 1e6;

	qsort(all.v, all.n, sizeof(double), cmp_double);
	printf("{\"clients\": %d, \"guests\": %d, \"calls\": %llu, \"errors\": %llu, "
	       "\"seconds\": %.3f, \"calls_per_s\": %.1f, \"p50_us\": %.1f, \"p99_us\": %.1f, "
	       "\"max_us\": %.1f, \"loadgen_cpu_s\": %.3f",
	       nclients, nguests, (unsigned long long)calls, (unsigned long long)errors, elapsed,
	       (double)calls / elapsed, quantile_us(&all, 0.5), quantile_us(&all, 0.99),
	       quantile_us(&all, 1.0), cpu);
	if (nguests > 0) {
		printf(", \"per_guest\": [");
		for (int g = 0; g < ng; g++) {
			qsort(per_guest[g].v, per_guest[g].n, sizeof(double), cmp_double);
			printf("%s{\"calls\": %zu, \"p99_us\": %.1f}", g ? ", " : "", per_guest[g].n,
			       quantile_us(&per_guest[g], 0.99));
		}
		printf("]");
	}
	printf("}\n");

	for (int i = 0; i < nclients; i++)
		curl_easy_cleanup(cl[i].h);
	curl_multi_cleanup(m);
	curl_slist_free_all(hdrs);
	curl_global_cleanup();
	return errors > 0 || calls == 0;
}

/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * va-clip: the guest's command-line clipboard, through va-agent's control
 * socket (control-proto.h has the protocol, shared with the agent).
 *
 *   va-clip copy     stdin -> the agent's clipboard (and on to the host)
 *   va-clip paste    prints the text the host set last
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "buf.h"
#include "control-proto.h"

/* How long va-clip waits for the agent before giving up. */
#define VA_CLIP_TIMEOUT_S 10

static const char usage_text[] =
	"usage: va-clip [--socket PATH] copy|paste\n"
	"Copy and paste through the virtagent guest agent.\n"
	"\n"
	"  copy     read text (UTF-8, at most 1 MiB) from standard input and put it\n"
	"           on the agent's clipboard; the host sees it as the guest's copy\n"
	"  paste    print the text the host put on the clipboard last\n"
	"\n"
	"  -s, --socket PATH   the agent's control socket (default " VA_CONTROL_DEFAULT_PATH ",\n"
	"                      or $VA_CLIP_SOCKET)\n"
	"  -h, --help          print this help\n"
	"  -V, --version       print the version\n"
	"\n"
	"Exit status: 0 done, 1 the agent refused or is not running, 2 usage.\n";

static int
connect_agent(const char *path)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	if (strlen(path) >= sizeof(sun.sun_path)) {
		fprintf(stderr, "va-clip: socket path too long\n");
		return -1;
	}
	strcpy(sun.sun_path, path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	/* A stopped (SIGSTOP) or wedged agent must not hang the user. */
	struct timeval tv = { .tv_sec = VA_CLIP_TIMEOUT_S };
	if (fd >= 0) {
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	}
	if (fd < 0 || connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
		fprintf(stderr, "va-clip: cannot reach the agent at %s: %s\n", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

static int
send_all(int fd, const void *p, size_t n)
{
	const char *c = p;
	while (n) {
		ssize_t w = send(fd, c, n, MSG_NOSIGNAL);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		c += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Reads the whole answer (bounded) into b. */
static int
read_answer(int fd, struct va_buf *b)
{
	char tmp[65536];
	for (;;) {
		ssize_t r = read(fd, tmp, sizeof(tmp));
		if (r < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN)
				errno = ETIMEDOUT;
			return -1;
		}
		if (r == 0)
			return 0;
		if (b->len + (size_t)r > VA_CONTROL_MAX_ANSWER || va_buf_append(b, tmp, (size_t)r) < 0)
			return -1;
	}
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	const char *path = getenv("VA_CLIP_SOCKET");
	int opt;

	if (!path || !*path)
		path = VA_CONTROL_DEFAULT_PATH;
	while ((opt = getopt_long(argc, argv, "s:hV", opts, NULL)) != -1) {
		switch (opt) {
		case 's': path = optarg; break;
		case 'h': fputs(usage_text, stdout); return 0;
		case 'V': printf("va-clip (virtagent) %s\n", PACKAGE_VERSION); return 0;
		default: fputs("Try 'va-clip --help'.\n", stderr); return 2;
		}
	}
	if (optind != argc - 1 || (strcmp(argv[optind], "copy") && strcmp(argv[optind], "paste"))) {
		fputs("va-clip: expected one command: copy or paste\nTry 'va-clip --help'.\n", stderr);
		return 2;
	}
	int copy = strcmp(argv[optind], "copy") == 0;
	struct va_buf text = { 0 }, ans = { 0 };
	int rc = 1;

	if (copy) {
		char tmp[65536];
		size_t r;
		while ((r = fread(tmp, 1, sizeof(tmp), stdin)) > 0) {
			if (text.len + r > VA_CONTROL_MAX_TEXT) {
				fprintf(stderr, "va-clip: text over the clipboard limit of %u bytes\n",
					VA_CONTROL_MAX_TEXT);
				goto out;
			}
			if (va_buf_append(&text, tmp, r) < 0)
				goto out;
		}
	}
	int fd = connect_agent(path);
	if (fd < 0)
		goto out;
	char head[VA_CONTROL_MAX_LINE + 1];
	int n = copy ? va_control_format_copy(head, sizeof(head), text.len)
		     : va_control_format_paste(head, sizeof(head));
	if (send_all(fd, head, (size_t)n) < 0 || (copy && send_all(fd, text.data, text.len) < 0) ||
	    read_answer(fd, &ans) < 0) {
		fprintf(stderr, "va-clip: talking to the agent: %s\n", strerror(errno));
		close(fd);
		goto out;
	}
	close(fd);
	uint8_t *nl = ans.len ? memchr(ans.data, '\n', ans.len) : NULL;
	if (!nl) {
		fprintf(stderr, "va-clip: the agent closed the connection without an answer\n");
		goto out;
	}
	*nl = '\0';
	unsigned long long num = 0;
	const char *msg = NULL;
	if (!va_control_parse_answer((char *)ans.data, &num, &msg)) {
		fprintf(stderr, "va-clip: %s\n", msg);
		goto out;
	}
	if (!copy) {
		size_t len = (size_t)num;
		size_t have = ans.len - (size_t)(nl + 1 - ans.data);
		if (len != have) {
			fprintf(stderr, "va-clip: short answer from the agent\n");
			goto out;
		}
		fwrite(nl + 1, 1, len, stdout);
	}
	rc = 0;
out:
	va_buf_free(&text);
	va_buf_free(&ans);
	return rc;
}

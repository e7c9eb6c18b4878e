/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * test-daemon.c - CUnit tests of common/daemon.c with real processes: the
 * exit status and stderr of the process that starts a daemon (ready,
 * fatal before and after the detach, death without a word), what the
 * daemon inherits, and the pidfile (lock, message, removal at exit, only
 * by its owner and only while the file is its own).
 *
 * Each case forks a "starter" whose stderr is a file; the starter calls
 * va_daemon_begin() and only the daemon comes back, to run the case's
 * body.  This process is a subreaper, so the daemons come back to it and
 * are reaped here.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <CUnit/Basic.h>
#include <CUnit/CUnit.h>

#include "daemon.h"
#include "log.h"

#include "cunit-main.h"

static char dir[96]; /* made by main() */

/* --- helpers ---------------------------------------------------------------- */

static void
path_in_dir(char *out, size_t len, const char *name)
{
	snprintf(out, len, "%s/%s", dir, name);
}

static void
read_file(const char *path, char *buf, size_t len)
{
	buf[0] = '\0';
	FILE *f = fopen(path, "r");
	if (!f)
		return;
	size_t n = fread(buf, 1, len - 1, f);
	buf[n] = '\0';
	fclose(f);
}

/* Reaps whatever came back to this subreaper (the daemons). */
static void
reap_all(void)
{
	while (waitpid(-1, NULL, WNOHANG) > 0)
		;
}

struct run {
	int status;  /* the starter's wait status */
	char err[4096];
	double secs;
};

/*
 * Forks the starter: stderr to a file, va_daemon_begin(), body() in the
 * daemon, then exit(0) when the body returns.  prepare() (if any) runs in
 * the starter before the begin.
 */
static void
start(struct run *r, void (*prepare)(void), void (*body)(void))
{
	char errpath[256];
	struct timespec t0, t1;

	path_in_dir(errpath, sizeof(errpath), "stderr");
	unlink(errpath);
	fflush(NULL);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	pid_t pid = fork();
	if (pid == 0) {
		int fd = open(errpath, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		if (fd < 0 || dup2(fd, 2) < 0)
			_exit(99);
		close(fd);
		va_log_init("t", 0, VA_LOG_INFO);
		if (prepare)
			prepare();
		va_daemon_begin();
		body();
		exit(0);
	}
	r->status = -1;
	if (pid > 0)
		while (waitpid(pid, &r->status, 0) < 0 && errno == EINTR)
			;
	clock_gettime(CLOCK_MONOTONIC, &t1);
	r->secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	read_file(errpath, r->err, sizeof(r->err));
}

static int
exited(const struct run *r, int code)
{
	int ok = WIFEXITED(r->status) && WEXITSTATUS(r->status) == code;
	if (!ok)
		fprintf(stderr, "\n  starter: wait status %#x, stderr: %s\n", (unsigned)r->status,
			r->err);
	return ok;
}

/* The daemon's own word on a check (the starter is gone by then): a file. */
static void
daemon_says(const char *what)
{
	char p[256];
	path_in_dir(p, sizeof(p), "daemon-says");
	FILE *f = fopen(p, "w");
	if (f) {
		fputs(what, f);
		fclose(f);
	}
}

static int
wait_daemon_says(char *buf, size_t len)
{
	char p[256];
	path_in_dir(p, sizeof(p), "daemon-says");
	for (int i = 0; i < 500; i++) {
		read_file(p, buf, len);
		if (buf[0]) {
			unlink(p);
			return 1;
		}
		usleep(10000);
	}
	return 0;
}

/* --- the starter's exit status and stderr ---------------------------------- */

static void
body_ready(void)
{
	va_log_warnx("a warning before the detach");
	va_daemon_detach();
	va_log_warnx("a warning after the detach (syslog only)");
	va_daemon_ready();
	va_daemon_ready(); /* a second time: nothing */
}

static void
test_ready(void)
{
	struct run r;
	start(&r, NULL, body_ready);
	CU_ASSERT_TRUE(exited(&r, 0));
	/* Before the detach the daemon shares the starter's stderr. */
	CU_ASSERT_STRING_EQUAL(r.err, "t: warn: a warning before the detach\n");
	reap_all();
}

static void
body_fatal_early(void)
{
	va_fatalx("cannot open %s", "the thing");
}

static void
test_fatal_before_detach(void)
{
	struct run r;
	start(&r, NULL, body_fatal_early);
	CU_ASSERT_TRUE(exited(&r, 1));
	/* Said by the daemon itself, and only once. */
	CU_ASSERT_STRING_EQUAL(r.err, "t: error: cannot open the thing\n");
	reap_all();
}

static void
body_fatal_late(void)
{
	va_daemon_detach();
	errno = ENOENT;
	va_fatal("late %d", 42);
}

static void
test_fatal_after_detach(void)
{
	struct run r;
	start(&r, NULL, body_fatal_late);
	CU_ASSERT_TRUE(exited(&r, 1));
	/* Passed back through the pipe and said by the starter. */
	CU_ASSERT_STRING_EQUAL(r.err, "t: error: late 42: No such file or directory\n");
	reap_all();
}

static void
body_fail_direct(void)
{
	va_daemon_detach();
	va_daemon_fail("told directly");
	va_daemon_fail("twice: not passed on");
	exit(1);
}

static void
test_fail_direct(void)
{
	struct run r;
	start(&r, NULL, body_fail_direct);
	CU_ASSERT_TRUE(exited(&r, 1));
	CU_ASSERT_STRING_EQUAL(r.err, "t: error: told directly\n");
	reap_all();
}

static void
body_silent_exit(void)
{
	exit(3);
}

static void
test_exit_without_a_word(void)
{
	struct run r;
	start(&r, NULL, body_silent_exit);
	CU_ASSERT_TRUE(exited(&r, 1));
	CU_ASSERT_PTR_NOT_NULL(strstr(r.err, "t: failed to start: the daemon exited before it was ready"));
	CU_ASSERT_PTR_NULL(strstr(r.err, "system log"));
	reap_all();
}

static void
body_killed_after_detach(void)
{
	va_daemon_detach();
	raise(SIGKILL);
}

static void
test_killed_after_detach(void)
{
	struct run r;
	start(&r, NULL, body_killed_after_detach);
	CU_ASSERT_TRUE(exited(&r, 1));
	CU_ASSERT_PTR_NOT_NULL(strstr(r.err, "exited before it was ready (see the system log)"));
	reap_all();
}

static void
body_fatal_after_ready(void)
{
	va_daemon_detach();
	va_daemon_ready();
	usleep(200000);
	va_fatalx("after the start: syslog only");
}

static void
test_fatal_after_ready(void)
{
	struct run r;
	start(&r, NULL, body_fatal_after_ready);
	CU_ASSERT_TRUE(exited(&r, 0));
	CU_ASSERT_TRUE(r.secs < 0.15);
	usleep(300000);
	CU_ASSERT_STRING_EQUAL(r.err, "");
	reap_all();
}

static void
body_slow_ready(void)
{
	usleep(300000);
	va_daemon_detach();
	va_daemon_ready();
}

static void
test_waits_for_ready(void)
{
	struct run r;
	start(&r, NULL, body_slow_ready);
	CU_ASSERT_TRUE(exited(&r, 0));
	CU_ASSERT_TRUE(r.secs >= 0.3);
	reap_all();
}

/* --- what the daemon gets --------------------------------------------------- */

static int inherited_fd = -1;

static void
prepare_inherit(void)
{
	/* An fd without close-on-exec, and 0 and 1 closed. */
	inherited_fd = open("/dev/null", O_RDONLY);
	close(0);
	close(1);
}

static void
body_check_environment(void)
{
	char cwd[64] = "";
	char what[512];
	mode_t um = umask(0);
	int fds_ok = fcntl(0, F_GETFD) >= 0 && fcntl(1, F_GETFD) >= 0 && fcntl(2, F_GETFD) >= 0;
	int closed = inherited_fd > 2 && fcntl(inherited_fd, F_GETFD) < 0 && errno == EBADF;
	pid_t sid = getsid(0);

	if (!getcwd(cwd, sizeof(cwd)))
		cwd[0] = '\0';
	va_daemon_detach();
	snprintf(what, sizeof(what), "cwd=%s umask=%03o std=%d inherited-closed=%d leader=%d",
		 cwd, (unsigned)um, fds_ok, closed, sid == getpid());
	/* With 0 and 1 closed at the start, a careless begin would have put
	 * the pipe there, and the detach would have cut it: no ready then. */
	va_daemon_ready();
	daemon_says(what);
}

static void
test_daemon_environment(void)
{
	struct run r;
	char what[512];
	start(&r, prepare_inherit, body_check_environment);
	CU_ASSERT_TRUE(exited(&r, 0));
	CU_ASSERT_TRUE(wait_daemon_says(what, sizeof(what)));
	CU_ASSERT_STRING_EQUAL(what, "cwd=/ umask=022 std=1 inherited-closed=1 leader=0");
	reap_all();
}

/* --- the pidfile ------------------------------------------------------------ */

static char pidpath[256];

static void
body_pidfile_hold(void)
{
	va_pidfile_create(pidpath);
	va_daemon_detach();
	va_daemon_ready();
	/* Held until the test sends SIGTERM; exit() then runs atexit. */
	struct sigaction sa = { .sa_handler = SIG_DFL };
	sigaction(SIGTERM, &sa, NULL);
	sigset_t s;
	sigemptyset(&s);
	sigaddset(&s, SIGTERM);
	sigprocmask(SIG_BLOCK, &s, NULL);
	int sig;
	sigwait(&s, &sig);
	/* A forked child that exits normally must not remove it. */
	pid_t c = fork();
	if (c == 0)
		exit(0);
	waitpid(c, NULL, 0);
	char p[32];
	read_file(pidpath, p, sizeof(p));
	daemon_says(p[0] ? "child left it" : "child removed it");
	exit(0);
}

static long
pid_in_file(void)
{
	char buf[64];
	read_file(pidpath, buf, sizeof(buf));
	char *end;
	long pid = strtol(buf, &end, 10);
	return pid > 0 && strcmp(end, "\n") == 0 ? pid : 0;
}

static void
body_second(void)
{
	va_pidfile_create(pidpath);
	va_daemon_detach();
	va_daemon_ready();
}

static void
test_pidfile(void)
{
	struct run r, r2;
	char what[64];

	path_in_dir(pidpath, sizeof(pidpath), "p.pid");
	/* Stale, longer than any pid: truncated, not overwritten in place. */
	FILE *f = fopen(pidpath, "w");
	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	fputs("123456789012345\n", f);
	fclose(f);

	start(&r, NULL, body_pidfile_hold);
	CU_ASSERT_TRUE(exited(&r, 0));
	long pid = pid_in_file();
	CU_ASSERT_TRUE(pid > 0 && kill((pid_t)pid, 0) == 0);

	start(&r2, NULL, body_second);
	CU_ASSERT_TRUE(exited(&r2, 1));
	char want[512];
	snprintf(want, sizeof(want), "t: error: pidfile %s is locked: another t runs (pid %ld)\n",
		 pidpath, pid);
	CU_ASSERT_STRING_EQUAL(r2.err, want);
	CU_ASSERT_EQUAL(pid_in_file(), pid);

	if (pid > 0)
		kill((pid_t)pid, SIGTERM);
	CU_ASSERT_TRUE(wait_daemon_says(what, sizeof(what)));
	CU_ASSERT_STRING_EQUAL(what, "child left it");
	for (int i = 0; i < 300 && access(pidpath, F_OK) == 0; i++)
		usleep(10000);
	CU_ASSERT_EQUAL(access(pidpath, F_OK), -1);
	reap_all();
}

static void
body_pidfile_replaced(void)
{
	va_pidfile_create(pidpath);
	va_daemon_detach();
	va_daemon_ready();
	/* Wait until the test has put another file at the path. */
	char p[256];
	path_in_dir(p, sizeof(p), "go");
	for (int i = 0; i < 500 && access(p, F_OK) != 0; i++)
		usleep(10000);
	exit(0);
}

static void
test_pidfile_replaced(void)
{
	struct run r;
	char go[256], buf[64];

	path_in_dir(pidpath, sizeof(pidpath), "q.pid");
	path_in_dir(go, sizeof(go), "go");
	start(&r, NULL, body_pidfile_replaced);
	CU_ASSERT_TRUE(exited(&r, 0));
	long pid = pid_in_file();
	CU_ASSERT_TRUE(pid > 0);
	/* Another instance's file now (as after "rm pidfile; start again"). */
	CU_ASSERT_EQUAL(unlink(pidpath), 0);
	FILE *f = fopen(pidpath, "w");
	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	fputs("other\n", f);
	fclose(f);
	f = fopen(go, "w");
	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	fclose(f);
	for (int i = 0; i < 300 && pid > 0 && kill((pid_t)pid, 0) == 0; i++) {
		reap_all();
		usleep(10000);
	}
	read_file(pidpath, buf, sizeof(buf));
	CU_ASSERT_STRING_EQUAL(buf, "other\n");
	unlink(pidpath);
	unlink(go);
	reap_all();
}

static void
slow_exit(void)
{
	usleep(200000);
}

static void
body_pidfile_then_fatal(void)
{
	va_pidfile_create(pidpath);
	/* Runs before the pidfile's removal: a waiting process that does not
	 * wait for the daemon's end returns while the pidfile is there. */
	atexit(slow_exit);
	va_daemon_detach();
	va_fatalx("failed with the pidfile written");
}

static void
test_pidfile_gone_when_caller_returns(void)
{
	struct run r;
	path_in_dir(pidpath, sizeof(pidpath), "f.pid");
	start(&r, NULL, body_pidfile_then_fatal);
	CU_ASSERT_TRUE(exited(&r, 1));
	CU_ASSERT_STRING_EQUAL(r.err, "t: error: failed with the pidfile written\n");
	/* No waiting: the daemon has exited, its atexit handlers have run. */
	CU_ASSERT_EQUAL(access(pidpath, F_OK), -1);
	unlink(pidpath);
	reap_all();
}

static void
body_pidfile_dir(void)
{
	va_pidfile_create(dir);
}

static void
test_pidfile_not_a_file(void)
{
	struct run r;
	start(&r, NULL, body_pidfile_dir);
	CU_ASSERT_TRUE(exited(&r, 1));
	CU_ASSERT_PTR_NOT_NULL(strstr(r.err, "t: error: pidfile "));
	reap_all();
}

/* --- main ------------------------------------------------------------------- */

static const struct va_test tests[] = {
	{ "ready: exit 0, early messages on the caller's stderr", test_ready },
	{ "the caller waits for ready", test_waits_for_ready },
	{ "fatal before the detach: exit 1, said once", test_fatal_before_detach },
	{ "fatal after the detach: exit 1, passed back", test_fatal_after_detach },
	{ "va_daemon_fail: exit 1, passed back once", test_fail_direct },
	{ "exit without a word: exit 1", test_exit_without_a_word },
	{ "killed after the detach: exit 1", test_killed_after_detach },
	{ "fatal after ready: the caller exited 0 already", test_fatal_after_ready },
	{ "the daemon's cwd, umask, fds and session", test_daemon_environment },
	{ "pidfile: lock, second instance, removal", test_pidfile },
	{ "pidfile: another's file is not removed", test_pidfile_replaced },
	{ "pidfile: not a regular file", test_pidfile_not_a_file },
	{ "pidfile: removed before a failed start returns", test_pidfile_gone_when_caller_returns },
};

int
main(void)
{
	if (va_test_mkdtemp(dir, sizeof(dir), "test-daemon.") < 0) {
		perror("mkdtemp");
		return 2;
	}
	prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
	int status = va_test_run("daemon", VA_TESTS(tests));
	reap_all();
	char p[300];
	path_in_dir(p, sizeof(p), "stderr");
	unlink(p);
	if (rmdir(dir) < 0)
		fprintf(stderr, "test-daemon: %s left: %s\n", dir, strerror(errno));
	return status;
}

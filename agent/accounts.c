/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * accounts.c - the group "accounts": va.user.set_password and
 * va.ssh.keys.get/add/remove/set.  Opt-in: off unless --enable-accounts
 * (accounts = yes in va-agent.conf).
 *
 * Passwords: the agent hashes the password itself with crypt(3)
 * (SHA-512, "$6$", a random salt from crypt_gensalt: every libc and
 * busybox reads it) and writes the hash into /etc/shadow (or field 2
 * of /etc/passwd on a system without shadow).  No program is run: the
 * password is never on a command line, in an environment or in a
 * file, and the plain text is wiped from the agent's own copy once
 * hashed (xmlrpc-c's parse keeps copies until the call is freed).  The
 * log says which user, never the password.  A busybox guest has no
 * chpasswd, and Debian's runs PAM, which is more than a root daemon
 * needs to write one field.  The file is replaced atomically (a
 * temporary file in /etc with the original's owner and mode, fsync,
 * rename) under /etc/.pwd.lock, the lock that glibc's lckpwdf() and
 * shadow-utils take (fcntl, not waited for: a held lock is a "busy"
 * fault), and an existing /etc/shadow.lock (shadow-utils editing) is
 * a "busy" fault too.  With crypted, password is an existing hash,
 * written as it is.
 *
 * SSH keys: ~user/.ssh/authorized_keys.  The home directory comes from
 * the passwd entry; .ssh is opened with O_NOFOLLOW and must be a
 * directory owned by the user and writable by nobody else (created
 * 0700 and owned by the user when missing); the file is read with
 * O_NOFOLLOW and must be a regular file owned by the user or root.  A
 * new file is written as a temporary file in .ssh (O_EXCL|O_NOFOLLOW),
 * fchown'd to the user, fchmod'ed 0600, fsync'ed and renamed over
 * authorized_keys, all relative to the directory's fd, so that the
 * user (who owns .ssh) cannot point a write anywhere else.  Keys are
 * compared by their type and base64 blob (options and comments
 * aside): add skips keys already there, remove drops the lines with
 * a given key; lines that are not keys (comments) are kept.
 *
 * Faults:
 *   XMLRPC_TYPE_ERROR            wrong parameters, a key that is not one
 *                                line of "[options] TYPE BASE64 [comment]"
 *   XMLRPC_REQUEST_REFUSED_ERROR no such user; .ssh or the file is a
 *                                symlink, not owned by the user, or
 *                                writable by others
 *   XMLRPC_LIMIT_EXCEEDED_ERROR  the password files are locked (busy);
 *                                too many or too long keys
 *   XMLRPC_INTERNAL_ERROR        an I/O error (its reason)
 */
#include "config.h"

#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif

#include <crypt.h>
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "groups.h"
#include "log.h"
#include "methods.h"
#include "text.h"

#define ETC_SHADOW "/etc/shadow"
#define ETC_PASSWD "/etc/passwd"
#define PWD_LOCK "/etc/.pwd.lock"
#define SHADOW_LOCK "/etc/shadow.lock"
#define MAX_PASSWD_FILE (8u * 1024 * 1024)
#define MAX_PASSWORD 4096
#define MAX_KEYS 1024
#define MAX_KEY_LEN (16u * 1024)
#define MAX_KEYS_FILE (1024u * 1024)

/* ---- small file helpers ------------------------------------------------------------- */

/* Reads all of fd (at most max bytes) into b; 0, -EFBIG, or -errno. */
static int
read_all(int fd, struct va_buf *b, size_t max)
{
	for (;;) {
		if (va_buf_reserve(b, 65536) < 0)
			return -ENOMEM;
		ssize_t r = read(fd, b->data + b->len, b->cap - b->len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		if (r == 0)
			return 0;
		b->len += (size_t)r;
		if (b->len > max)
			return -EFBIG;
	}
}

static int
write_all(int fd, const uint8_t *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -errno;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/*
 * Replaces name in the directory dirfd with data: a temporary file
 * beside it (O_EXCL|O_NOFOLLOW), owner and mode set on its fd, fsync,
 * rename, fsync of the directory.  0 or -errno (nothing left behind).
 */
static int
replace_file(int dirfd, const char *name, const struct va_buf *data, uid_t uid, gid_t gid,
	     mode_t mode)
{
	unsigned char rnd[6];
	char tmp[256];
	int fd = -1, r;

	for (int tries = 0; fd < 0 && tries < 8; tries++) {
		if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
			return -EIO;
		snprintf(tmp, sizeof(tmp), "%s.va-%02x%02x%02x%02x%02x%02x", name, rnd[0], rnd[1],
			 rnd[2], rnd[3], rnd[4], rnd[5]);
		fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
		if (fd < 0 && errno != EEXIST)
			return -errno;
	}
	if (fd < 0)
		return -EEXIST;
	r = write_all(fd, data->data, data->len);
	if (r == 0 && fchown(fd, uid, gid) < 0)
		r = -errno;
	if (r == 0 && fchmod(fd, mode) < 0)
		r = -errno;
	if (r == 0 && fsync(fd) < 0)
		r = -errno;
	if (close(fd) < 0 && r == 0)
		r = -errno;
	if (r == 0 && renameat(dirfd, tmp, dirfd, name) < 0)
		r = -errno;
	if (r < 0) {
		unlinkat(dirfd, tmp, 0);
		return r;
	}
	fsync(dirfd);
	return 0;
}

/* The passwd entry of user: 0, or -1 with a fault. */
static int
find_user(xmlrpc_env *env, const char *method, const char *user, struct passwd *pw,
	  char *buf, size_t buflen)
{
	struct passwd *res = NULL;
	int rc = getpwnam_r(user, pw, buf, buflen, &res);

	if (res)
		return 0;
	va_fault(env, XMLRPC_REQUEST_REFUSED_ERROR,
	    "%s: no user \"%s\" in the guest%s%s", method, user, rc ? ": " : "",
	    rc ? strerror(rc) : "");
	return -1;
}

/* ---- va.user.set_password -------------------------------------------------------------- */

/* A hash (or another crypt(3) field) fit for a passwd file: printable, no ':'. */
static int
field_ok(const char *s)
{
	if (!*s || strlen(s) > 512)
		return 0;
	for (const char *p = s; *p; p++)
		if (*p <= ' ' || *p > '~' || *p == ':')
			return 0;
	return 1;
}

/*
 * Sets field 2 (and in shadow, field 3, the day of the change) of
 * user's line in text (a passwd or shadow file); adds a shadow line when
 * there is none.  The new text in out.  0, or -ENOENT (no line).
 */
static int
set_field(const struct va_buf *text, const char *user, const char *hash, int shadow,
	  struct va_buf *out)
{
	size_t ul = strlen(user), pos = 0;
	int found = 0;
	long days = (long)(time(NULL) / 86400);

	while (pos < text->len) {
		const char *line = (const char *)text->data + pos;
		const char *nl = memchr(line, '\n', text->len - pos);
		size_t len = nl ? (size_t)(nl - line) + 1 : text->len - pos;
		pos += len;
		if (found || len <= ul || memcmp(line, user, ul) != 0 || line[ul] != ':') {
			if (va_buf_append(out, line, len) < 0)
				return -ENOMEM;
			continue;
		}
		found = 1;
		/* user : old : rest */
		const char *f2 = line + ul + 1;
		const char *end = line + len - (nl ? 1 : 0);
		const char *c2 = memchr(f2, ':', (size_t)(end - f2));
		const char *rest = c2 ? c2 + 1 : end;
		if (va_buf_printf(out, "%s:%s:", user, hash) < 0)
			return -ENOMEM;
		if (shadow && c2) {
			/* lastchg: the day of this change. */
			const char *c3 = memchr(rest, ':', (size_t)(end - rest));
			if (c3) {
				if (va_buf_printf(out, "%ld", days) < 0)
					return -ENOMEM;
				rest = c3;
			}
		}
		if (va_buf_append(out, rest, (size_t)(end - rest)) < 0 ||
		    va_buf_append_str(out, "\n") < 0)
			return -ENOMEM;
	}
	if (!found) {
		if (!shadow)
			return -ENOENT;
		if (va_buf_printf(out, "%s%s:%s:%ld:0:99999:7:::\n",
				  out->len && out->data[out->len - 1] != '\n' ? "\n" : "", user, hash,
				  days) < 0)
			return -ENOMEM;
	}
	return 0;
}

/* Writes hash for user into the shadow (or passwd) file.  0, or -1 with a fault. */
static int
store_hash(xmlrpc_env *env, const char *user, const char *hash)
{
	static const char m[] = "va.user.set_password";
	struct va_buf text = { 0 }, out = { 0 };
	struct stat st;
	int shadow = access(ETC_SHADOW, F_OK) == 0;
	const char *path = shadow ? ETC_SHADOW : ETC_PASSWD;
	int lock = -1, fd = -1, etc = -1, r = -1;

	lock = open(PWD_LOCK, O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
	if (lock < 0 || fcntl(lock, F_SETLK, &fl) < 0) {
		int e = errno;
		va_fault(env, lock >= 0 && (e == EAGAIN || e == EACCES) ?
		    XMLRPC_LIMIT_EXCEEDED_ERROR : XMLRPC_INTERNAL_ERROR,
		    "%s: busy: %s: %s; try again", m, PWD_LOCK,
		    lock >= 0 ? "held by another program" : strerror(e));
		goto out;
	}
	if (access(SHADOW_LOCK, F_OK) == 0) {
		va_fault(env, XMLRPC_LIMIT_EXCEEDED_ERROR,
		    "%s: busy: %s exists (another program edits the password files); try again",
		    m, SHADOW_LOCK);
		goto out;
	}
	etc = open("/etc", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	fd = etc < 0 ? -1 : openat(etc, path + 5, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	int e = fd < 0 ? errno : 0;
	if (fd >= 0 && fstat(fd, &st) < 0)
		e = errno;
	else if (fd >= 0 && !S_ISREG(st.st_mode))
		e = EINVAL;
	if (!e) {
		int rr = read_all(fd, &text, MAX_PASSWD_FILE);
		e = rr < 0 ? -rr : 0;
	}
	if (e) {
		va_fault(env, XMLRPC_INTERNAL_ERROR, "%s: cannot read %s: %s",
		    m, path, e == EINVAL ? "not a regular file" : strerror(e));
		goto out;
	}
	int s = set_field(&text, user, hash, shadow, &out);
	if (s == -ENOENT) {
		va_fault(env, XMLRPC_REQUEST_REFUSED_ERROR,
		    "%s: user %s has no line in %s (an account from elsewhere, NSS)", m, user, path);
		goto out;
	}
	if (s == 0)
		s = replace_file(etc, path + 5, &out, st.st_uid, st.st_gid, st.st_mode & 07777);
	if (s < 0) {
		va_fault(env, XMLRPC_INTERNAL_ERROR, "%s: cannot write %s: %s",
		    m, path, strerror(-s));
		goto out;
	}
	va_log_info("%s: the password of %s was set in %s", m, user, path);
	r = 0;
out:
	if (fd >= 0)
		close(fd);
	if (etc >= 0)
		close(etc);
	if (lock >= 0)
		close(lock); /* releases the lock */
	/* The old and new files hold hashes, not passwords: freed as they are. */
	va_buf_free(&text);
	va_buf_free(&out);
	return r;
}

static xmlrpc_value *
method_set_password(xmlrpc_env *env, xmlrpc_value *params, void *server_info, void *call_info)
{
	static const char usage[] =
		"va.user.set_password: expected (string user, string password[, boolean crypted])";
	static const char m[] = "va.user.set_password";
	char *user = NULL, *pass = NULL;
	size_t plen = 0;
	xmlrpc_bool crypted = 0;
	struct passwd pw;
	char pwbuf[16384];
	xmlrpc_value *v, *res = NULL;
	int n = va_params_count(env, params, 2, 3, usage);

	(void)server_info;
	(void)call_info;
	if (n < 0)
		return NULL;
	for (int i = 0; i < 2 && !env->fault_occurred; i++) {
		v = va_param_typed(env, params, i, usage, XMLRPC_TYPE_STRING, XMLRPC_TYPE_STRING);
		if (v) {
			va_text_read(env, v, i ? &pass : &user, i ? &plen : NULL);
			xmlrpc_DECREF(v);
		}
	}
	if (!env->fault_occurred && n == 3) {
		v = va_param_typed(env, params, 2, usage, XMLRPC_TYPE_BOOL, XMLRPC_TYPE_BOOL);
		if (v) {
			xmlrpc_read_bool(env, v, &crypted);
			xmlrpc_DECREF(v);
		}
	}
	if (env->fault_occurred)
		goto out;
	va_log_info("%s %s%s", m, user, crypted ? " (a hash)" : "");
	if (plen == 0 || plen > MAX_PASSWORD) {
		va_fault(env, XMLRPC_TYPE_ERROR,
		    "%s: the password is %s (1 to %d bytes)", m, plen ? "too long" : "empty",
		    MAX_PASSWORD);
		goto out;
	}
	if (find_user(env, m, user, &pw, pwbuf, sizeof(pwbuf)) < 0)
		goto out;
	if (crypted) {
		if (!field_ok(pass)) {
			va_fault(env, XMLRPC_TYPE_ERROR,
			    "%s: a crypted password is printable ASCII without ':' or spaces", m);
			goto out;
		}
		if (store_hash(env, user, pass) == 0)
			res = xmlrpc_bool_new(env, 1);
		goto out;
	}
	char salt[CRYPT_GENSALT_OUTPUT_SIZE];
	struct crypt_data *cd = calloc(1, sizeof(*cd));
	const char *hash = NULL;
	if (cd && crypt_gensalt_rn("$6$", 0, NULL, 0, salt, sizeof(salt)))
		hash = crypt_rn(pass, salt, cd, sizeof(*cd));
	explicit_bzero(pass, plen);
	if (!hash || hash[0] == '*') {
		va_fault(env, XMLRPC_INTERNAL_ERROR,
		    "%s: crypt(3) failed: %s", m, cd ? strerror(errno) : "out of memory");
	} else if (store_hash(env, user, hash) == 0) {
		res = xmlrpc_bool_new(env, 1);
	}
	if (cd) {
		explicit_bzero(cd, sizeof(*cd));
		free(cd);
	}
out:
	if (pass)
		explicit_bzero(pass, plen);
	free(pass);
	free(user);
	return res;
}

/* ---- authorized_keys ------------------------------------------------------------------------ */

static int
is_key_type(const char *s, size_t n)
{
	static const char *const prefixes[] = { "ssh-", "ecdsa-sha2-", "sk-ssh-", "sk-ecdsa-sha2-" };

	for (size_t i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++) {
		size_t pl = strlen(prefixes[i]);
		if (n > pl && memcmp(s, prefixes[i], pl) == 0)
			return 1;
	}
	return 0;
}

static int
is_b64(const char *s, size_t n)
{
	if (n < 16)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= 'a' && s[i] <= 'z') ||
		      (s[i] >= '0' && s[i] <= '9') || s[i] == '+' || s[i] == '/' || s[i] == '='))
			return 0;
	return 1;
}

/*
 * The key of a line: "TYPE BLOB" (where in line, and its length), found
 * as the first word that is a key type followed by a base64 word (the
 * options before it may hold quoted spaces; they are skipped word by
 * word).  0, or -1 when the line holds no key.
 */
static int
key_of(const char *line, size_t len, const char **key, size_t *klen)
{
	size_t i = 0;

	while (i < len) {
		while (i < len && (line[i] == ' ' || line[i] == '\t'))
			i++;
		if (i < len && line[i] == '#')
			return -1;
		size_t w = i;
		while (w < len && line[w] != ' ' && line[w] != '\t')
			w++;
		if (is_key_type(line + i, w - i)) {
			size_t b = w;
			while (b < len && (line[b] == ' ' || line[b] == '\t'))
				b++;
			size_t be = b;
			while (be < len && line[be] != ' ' && line[be] != '\t')
				be++;
			if (is_b64(line + b, be - b)) {
				*key = line + i;
				/* "TYPE BLOB" compared with one space between */
				*klen = be - i;
				return 0;
			}
		}
		i = w;
	}
	return -1;
}

/* Two keys alike: same type and blob, whatever the white space between. */
static int
same_key(const char *a, size_t al, const char *b, size_t bl)
{
	size_t ta = strcspn(a, " \t"), tb = strcspn(b, " \t");
	if (ta != tb || memcmp(a, b, ta) != 0)
		return 0;
	while (ta < al && (a[ta] == ' ' || a[ta] == '\t'))
		ta++;
	while (tb < bl && (b[tb] == ' ' || b[tb] == '\t'))
		tb++;
	return al - ta == bl - tb && memcmp(a + ta, b + tb, al - ta) == 0;
}

struct keyset {
	char **keys;  /* the given keys (lines) */
	size_t n;
};

static void
keyset_free(struct keyset *k)
{
	for (size_t i = 0; i < k->n; i++)
		free(k->keys[i]);
	free(k->keys);
}

static void
read_keys(xmlrpc_env *env, const char *m, xmlrpc_value *arr, struct keyset *k)
{
	int n = xmlrpc_array_size(env, arr);

	if (env->fault_occurred)
		return;
	if (n > MAX_KEYS) {
		va_fault(env, XMLRPC_LIMIT_EXCEEDED_ERROR,
		    "%s: %d keys (at most %d)", m, n, MAX_KEYS);
		return;
	}
	k->keys = calloc((size_t)n + 1, sizeof(char *));
	if (!k->keys) {
		va_fault(env, XMLRPC_INTERNAL_ERROR, "%s: out of memory", m);
		return;
	}
	for (int i = 0; i < n && !env->fault_occurred; i++) {
		xmlrpc_value *v = NULL;
		size_t len = 0;
		const char *key;
		size_t klen;
		xmlrpc_array_read_item(env, arr, (unsigned)i, &v);
		if (env->fault_occurred)
			return;
		if (xmlrpc_value_type(v) != XMLRPC_TYPE_STRING)
			va_fault(env, XMLRPC_TYPE_ERROR,
			    "%s: key %d is not a string", m, i + 1);
		else
			va_text_read(env, v, &k->keys[i], &len);
		xmlrpc_DECREF(v);
		if (env->fault_occurred)
			return;
		k->n = (size_t)i + 1;
		/* Trailing white space and one final newline are not part of it. */
		while (len > 0 && (k->keys[i][len - 1] == '\n' || k->keys[i][len - 1] == ' ' ||
				   k->keys[i][len - 1] == '\t'))
			k->keys[i][--len] = '\0';
		if (len > MAX_KEY_LEN)
			va_fault(env, XMLRPC_LIMIT_EXCEEDED_ERROR,
			    "%s: key %d is %zu bytes long (at most %u)", m, i + 1, len, MAX_KEY_LEN);
		else if (strpbrk(k->keys[i], "\r\n"))
			va_fault(env, XMLRPC_TYPE_ERROR,
			    "%s: key %d holds a line break (one key a line)", m, i + 1);
		else if (key_of(k->keys[i], len, &key, &klen) < 0)
			va_fault(env, XMLRPC_TYPE_ERROR,
			    "%s: key %d is not an SSH public key (\"[options] TYPE BASE64 "
			    "[comment]\", TYPE ssh-..., ecdsa-sha2-..., sk-...)", m, i + 1);
	}
}

/* Whether the keyset holds the key of line. */
static int
keyset_has(const struct keyset *k, const char *key, size_t klen)
{
	for (size_t i = 0; i < k->n; i++) {
		const char *g;
		size_t gl;
		if (key_of(k->keys[i], strlen(k->keys[i]), &g, &gl) == 0 && same_key(g, gl, key, klen))
			return 1;
	}
	return 0;
}

enum keys_op { KEYS_GET, KEYS_ADD, KEYS_REMOVE, KEYS_SET };

static const char *const op_names[] = {
	"va.ssh.keys.get", "va.ssh.keys.add", "va.ssh.keys.remove", "va.ssh.keys.set",
};

/* Opens ~user/.ssh (created when create), checked.  The fd, -2 when missing, or -1 with a fault. */
static int
open_ssh_dir(xmlrpc_env *env, const char *m, const struct passwd *pw, int create)
{
	struct stat st;
	int home = open(pw->pw_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (home < 0) {
		va_fault(env, XMLRPC_INTERNAL_ERROR,
		    "%s: the home directory %s of %s: %s", m, pw->pw_dir, pw->pw_name, strerror(errno));
		return -1;
	}
	int fd = openat(home, ".ssh", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT) {
		if (!create) {
			close(home);
			return -2;
		}
		if (mkdirat(home, ".ssh", 0700) < 0 && errno != EEXIST) {
			va_fault(env, XMLRPC_INTERNAL_ERROR,
			    "%s: cannot make %s/.ssh: %s", m, pw->pw_dir, strerror(errno));
			close(home);
			return -1;
		}
		fd = openat(home, ".ssh", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd >= 0 && fstat(fd, &st) == 0 && st.st_uid == geteuid() &&
		    (fchown(fd, pw->pw_uid, pw->pw_gid) < 0 || fchmod(fd, 0700) < 0)) {
			va_fault(env, XMLRPC_INTERNAL_ERROR,
			    "%s: cannot give %s/.ssh to %s: %s", m, pw->pw_dir, pw->pw_name,
			    strerror(errno));
			close(fd);
			close(home);
			return -1;
		}
	}
	int e = errno;
	/* O_NOFOLLOW|O_DIRECTORY on a symlink fails with ENOTDIR (or ELOOP): say which. */
	if (fd < 0 && (e == ELOOP || e == ENOTDIR) &&
	    fstatat(home, ".ssh", &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode))
		e = ELOOP;
	close(home);
	if (fd < 0) {
		if (e == ELOOP || e == ENOTDIR)
			va_fault(env, XMLRPC_REQUEST_REFUSED_ERROR,
			    "%s: %s/.ssh is %s: refused", m, pw->pw_dir,
			    e == ELOOP ? "a symbolic link" : "not a directory");
		else
			va_fault(env, XMLRPC_INTERNAL_ERROR,
			    "%s: %s/.ssh: %s", m, pw->pw_dir, strerror(e));
		return -1;
	}
	if (fstat(fd, &st) < 0 || st.st_uid != pw->pw_uid || (st.st_mode & 022)) {
		if (st.st_uid != pw->pw_uid)
			va_fault(env, XMLRPC_REQUEST_REFUSED_ERROR,
			    "%s: %s/.ssh belongs to uid %d, not to %s: refused", m, pw->pw_dir,
			    (int)st.st_uid, pw->pw_name);
		else
			va_fault(env, XMLRPC_REQUEST_REFUSED_ERROR,
			    "%s: %s/.ssh is writable by others (mode %04o): refused", m, pw->pw_dir,
			    (unsigned)(st.st_mode & 07777));
		close(fd);
		return -1;
	}
	return fd;
}

/* Reads authorized_keys in dir into b (empty when missing).  0, or -1 with a fault. */
static int
read_keys_file(xmlrpc_env *env, const char *m, int dir, const struct passwd *pw, struct va_buf *b)
{
	struct stat st;
	int fd = openat(dir, "authorized_keys", O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);

	if (fd < 0 && errno == ENOENT)
		return 0;
	if (fd < 0) {
		va_fault(env, errno == ELOOP ? XMLRPC_REQUEST_REFUSED_ERROR :
		    XMLRPC_INTERNAL_ERROR, "%s: %s/.ssh/authorized_keys: %s", m, pw->pw_dir,
		    errno == ELOOP ? "a symbolic link: refused" : strerror(errno));
		return -1;
	}
	int r = 0;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) ||
	    (st.st_uid != pw->pw_uid && st.st_uid != 0)) {
		va_fault(env, XMLRPC_REQUEST_REFUSED_ERROR,
		    "%s: %s/.ssh/authorized_keys is not a regular file of %s: refused", m,
		    pw->pw_dir, pw->pw_name);
		r = -1;
	} else if ((r = read_all(fd, b, MAX_KEYS_FILE)) < 0) {
		va_fault(env, r == -EFBIG ? XMLRPC_LIMIT_EXCEEDED_ERROR :
		    XMLRPC_INTERNAL_ERROR, "%s: %s/.ssh/authorized_keys: %s", m, pw->pw_dir,
		    r == -EFBIG ? "larger than 1 MiB" : strerror(-r));
		r = -1;
	}
	close(fd);
	return r;
}

/*
 * The keys of the file's text, as an array of its key lines.  The file is
 * the guest user's: bytes XML cannot carry (invalid UTF-8, control
 * characters) become '?' (va_text_sanitize), so that such a line does
 * not make every call on the user's keys fail; its type and blob, which
 * compare keys, are ASCII and stay.
 */
static xmlrpc_value *
keys_value(xmlrpc_env *env, const struct va_buf *file)
{
	struct va_buf copy = { 0 }, *text = &copy;
	xmlrpc_value *arr = NULL;
	size_t pos = 0;

	if (va_buf_append(&copy, file->data, file->len) < 0) {
		va_fault(env, XMLRPC_INTERNAL_ERROR, "out of memory");
		return NULL;
	}
	va_text_sanitize((char *)copy.data, copy.len);
	arr = xmlrpc_array_new(env);
	while (!env->fault_occurred && pos < text->len) {
		const char *line = (const char *)text->data + pos;
		const char *nl = memchr(line, '\n', text->len - pos);
		size_t len = nl ? (size_t)(nl - line) : text->len - pos;
		const char *k;
		size_t kl;
		pos += len + (nl ? 1 : 0);
		if (len && line[len - 1] == '\r')
			len--;
		if (key_of(line, len, &k, &kl) < 0)
			continue;
		xmlrpc_value *s = va_text_value(env, line, len);
		if (!env->fault_occurred) {
			xmlrpc_array_append_item(env, arr, s);
			xmlrpc_DECREF(s);
		}
	}
	va_buf_free(&copy);
	if (env->fault_occurred && arr) {
		xmlrpc_DECREF(arr);
		return NULL;
	}
	return arr;
}

/* The new file: text changed by op with keys.  *changed counts keys added or removed. */
static int
edit_keys(enum keys_op op, const struct va_buf *text, const struct keyset *keys,
	  struct va_buf *out, size_t *changed)
{
	size_t pos = 0;

	*changed = 0;
	if (op == KEYS_SET) {
		for (size_t i = 0; i < keys->n; i++)
			if (va_buf_printf(out, "%s\n", keys->keys[i]) < 0)
				return -ENOMEM;
		*changed = keys->n;
		return 0;
	}
	while (pos < text->len) {
		const char *line = (const char *)text->data + pos;
		const char *nl = memchr(line, '\n', text->len - pos);
		size_t len = nl ? (size_t)(nl - line) : text->len - pos;
		const char *k;
		size_t kl;
		pos += len + (nl ? 1 : 0);
		if (op == KEYS_REMOVE && key_of(line, len, &k, &kl) == 0 && keyset_has(keys, k, kl)) {
			(*changed)++;
			continue;
		}
		if (va_buf_append(out, line, len) < 0 || va_buf_append_str(out, "\n") < 0)
			return -ENOMEM;
	}
	if (op == KEYS_ADD) {
		for (size_t i = 0; i < keys->n; i++) {
			const char *k;
			size_t kl;
			key_of(keys->keys[i], strlen(keys->keys[i]), &k, &kl);
			/* Already in the file, or given twice. */
			struct keyset before = { keys->keys, i };
			int dup = keyset_has(&before, k, kl);
			for (size_t p = 0; !dup && p < text->len;) {
				const char *line = (const char *)text->data + p;
				const char *nl = memchr(line, '\n', text->len - p);
				size_t len = nl ? (size_t)(nl - line) : text->len - p;
				const char *fk;
				size_t fkl;
				p += len + (nl ? 1 : 0);
				dup = key_of(line, len, &fk, &fkl) == 0 && same_key(fk, fkl, k, kl);
			}
			if (dup)
				continue;
			if (va_buf_printf(out, "%s\n", keys->keys[i]) < 0)
				return -ENOMEM;
			(*changed)++;
		}
	}
	return 0;
}

static xmlrpc_value *
keys_call(xmlrpc_env *env, xmlrpc_value *params, enum keys_op op)
{
	const char *m = op_names[op];
	char usage[160];
	char *user = NULL;
	struct keyset keys = { 0 };
	struct passwd pw;
	char pwbuf[16384];
	struct va_buf text = { 0 }, out = { 0 };
	xmlrpc_value *res = NULL;
	int dir = -1;

	snprintf(usage, sizeof(usage), "%s: expected (string user%s)", m,
		 op == KEYS_GET ? "" : ", array keys");
	if (va_params_count(env, params, op == KEYS_GET ? 1 : 2, op == KEYS_GET ? 1 : 2, usage) < 0)
		return NULL;
	xmlrpc_value *v = va_param_typed(env, params, 0, usage, XMLRPC_TYPE_STRING, XMLRPC_TYPE_STRING);
	if (v) {
		va_text_read(env, v, &user, NULL);
		xmlrpc_DECREF(v);
	}
	if (!env->fault_occurred && op != KEYS_GET) {
		v = va_param_typed(env, params, 1, usage, XMLRPC_TYPE_ARRAY, XMLRPC_TYPE_ARRAY);
		if (v) {
			read_keys(env, m, v, &keys);
			xmlrpc_DECREF(v);
		}
	}
	if (env->fault_occurred || find_user(env, m, user, &pw, pwbuf, sizeof(pwbuf)) < 0)
		goto out;
	dir = open_ssh_dir(env, m, &pw, op == KEYS_ADD || op == KEYS_SET);
	if (dir == -1)
		goto out;
	if (dir >= 0 && read_keys_file(env, m, dir, &pw, &text) < 0)
		goto out;
	if (op == KEYS_GET || dir < 0) {
		va_log_info("%s %s", m, user);
		res = keys_value(env, &text);
		goto out;
	}
	size_t changed = 0;
	int r = edit_keys(op, &text, &keys, &out, &changed);
	if (r == 0 && (changed || op == KEYS_SET))
		r = replace_file(dir, "authorized_keys", &out, pw.pw_uid, pw.pw_gid, 0600);
	if (r < 0) {
		va_fault(env, XMLRPC_INTERNAL_ERROR,
		    "%s: cannot write %s/.ssh/authorized_keys: %s", m, pw.pw_dir, strerror(-r));
		goto out;
	}
	va_log_info("%s %s: %zu key%s %s", m, user, changed, changed == 1 ? "" : "s",
		    op == KEYS_REMOVE ? "removed" : op == KEYS_ADD ? "added" : "written");
	res = keys_value(env, changed || op == KEYS_SET ? &out : &text);
out:
	if (dir >= 0)
		close(dir);
	keyset_free(&keys);
	va_buf_free(&text);
	va_buf_free(&out);
	free(user);
	return res;
}

/* The four methods of va.ssh.keys.*: keys_call with their operation. */
#define KEYS_METHOD(fn, op)                                                              \
	static xmlrpc_value *fn(xmlrpc_env *env, xmlrpc_value *params, void *server_info,  \
				void *call_info)                                           \
	{                                                                                  \
		(void)server_info;                                                         \
		(void)call_info;                                                           \
		return keys_call(env, params, op);                                         \
	}
KEYS_METHOD(method_keys_get, KEYS_GET)
KEYS_METHOD(method_keys_add, KEYS_ADD)
KEYS_METHOD(method_keys_remove, KEYS_REMOVE)
KEYS_METHOD(method_keys_set, KEYS_SET)

static const struct xmlrpc_method_info3 accounts_methods[] = {
	{
		.methodName = "va.user.set_password",
		.methodFunction = method_set_password,
		.signatureString = "b:ss,b:ssb",
		.help = "va.user.set_password(string user, string password[, boolean crypted]) -> "
			"true. Hashes the password (SHA-512 crypt) and writes it into /etc/shadow "
			"(atomically, under /etc/.pwd.lock); with crypted, password is a hash written "
			"as it is. The password is never logged nor given to a program. Opt-in: "
			"--enable-accounts.",
	},
	{
		.methodName = "va.ssh.keys.get",
		.methodFunction = method_keys_get,
		.signatureString = "A:s",
		.help = "va.ssh.keys.get(string user) -> array of the key lines of "
			"~user/.ssh/authorized_keys.",
	},
	{
		.methodName = "va.ssh.keys.add",
		.methodFunction = method_keys_add,
		.signatureString = "A:sA",
		.help = "va.ssh.keys.add(string user, array keys) -> the keys now in the file. Adds "
			"the keys not there yet (compared by type and blob); makes ~user/.ssh (0700) "
			"when missing. Refuses a .ssh or authorized_keys that is a symlink or not the "
			"user's. The file is replaced atomically, owned by the user, mode 0600.",
	},
	{
		.methodName = "va.ssh.keys.remove",
		.methodFunction = method_keys_remove,
		.signatureString = "A:sA",
		.help = "va.ssh.keys.remove(string user, array keys) -> the keys now in the file. "
			"Removes the lines holding these keys (compared by type and blob).",
	},
	{
		.methodName = "va.ssh.keys.set",
		.methodFunction = method_keys_set,
		.signatureString = "A:sA",
		.help = "va.ssh.keys.set(string user, array keys) -> the keys now in the file. "
			"Replaces the whole file with these keys.",
	},
};

static const char *const accounts_opt_in[] = {
	"va.user.set_password", "va.ssh.keys.get", "va.ssh.keys.add", "va.ssh.keys.remove",
	"va.ssh.keys.set", NULL,
};

const struct va_method_group va_group_accounts = {
	.name = "accounts",
	VA_GROUP_METHODS(accounts_methods),
	.opt_in = accounts_opt_in,
	.opt_in_how = "--enable-accounts (accounts = yes in va-agent.conf)",
};

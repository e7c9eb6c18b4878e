/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "frame.h"
#include "log.h"
#include "options.h"

static const char usage_text[] =
	"usage: va-proxy [--guest [NAME=]SPEC]... [OPTION]...\n"
	"The virtagent host proxy: serves XML-RPC over HTTP to host scripts and\n"
	"forwards their calls to the guest agents, and serves the host.* methods\n"
	"the guests call.\n"
	"\n"
	"  -g, --guest [NAME=]SPEC    a guest's channel (repeatable): unix:PATH connects\n"
	"                             to a QEMU chardev in server mode, unix-listen:PATH\n"
	"                             waits for a chardev in client mode.  NAME (letters,\n"
	"                             digits, '_', '.', '-') defaults to guest0, guest1...\n"
	"                             in the order given.  A guest is reached at\n"
	"                             POST /RPC2/NAME, and at POST /RPC2 when it is alone\n"
	"  -G, --guests-dir DIR       also read the guests of DIR/*.conf, files of lines\n"
	"                             \"guest = NAME=SPEC\" (default: none)\n"
	"      --libvirt URI          attach to the virtagent channel of every running\n"
	"                             libvirt domain at URI (qemu:///system), named after\n"
	"                             the domain, and follow domains as they start and\n"
	"                             stop (default: off)\n"
	"  -L, --listen ADDR          tcp:HOST:PORT or unix:PATH (repeatable; default\n"
	"                             " VA_PROXY_DEFAULT_LISTEN ")\n"
	"  -t, --call-timeout S       seconds a forwarded call may take (default 30)\n"
	"  -f, --config FILE          config file (default " VA_PROXY_DEFAULT_CONFIG ",\n"
	"                             if it exists)\n"
	"  -d, --daemonize            run in the background, log to syslog\n"
	"  -p, --pidfile FILE         write the process id to FILE\n"
	"  -l, --log-level LEVEL      error, warn, info (default) or debug\n"
	"  -m, --max-frame BYTES      largest call or response body (default 16777216,\n"
	"                             at least 65536, at most 67108864)\n"
	"  -b, --block-rpcs LIST      comma list of methods the proxy refuses; an entry\n"
	"                             ending in \".*\" blocks every method under it\n"
	"  -a, --auth-file FILE       the password of HTTP Basic authentication on TCP\n"
	"                             listeners (default " VA_PROXY_DEFAULT_AUTH_FILE ");\n"
	"                             created with a random secret, mode 0600, if missing\n"
	"      --no-auth              no authentication on TCP listeners (not advised)\n"
	"      --allow-remote         allow TCP listeners on non-loopback addresses\n"
	"      --socket-group GROUP   unix listening sockets get mode 0660 and GROUP\n"
	"                             (default: mode 0600)\n"
	"  -h, --help                 print this help and exit\n"
	"  -V, --version              print the version and exit\n"
	"\n"
	"With no guest the proxy starts all the same and waits for some.\n"
	"Signals: SIGTERM and SIGINT stop the proxy; SIGHUP reloads the config file\n"
	"and guests-dir: guests are added, removed and changed (an unchanged guest\n"
	"keeps its session), and the log level and block list are reloaded.\n";

enum {
	OPT_NO_AUTH = 256,
	OPT_ALLOW_REMOTE,
	OPT_SOCKET_GROUP,
	OPT_LIBVIRT,
};

static const struct option long_opts[] = {
	{ "guest", required_argument, NULL, 'g' },
	{ "guests-dir", required_argument, NULL, 'G' },
	{ "libvirt", required_argument, NULL, OPT_LIBVIRT },
	{ "listen", required_argument, NULL, 'L' },
	{ "call-timeout", required_argument, NULL, 't' },
	{ "config", required_argument, NULL, 'f' },
	{ "daemonize", no_argument, NULL, 'd' },
	{ "pidfile", required_argument, NULL, 'p' },
	{ "log-level", required_argument, NULL, 'l' },
	{ "max-frame", required_argument, NULL, 'm' },
	{ "block-rpcs", required_argument, NULL, 'b' },
	{ "auth-file", required_argument, NULL, 'a' },
	{ "no-auth", no_argument, NULL, OPT_NO_AUTH },
	{ "allow-remote", no_argument, NULL, OPT_ALLOW_REMOTE },
	{ "socket-group", required_argument, NULL, OPT_SOCKET_GROUP },
	{ "help", no_argument, NULL, 'h' },
	{ "version", no_argument, NULL, 'V' },
	{ NULL, 0, NULL, 0 },
};
static const char short_opts[] = "g:G:L:t:f:dp:l:m:b:a:hV";

static int apply(void *opaque, int opt, const char *val, const char *where);
static void reset(void *opaque, int opt);

static const struct va_conf_spec spec = {
	.prog = "va-proxy",
	.usage = usage_text,
	.opts = long_opts,
	.short_opts = short_opts,
	.default_file = VA_PROXY_DEFAULT_CONFIG,
	.replaces = "gL",
	.apply = apply,
	.reset = reset,
};

/* The files of guests-dir: guest lines only. */
static const struct option guests_dir_opts[] = {
	{ "guest", required_argument, NULL, 'g' },
	{ NULL, 0, NULL, 0 },
};
static int apply_dir_guest(void *opaque, int opt, const char *val, const char *where);
static const struct va_conf_spec guests_dir_spec = {
	.prog = "va-proxy",
	.opts = guests_dir_opts,
	.apply = apply_dir_guest,
};

static int
set_str(char **dst, const char *val)
{
	return va_conf_str(&spec, dst, val);
}

static void
free_guests(struct va_proxy_config *cfg)
{
	for (size_t i = 0; i < cfg->nguests; i++) {
		free(cfg->guests[i].name);
		free(cfg->guests[i].spec);
	}
	free(cfg->guests);
	cfg->guests = NULL;
	cfg->nguests = 0;
}

static void
free_listens(struct va_proxy_config *cfg)
{
	for (size_t i = 0; i < cfg->nlistens; i++)
		free(cfg->listens[i]);
	free(cfg->listens);
	cfg->listens = NULL;
	cfg->nlistens = 0;
}

/* "[NAME=]SPEC": a NAME is there when '=' comes before the first ':'. */
static int
add_guest(struct va_proxy_config *cfg, const char *val, const char *where)
{
	const char *colon = strchr(val, ':');
	const char *eq = strchr(val, '=');
	char *name = NULL, *spec;

	if (eq && (!colon || eq < colon)) {
		name = strndup(val, (size_t)(eq - val));
		if (!name)
			goto nomem;
		if (!va_proxy_guest_name_ok(name)) {
			fprintf(stderr, "va-proxy: %sguest name \"%s\": use 1 to %d letters, digits, "
				"'_', '.' or '-'\n", where, name, VA_PROXY_MAX_GUEST_NAME);
			free(name);
			return -1;
		}
		val = eq + 1;
	}
	if (!strchr(val, ':')) {
		fprintf(stderr, "va-proxy: %sguest \"%s\": expected a channel spec such as "
			"unix:PATH or unix-listen:PATH\n", where, val);
		free(name);
		return -1;
	}
	spec = strdup(val);
	if (!spec)
		goto nomem;
	struct va_proxy_guest_opt *g = realloc(cfg->guests, (cfg->nguests + 1) * sizeof(*g));
	if (!g) {
		free(spec);
		goto nomem;
	}
	cfg->guests = g;
	g[cfg->nguests].name = name;
	g[cfg->nguests].spec = spec;
	cfg->nguests++;
	return 0;
nomem:
	free(name);
	fprintf(stderr, "va-proxy: out of memory\n");
	return -1;
}

static int
add_listen(struct va_proxy_config *cfg, const char *val, const char *where)
{
	if (strncmp(val, "tcp:", 4) != 0 && strncmp(val, "unix:", 5) != 0) {
		fprintf(stderr, "va-proxy: %slisten \"%s\": expected tcp:HOST:PORT or unix:PATH\n",
			where, val);
		return -1;
	}
	char *copy = strdup(val);
	char **l = copy ? realloc(cfg->listens, (cfg->nlistens + 1) * sizeof(*l)) : NULL;
	if (!l) {
		free(copy);
		fprintf(stderr, "va-proxy: out of memory\n");
		return -1;
	}
	cfg->listens = l;
	l[cfg->nlistens++] = copy;
	return 0;
}

/* val NULL: a flag given on the command line. */
static int
parse_flag(const char *val, const char *key, const char *where, int *out)
{
	return va_conf_flag(&spec, val, key, where, out);
}

/* Applies one setting; where is "" or "FILE:LINE: " for messages. */
static int
apply(void *opaque, int opt, const char *val, const char *where)
{
	struct va_proxy_config *cfg = opaque;
	unsigned long long v;
	int lvl;

	switch (opt) {
	case 'g': return add_guest(cfg, val, where);
	case 'G': return set_str(&cfg->guests_dir, val);
	case OPT_LIBVIRT: return set_str(&cfg->libvirt_uri, val);
	case 'L': return add_listen(cfg, val, where);
	case 't':
		if (va_conf_uint(val, 1, VA_PROXY_MAX_CALL_TIMEOUT, &v) < 0) {
			fprintf(stderr, "va-proxy: %scall-timeout: \"%s\" is not a number of seconds "
				"between 1 and %d\n", where, val, VA_PROXY_MAX_CALL_TIMEOUT);
			return -1;
		}
		cfg->call_timeout_s = (unsigned)v;
		return 0;
	case 'f': return set_str(&cfg->config_file, val);
	case 'd': return parse_flag(val, "daemonize", where, &cfg->daemonize);
	case 'p': return set_str(&cfg->pidfile, val);
	case 'l':
		lvl = va_log_parse_level(val);
		if (lvl < 0) {
			fprintf(stderr, "va-proxy: %sunknown log level \"%s\" (error, warn, info, debug)\n",
				where, val);
			return -1;
		}
		cfg->log_level = lvl;
		return 0;
	case 'm':
		if (va_conf_uint(val, VA_PROXY_MAX_FRAME_MIN, VA_PROXY_MAX_FRAME_MAX, &v) < 0) {
			fprintf(stderr, "va-proxy: %smax-frame: \"%s\" is not a number of bytes "
				"between %u and %u\n", where, val, VA_PROXY_MAX_FRAME_MIN,
				VA_PROXY_MAX_FRAME_MAX);
			return -1;
		}
		cfg->max_frame = (size_t)v;
		return 0;
	case 'b': return set_str(&cfg->block_rpcs, val);
	case 'a': return set_str(&cfg->auth_file, val);
	case OPT_NO_AUTH: return parse_flag(val, "no-auth", where, &cfg->no_auth);
	case OPT_ALLOW_REMOTE: return parse_flag(val, "allow-remote", where, &cfg->allow_remote);
	case OPT_SOCKET_GROUP: return set_str(&cfg->socket_group, val);
	}
	return -1;
}

/* Guests and listeners given on the command line replace the file's. */
static void
reset(void *opaque, int opt)
{
	if (opt == 'g')
		free_guests(opaque);
	else
		free_listens(opaque);
}

static int
set_defaults(struct va_proxy_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->log_level = VA_LOG_INFO;
	cfg->max_frame = VA_FRAME_DEFAULT_MAX_BODY;
	cfg->call_timeout_s = VA_PROXY_DEFAULT_CALL_TIMEOUT;
	return set_str(&cfg->auth_file, VA_PROXY_DEFAULT_AUTH_FILE);
}

/* A guest of a file of guests-dir: its name is required. */
static int
apply_dir_guest(void *opaque, int opt, const char *val, const char *where)
{
	const char *colon = strchr(val, ':');
	const char *eq = strchr(val, '=');

	if (opt != 'g')
		return -1;
	if (!eq || (colon && colon < eq)) {
		fprintf(stderr, "va-proxy: %sguest \"%s\": the guests of guests-dir need a name "
			"(guest = NAME=SPEC)\n", where, val);
		return -1;
	}
	return add_guest(opaque, val, where);
}

static int
is_guest_file(const struct dirent *d)
{
	size_t n = strlen(d->d_name), sn = strlen(VA_PROXY_GUESTS_DIR_SUFFIX);

	return d->d_name[0] != '.' && n > sn &&
	       !strcmp(d->d_name + n - sn, VA_PROXY_GUESTS_DIR_SUFFIX);
}

/* Sorts with strcmp, not the locale: the order must not depend on LANG. */
static int
by_name(const struct dirent **a, const struct dirent **b)
{
	return strcmp((*a)->d_name, (*b)->d_name);
}

/* The guests of cfg->guests_dir's *.conf files; a missing directory has none. */
static int
read_guests_dir(struct va_proxy_config *cfg)
{
	struct dirent **names = NULL;
	int n, rc = 0;

	if (!cfg->guests_dir || !*cfg->guests_dir)
		return 0;
	n = scandir(cfg->guests_dir, &names, is_guest_file, by_name);
	if (n < 0) {
		if (errno == ENOENT)
			return 0;
		fprintf(stderr, "va-proxy: guests-dir %s: %s\n", cfg->guests_dir, strerror(errno));
		return -1;
	}
	for (int i = 0; i < n; i++) {
		char path[PATH_MAX];
		if (rc == 0) {
			if ((size_t)snprintf(path, sizeof(path), "%s/%s", cfg->guests_dir,
					     names[i]->d_name) >= sizeof(path)) {
				fprintf(stderr, "va-proxy: guests-dir %s: a path is too long\n",
					cfg->guests_dir);
				rc = -1;
			} else if (va_conf_read_file(&guests_dir_spec, cfg, path, 1) < 0) {
				rc = -1;
			}
		}
		free(names[i]);
	}
	free(names);
	return rc;
}

/* Unnamed guests become guest<index>; names must be unique. */
static int
finish_guests(struct va_proxy_config *cfg)
{
	for (size_t i = 0; i < cfg->nguests; i++) {
		if (cfg->guests[i].name)
			continue;
		char name[32];
		snprintf(name, sizeof(name), "guest%zu", i);
		if (set_str(&cfg->guests[i].name, name) < 0)
			return -1;
	}
	for (size_t i = 0; i < cfg->nguests; i++)
		for (size_t j = i + 1; j < cfg->nguests; j++)
			if (!strcmp(cfg->guests[i].name, cfg->guests[j].name)) {
				fprintf(stderr, "va-proxy: two guests are named \"%s\"\n",
					cfg->guests[i].name);
				return -1;
			}
	if (cfg->nlistens == 0 && add_listen(cfg, VA_PROXY_DEFAULT_LISTEN, "") < 0)
		return -1;
	return 0;
}

enum va_conf_result
va_proxy_config_load(struct va_proxy_config *cfg, int argc, char **argv)
{
	if (set_defaults(cfg) < 0)
		return VA_CONF_ERROR;
	enum va_conf_result r = va_conf_load(&spec, cfg, argc, argv);
	if (r == VA_CONF_OK && (read_guests_dir(cfg) < 0 || finish_guests(cfg) < 0))
		return VA_CONF_ERROR;
	return r;
}

void
va_proxy_config_free(struct va_proxy_config *cfg)
{
	free_guests(cfg);
	free_listens(cfg);
	free(cfg->config_file);
	free(cfg->guests_dir);
	free(cfg->libvirt_uri);
	free(cfg->pidfile);
	free(cfg->block_rpcs);
	free(cfg->auth_file);
	free(cfg->socket_group);
	memset(cfg, 0, sizeof(*cfg));
}

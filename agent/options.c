/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "channel.h"
#include "conf.h"
#include "frame.h"
#include "log.h"
#include "options.h"

static const char usage_text[] =
	"usage: va-agent [OPTION]...\n"
	"The virtagent guest agent: serves va.* XML-RPC methods to the host over\n"
	"a virtio-serial (or isa-serial) channel and calls host.* methods.\n"
	"\n"
	"  -c, --channel SPEC         channel to the host (default\n"
	"                             " VA_CHANNEL_DEFAULT_SPEC ");\n"
	"                             also isa-serial:PATH[,BAUD], unix:PATH, unix-listen:PATH\n"
	"  -C, --control SPEC         control socket for va-clip (default\n"
	"                             " VA_AGENT_DEFAULT_CONTROL "; \"none\" disables it)\n"
	"  -f, --config FILE          config file (default " VA_AGENT_DEFAULT_CONFIG
	", if it exists)\n"
	"  -d, --daemonize            run in the background, log to syslog\n"
	"  -p, --pidfile FILE         write the process id to FILE\n"
	"  -l, --log-level LEVEL      error, warn, info (default) or debug\n"
	"  -a, --allow-rpcs LIST      only these methods are enabled\n"
	"  -b, --block-rpcs LIST      these methods are disabled\n"
	"  -e, --enable-rpcs LIST     opt-in methods (those that change the guest,\n"
	"                             docs/METHODS.md) to turn on\n"
	"                             A LIST is method names, or NAME.* for every method\n"
	"                             under NAME, separated by commas or spaces; a name\n"
	"                             of no method is an error\n"
	"  -r, --file-root DIR        file methods may only touch paths under DIR\n"
	"                             (repeatable; default: every path is allowed)\n"
	"  -s, --shutdown-command CMD run CMD (with /bin/sh -c) for va.shutdown; the\n"
	"                             environment has VA_SHUTDOWN_MODE and VA_SHUTDOWN_DELAY\n"
	"                             (default: /sbin/poweroff, /sbin/halt or /sbin/reboot)\n"
	"  -m, --max-frame BYTES      largest message body either way (default 16777216,\n"
	"                             at least 65536, at most 67108864)\n"
	"      --clipboard-copy-command CMD   desktop bridge: CMD gets the text the host\n"
	"                             sets on stdin (e.g. \"xclip -i -selection clipboard\")\n"
	"      --clipboard-paste-command CMD  desktop bridge: CMD prints the desktop's text\n"
	"                             (va.clipboard.get reads the desktop through it)\n"
	"      --freeze-timeout SECONDS  thaw filesystems frozen by va.fs.freeze after\n"
	"                             SECONDS (default 600; 0: never)\n"
	"      --freeze-state FILE    where the frozen state is kept across restarts, on\n"
	"                             a filesystem never frozen (default " VA_AGENT_DEFAULT_FREEZE_STATE ")\n"
	"      --fs-full-threshold PERCENT  send fs.full when a filesystem gets fuller\n"
	"                             (default 90; 0: never)\n"
	"      --events LIST          guest events to send the host: net, fs, oom, users,\n"
	"                             all (default) or none, separated by commas\n"
	"      --enable-exec          turn on va.exec.* (run commands; exec = yes in the file)\n"
	"      --exec-allow PATHS     va.exec.start may run only these programs (absolute\n"
	"                             paths, separated by commas; default: any)\n"
	"      --enable-accounts      turn on va.user.set_password and va.ssh.keys.*\n"
	"                             (accounts = yes in the file)\n"
	"  -h, --help                 print this help and exit\n"
	"  -V, --version              print the version and exit\n"
	"\n"
	"Signals: SIGTERM sends host.shutdown_notice and exits; SIGHUP reloads the\n"
	"config file (log level, RPC lists, file roots, commands).\n";

enum {
	OPT_CLIP_COPY = 256,
	OPT_CLIP_PASTE,
	OPT_FREEZE_TIMEOUT,
	OPT_FREEZE_STATE,
	OPT_FS_FULL,
	OPT_EVENTS,
	OPT_ENABLE_EXEC,
	OPT_EXEC,
	OPT_EXEC_ALLOW,
	OPT_ENABLE_ACCOUNTS,
	OPT_ACCOUNTS,
};

static const struct option long_opts[] = {
	{ "channel", required_argument, NULL, 'c' },
	{ "control", required_argument, NULL, 'C' },
	{ "config", required_argument, NULL, 'f' },
	{ "daemonize", no_argument, NULL, 'd' },
	{ "pidfile", required_argument, NULL, 'p' },
	{ "log-level", required_argument, NULL, 'l' },
	{ "allow-rpcs", required_argument, NULL, 'a' },
	{ "block-rpcs", required_argument, NULL, 'b' },
	{ "enable-rpcs", required_argument, NULL, 'e' },
	{ "file-root", required_argument, NULL, 'r' },
	{ "shutdown-command", required_argument, NULL, 's' },
	{ "max-frame", required_argument, NULL, 'm' },
	{ "clipboard-copy-command", required_argument, NULL, OPT_CLIP_COPY },
	{ "clipboard-paste-command", required_argument, NULL, OPT_CLIP_PASTE },
	{ "freeze-timeout", required_argument, NULL, OPT_FREEZE_TIMEOUT },
	{ "freeze-state", required_argument, NULL, OPT_FREEZE_STATE },
	{ "fs-full-threshold", required_argument, NULL, OPT_FS_FULL },
	{ "events", required_argument, NULL, OPT_EVENTS },
	{ "enable-exec", no_argument, NULL, OPT_ENABLE_EXEC },
	{ "exec", required_argument, NULL, OPT_EXEC },
	{ "exec-allow", required_argument, NULL, OPT_EXEC_ALLOW },
	{ "enable-accounts", no_argument, NULL, OPT_ENABLE_ACCOUNTS },
	{ "accounts", required_argument, NULL, OPT_ACCOUNTS },
	{ "help", no_argument, NULL, 'h' },
	{ "version", no_argument, NULL, 'V' },
	{ NULL, 0, NULL, 0 },
};
static const char short_opts[] = "c:C:f:dp:l:a:b:e:r:s:m:hV";

static int apply(void *opaque, int opt, const char *val, const char *where);
static void reset(void *opaque, int opt);

static const struct va_conf_spec spec = {
	.prog = "va-agent",
	.usage = usage_text,
	.opts = long_opts,
	.short_opts = short_opts,
	.default_file = VA_AGENT_DEFAULT_CONFIG,
	.replaces = "r",
	.apply = apply,
	.reset = reset,
};

static int
set_str(char **dst, const char *val)
{
	return va_conf_str(&spec, dst, val);
}

static int
add_root(struct va_agent_config *cfg, const char *dir, const char *where)
{
	char real[PATH_MAX];

	if (!realpath(dir, real)) {
		fprintf(stderr, "va-agent: %sfile root %s: %s\n", where, dir, strerror(errno));
		return -1;
	}
	char **roots = realloc(cfg->file_roots, (cfg->nfile_roots + 2) * sizeof(char *));
	if (!roots)
		return -1;
	cfg->file_roots = roots;
	roots[cfg->nfile_roots] = strdup(real);
	if (!roots[cfg->nfile_roots])
		return -1;
	roots[++cfg->nfile_roots] = NULL;
	return 0;
}

/* --events: names separated by commas or white space. */
static int
parse_events(const char *val, const char *where, unsigned *out)
{
	static const struct {
		const char *name;
		unsigned mask;
	} names[] = {
		{ "net", VA_EVENTS_NET }, { "fs", VA_EVENTS_FS }, { "oom", VA_EVENTS_OOM },
		{ "users", VA_EVENTS_USERS }, { "all", VA_EVENTS_ALL }, { "none", 0 },
	};
	unsigned mask = 0;
	const char *p = val;

	while (*p) {
		size_t n = strcspn(p, ", \t");
		if (n) {
			size_t i;
			for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
				if (strlen(names[i].name) == n && strncmp(p, names[i].name, n) == 0)
					break;
			if (i == sizeof(names) / sizeof(names[0])) {
				fprintf(stderr, "va-agent: %sevents: unknown \"%.*s\" (net, fs, oom, users, "
					"all or none)\n", where, (int)n, p);
				return -1;
			}
			mask |= names[i].mask;
		}
		p += n;
		p += strspn(p, ", \t");
	}
	*out = mask;
	return 0;
}

static void
free_list(char **v)
{
	for (size_t i = 0; v && v[i]; i++)
		free(v[i]);
	free(v);
}

/* exec-allow: absolute paths separated by commas (white space around them ignored). */
static int
set_exec_allow(struct va_agent_config *cfg, const char *val, const char *where)
{
	size_t n = 0;
	char **list = calloc(strlen(val) / 2 + 2, sizeof(char *));

	if (!list)
		return -1;
	for (const char *p = val; *p;) {
		p += strspn(p, ", \t");
		size_t len = strcspn(p, ",");
		while (len > 0 && (p[len - 1] == ' ' || p[len - 1] == '\t'))
			len--;
		if (len == 0)
			break;
		if (p[0] != '/') {
			fprintf(stderr, "va-agent: %sexec-allow: \"%.*s\" is not an absolute path\n",
				where, (int)len, p);
			free_list(list);
			return -1;
		}
		list[n] = strndup(p, len);
		if (!list[n++]) {
			free_list(list);
			return -1;
		}
		p += len;
	}
	if (n == 0) {
		fprintf(stderr, "va-agent: %sexec-allow: no path given\n", where);
		free_list(list);
		return -1;
	}
	free_list(cfg->exec_allow);
	cfg->exec_allow = list;
	return 0;
}

/* Applies one setting; where is "" or "FILE:LINE: " for messages. */
static int
apply(void *opaque, int opt, const char *val, const char *where)
{
	struct va_agent_config *cfg = opaque;
	unsigned long long v;
	int lvl;

	switch (opt) {
	case 'c': return set_str(&cfg->channel, val);
	case 'C': return set_str(&cfg->control, strcmp(val, "none") ? val : "");
	case 'f': return set_str(&cfg->config_file, val);
	case 'd': return va_conf_flag(&spec, val, "daemonize", where, &cfg->daemonize);
	case 'p': return set_str(&cfg->pidfile, val);
	case 'l':
		lvl = va_log_parse_level(val);
		if (lvl < 0) {
			fprintf(stderr, "va-agent: %sunknown log level \"%s\" (error, warn, info, debug)\n", where, val);
			return -1;
		}
		cfg->log_level = lvl;
		return 0;
	case 'a': return set_str(&cfg->allow_rpcs, val);
	case 'b': return set_str(&cfg->block_rpcs, val);
	case 'e': return set_str(&cfg->enable_rpcs, val);
	case 'r': return add_root(cfg, val, where);
	case 's': return set_str(&cfg->shutdown_command, val);
	case 'm':
		if (va_conf_uint(val, VA_AGENT_MAX_FRAME_MIN, VA_AGENT_MAX_FRAME_MAX, &v) < 0) {
			fprintf(stderr, "va-agent: %smax-frame: \"%s\" is not a number of bytes between %u and %u\n",
				where, val, VA_AGENT_MAX_FRAME_MIN, VA_AGENT_MAX_FRAME_MAX);
			return -1;
		}
		cfg->max_frame = (size_t)v;
		return 0;
	case OPT_CLIP_COPY: return set_str(&cfg->clip_copy_command, val);
	case OPT_CLIP_PASTE: return set_str(&cfg->clip_paste_command, val);
	case OPT_FREEZE_TIMEOUT:
		if (va_conf_uint(val, 0, VA_AGENT_FREEZE_TIMEOUT_MAX, &v) < 0) {
			fprintf(stderr, "va-agent: %sfreeze-timeout: \"%s\" is not a number of seconds "
				"between 0 and %u\n", where, val, VA_AGENT_FREEZE_TIMEOUT_MAX);
			return -1;
		}
		cfg->freeze_timeout = (unsigned)v;
		return 0;
	case OPT_FREEZE_STATE:
		if (val[0] != '/') {
			fprintf(stderr, "va-agent: %sfreeze-state: \"%s\" is not an absolute path\n",
				where, val);
			return -1;
		}
		return set_str(&cfg->freeze_state, val);
	case OPT_FS_FULL:
		if (va_conf_uint(val, 0, 100, &v) < 0) {
			fprintf(stderr, "va-agent: %sfs-full-threshold: \"%s\" is not a percentage "
				"between 0 and 100\n", where, val);
			return -1;
		}
		cfg->fs_full_threshold = (unsigned)v;
		return 0;
	case OPT_EVENTS:
		return parse_events(val, where, &cfg->events);
	case OPT_ENABLE_EXEC:
	case OPT_EXEC:
		return va_conf_flag(&spec, val, opt == OPT_EXEC ? "exec" : "enable-exec", where,
				    &cfg->enable_exec);
	case OPT_EXEC_ALLOW: return set_exec_allow(cfg, val, where);
	case OPT_ENABLE_ACCOUNTS:
	case OPT_ACCOUNTS:
		return va_conf_flag(&spec, val, opt == OPT_ACCOUNTS ? "accounts" : "enable-accounts",
				    where, &cfg->enable_accounts);
	}
	return -1;
}

/* File roots given on the command line replace those of the file. */
static void
reset(void *opaque, int opt)
{
	struct va_agent_config *cfg = opaque;

	(void)opt;
	for (size_t i = 0; i < cfg->nfile_roots; i++)
		free(cfg->file_roots[i]);
	free(cfg->file_roots);
	cfg->file_roots = NULL;
	cfg->nfile_roots = 0;
}

static int
set_defaults(struct va_agent_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->log_level = VA_LOG_INFO;
	cfg->max_frame = VA_FRAME_DEFAULT_MAX_BODY;
	cfg->freeze_timeout = VA_AGENT_DEFAULT_FREEZE_TIMEOUT;
	cfg->fs_full_threshold = VA_AGENT_DEFAULT_FS_FULL;
	cfg->events = VA_EVENTS_ALL;
	if (set_str(&cfg->freeze_state, VA_AGENT_DEFAULT_FREEZE_STATE) < 0 ||
	    set_str(&cfg->channel, VA_CHANNEL_DEFAULT_SPEC) < 0 ||
	    set_str(&cfg->control, VA_AGENT_DEFAULT_CONTROL) < 0)
		return -1;
	return 0;
}

/*
 * --enable-exec and --enable-accounts enable their groups' opt-in methods:
 * they join the --enable-rpcs list (so the core has one list to check).
 */
static int
merge_enables(struct va_agent_config *cfg)
{
	const char *add[2] = {
		cfg->enable_exec ? "va.exec.*" : NULL,
		cfg->enable_accounts ? "va.user.set_password va.ssh.keys.*" : NULL,
	};

	for (int i = 0; i < 2; i++) {
		if (!add[i])
			continue;
		char *s = NULL;
		if (asprintf(&s, "%s%s%s", cfg->enable_rpcs ? cfg->enable_rpcs : "",
			     cfg->enable_rpcs ? " " : "", add[i]) < 0)
			return -1;
		free(cfg->enable_rpcs);
		cfg->enable_rpcs = s;
	}
	return 0;
}

enum va_conf_result
va_agent_config_load(struct va_agent_config *cfg, int argc, char **argv)
{
	if (set_defaults(cfg) < 0)
		return VA_CONF_ERROR;
	enum va_conf_result r = va_conf_load(&spec, cfg, argc, argv);
	if (r == VA_CONF_OK && merge_enables(cfg) < 0) {
		fprintf(stderr, "va-agent: out of memory\n");
		return VA_CONF_ERROR;
	}
	return r;
}

void
va_agent_config_free(struct va_agent_config *cfg)
{
	free(cfg->channel);
	free(cfg->control);
	free(cfg->config_file);
	free(cfg->pidfile);
	free(cfg->allow_rpcs);
	free(cfg->block_rpcs);
	free(cfg->enable_rpcs);
	for (size_t i = 0; i < cfg->nfile_roots; i++)
		free(cfg->file_roots[i]);
	free(cfg->file_roots);
	free(cfg->shutdown_command);
	free(cfg->clip_copy_command);
	free(cfg->clip_paste_command);
	free(cfg->freeze_state);
	free_list(cfg->exec_allow);
	memset(cfg, 0, sizeof(*cfg));
}

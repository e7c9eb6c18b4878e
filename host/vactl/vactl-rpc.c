/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * vactl-rpc.c - vactl's connection to va-proxy: the URL, the credentials,
 * the calls, and errors in plain words.
 *
 * URLs: http://[USER[:PASSWORD]@]HOST[:PORT][/PATH] (PATH defaults to
 * /RPC2; https works too), or unix:PATH for a proxy listening on a unix
 * socket (no authentication there).  --guest NAME appends "/NAME" to the
 * path, which is how the proxy routes to one of several guests.
 *
 * Credentials, first found wins: the URL's; the --auth-file's (which must
 * be readable); the proxy's default auth file when this user can read it.
 * The password is sent with HTTP Basic authentication, and never appears
 * in messages (the URL is stripped of it).
 *
 * A call is serialised by common/rpc.h (va_rpc_serialize_call: text as
 * real UTF-8, CR as "&#13;"), posted by vactl-http.c, and its answer
 * parsed by common/xmlgate.h (va_rpc_parse_response: the gate first,
 * then xmlrpc-c), so that strings hold text.h's value form inside vactl
 * and every character travels; xmlrpc-c's client library, which can
 * neither send nor read characters above U+FFFF, is not used.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <xmlrpc-c/base.h>

#include "b64.h"
#include "buf.h"
#include "contract.h"
#include "rpc.h"
#include "vactl.h"
#include "xmlgate.h"

int vactl_interrupted;

/* ---- errors ---- */

void
vactl_error_local(struct vactl_error *err, const char *fmt, ...)
{
	va_list ap;

	err->kind = VACTL_ERR_LOCAL;
	err->code = 0;
	va_start(ap, fmt);
	vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	va_end(ap);
}

/*
 * Copies s into err->msg; a text too long is cut before a character, not
 * in the middle of one, and the trailing white space is dropped.
 */
static void
set_msg(struct vactl_error *err, const char *s)
{
	size_t n = strlen(s);

	if (n >= sizeof(err->msg)) {
		n = sizeof(err->msg) - 1;
		while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
			n--;
	}
	memcpy(err->msg, s, n);
	err->msg[n] = '\0';
	while (n > 0 && isspace((unsigned char)err->msg[n - 1]))
		err->msg[--n] = '\0';
}

int
vactl_exit_code(const struct vactl_error *err)
{
	switch (err->kind) {
	case VACTL_ERR_NONE:
		return VACTL_EXIT_OK;
	case VACTL_ERR_FAULT:
	case VACTL_ERR_LOCAL:
	case VACTL_ERR_INTERRUPTED:
		return VACTL_EXIT_FAULT;
	default:
		return VACTL_EXIT_UNREACHABLE;
	}
}

/* Plain words for the faults whose messages need a lead-in. */
static const char *
fault_label(int code)
{
	switch (code) {
	case VA_PROXY_FAULT_NOT_CONNECTED: return "the guest agent is not connected";
	case VA_PROXY_FAULT_NOT_ANSWERING: return "the guest agent is not answering";
	case VA_PROXY_FAULT_TIMEOUT: return "the guest agent did not answer in time";
	case VA_PROXY_FAULT_LOST: return "the answer was lost";
	case VA_PROXY_FAULT_TOO_LARGE: return "the message is too large";
	case VA_PROXY_FAULT_BLOCKED: return "the proxy does not allow this method";
	case VA_PROXY_FAULT_EVENTS_LOST: return "events were lost";
	case VA_PROXY_FAULT_REFUSED: return "the guest agent refused the call";
	case VA_PROXY_FAULT_SHUTTING_DOWN: return "the proxy is shutting down";
	case VA_PROXY_FAULT_INTERNAL: return "the proxy failed";
	case XMLRPC_NO_SUCH_METHOD_ERROR: return "no such method";
	case XMLRPC_REQUEST_REFUSED_ERROR: return "refused";
	case XMLRPC_LIMIT_EXCEEDED_ERROR: return "over a limit";
	case XMLRPC_PARSE_ERROR: return "the request was malformed";
	default: return NULL;
	}
}

int
vactl_report(struct vactl *v, const char *what, const struct vactl_error *err)
{
	const char *url = v->display_url ? v->display_url : v->url_opt;

	fprintf(stderr, "vactl: ");
	if (what)
		fprintf(stderr, "%s: ", what);
	switch (err->kind) {
	case VACTL_ERR_NONE:
		fprintf(stderr, "no error\n");
		break;
	case VACTL_ERR_FAULT: {
		const char *label = fault_label(err->code);
		if (label)
			fprintf(stderr, "%s: %s\n", label, err->msg);
		else
			fprintf(stderr, "%s\n", err->msg);
		if (v->verbose)
			fprintf(stderr, "vactl: (fault code %d)\n", err->code);
		break;
	}
	case VACTL_ERR_UNREACHABLE:
		fprintf(stderr, "cannot reach the proxy at %s: %s (is va-proxy running "
			"there? see --url)\n", url, err->msg);
		break;
	case VACTL_ERR_HTTP:
		if (err->code == 401 && v->password_from)
			fprintf(stderr, "the proxy at %s refused the password from %s "
				"(HTTP 401): it is not the proxy's secret\n", url, v->password_from);
		else if (err->code == 401)
			fprintf(stderr, "the proxy at %s wants a password (HTTP 401), and "
				"vactl has none: %s\n", url, v->auth_note);
		else if (err->code == 404)
			fprintf(stderr, "the proxy at %s has no such path or guest (HTTP 404): "
				"check --url and --guest\n", url);
		else if (err->code == 413)
			fprintf(stderr, "the proxy at %s refused the call as too large "
				"(HTTP 413)\n", url);
		else
			fprintf(stderr, "the proxy at %s answered HTTP %d instead of an "
				"XML-RPC response\n", url, err->code);
		break;
	case VACTL_ERR_TIMEOUT:
		fprintf(stderr, "no answer from the proxy at %s within %u s (see --timeout)\n",
			url, v->timeout_s + v->extra_wait_ms / 1000);
		break;
	case VACTL_ERR_PROTOCOL:
		fprintf(stderr, "the answer from %s is not a valid XML-RPC response (is it "
			"va-proxy?): %s\n", url, err->msg);
		break;
	case VACTL_ERR_INTERRUPTED:
		fprintf(stderr, "interrupted\n");
		break;
	case VACTL_ERR_LOCAL:
		fprintf(stderr, "%s\n", err->msg);
		break;
	}
	return vactl_exit_code(err);
}

/* ---- URL and credentials ---- */

static int
hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Percent-decodes s[0..len) into a new string; NULL if malformed or out of memory. */
static char *
pct_decode(const char *s, size_t len)
{
	char *out = malloc(len + 1);
	size_t o = 0;

	if (!out)
		return NULL;
	for (size_t i = 0; i < len; i++) {
		if (s[i] == '%') {
			if (len - i < 3) {
				free(out);
				return NULL;
			}
			int a = hexval((unsigned char)s[i + 1]), b = hexval((unsigned char)s[i + 2]);
			if (a < 0 || b < 0 || (a == 0 && b == 0)) {
				free(out);
				return NULL;
			}
			out[o++] = (char)(a * 16 + b);
			i += 2;
		} else {
			out[o++] = s[i];
		}
	}
	out[o] = '\0';
	return out;
}

static char *
strfmt(const char *fmt, ...)
{
	va_list ap;
	char *s = NULL;

	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0)
		s = NULL;
	va_end(ap);
	return s;
}

/*
 * Reads the secret as va-proxy does (host/contract.h), but from any file
 * this user can read: no mode check.  Returns a malloc'ed string, or NULL
 * with errno set (EINVAL: empty or too long).
 */
static char *
read_secret(const char *path)
{
	char *s;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return NULL;
	enum va_proxy_secret_result r = va_proxy_secret_read(fd, &s);
	int e = errno;
	close(fd);
	switch (r) {
	case VA_PROXY_SECRET_OK:
		return s;
	case VA_PROXY_SECRET_READ_ERROR:
		break;
	case VA_PROXY_SECRET_NO_MEMORY:
		e = ENOMEM;
		break;
	case VA_PROXY_SECRET_EMPTY:
	case VA_PROXY_SECRET_TOO_LONG:
		e = EINVAL;
		break;
	}
	errno = e;
	return NULL;
}

static int
oom(void)
{
	fprintf(stderr, "vactl: out of memory\n");
	return VACTL_EXIT_FAULT;
}

static int
setup_unix(struct vactl *v, const char *path, const char *route)
{
	if (!*path) {
		fprintf(stderr, "vactl: bad URL \"%s\": expected unix:PATH\n", v->url_opt);
		return VACTL_EXIT_USAGE;
	}
	v->unix_path = strdup(path);
	v->display_url = strfmt("unix:%s%s", path, route);
	/* The host name is not used on a unix socket; the path routes. */
	v->http_url = strfmt("http://localhost" VA_PROXY_RPC_PATH "%s", route);
	if (!v->unix_path || !v->display_url || !v->http_url)
		return oom();
	return 0;
}

static int
setup_http(struct vactl *v, const char *route)
{
	const char *url = v->url_opt;
	const char *scheme_end = strstr(url, "://");

	if (!scheme_end || (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0)) {
		fprintf(stderr, "vactl: bad URL \"%s\": expected http://HOST:PORT/RPC2, "
			"https://..., or unix:PATH\n", url);
		return VACTL_EXIT_USAGE;
	}
	size_t scheme_len = (size_t)(scheme_end - url) + 3;
	const char *auth = url + scheme_len;
	const char *path = auth + strcspn(auth, "/?#");
	/* user:password@ is what precedes the last '@' of the authority. */
	const char *at = NULL;
	for (const char *p = auth; p < path; p++)
		if (*p == '@')
			at = p;
	const char *host = at ? at + 1 : auth;
	if (host == path) {
		fprintf(stderr, "vactl: bad URL \"%s\": no host\n", url);
		return VACTL_EXIT_USAGE;
	}
	if (at) {
		const char *colon = memchr(auth, ':', (size_t)(at - auth));
		size_t ulen = colon ? (size_t)(colon - auth) : (size_t)(at - auth);
		v->user = pct_decode(auth, ulen);
		if (colon)
			v->password = pct_decode(colon + 1, (size_t)(at - colon - 1));
		if (!v->user || (colon && !v->password)) {
			fprintf(stderr, "vactl: bad URL: malformed user or password "
				"(%%XX escapes are allowed, %%00 is not)\n");
			return VACTL_EXIT_USAGE;
		}
		if (v->password)
			v->password_from = "the URL";
	}
	/* The path, without a trailing '/', then the guest's name. */
	size_t plen = strcspn(path, "?#");
	while (plen > 0 && path[plen - 1] == '/')
		plen--;
	const char *base = plen ? path : VA_PROXY_RPC_PATH;
	if (!plen)
		plen = strlen(VA_PROXY_RPC_PATH);
	v->http_url = strfmt("%.*s%.*s%.*s%s", (int)scheme_len, url, (int)(path - host), host,
			     (int)plen, base, route);
	if (!v->http_url)
		return oom();
	v->display_url = strdup(v->http_url);
	if (!v->display_url)
		return oom();
	return 0;
}

static int
setup_credentials(struct vactl *v)
{
	if (!v->user)
		v->user = strdup(VA_PROXY_DEFAULT_USER);
	if (!v->user)
		return oom();
	if (v->password || v->unix_path)
		return 0;
	if (v->auth_file) {
		v->password = read_secret(v->auth_file);
		if (!v->password) {
			fprintf(stderr, "vactl: auth file %s: %s\n", v->auth_file,
				errno == EINVAL ? "no secret in it (empty, or longer than "
				VACTL_STR(VA_PROXY_MAX_SECRET) " bytes)" : strerror(errno));
			return VACTL_EXIT_USAGE;
		}
		v->password_from = v->auth_file;
		return 0;
	}
	v->password = read_secret(VA_PROXY_DEFAULT_AUTH_FILE);
	if (v->password) {
		v->password_from = VA_PROXY_DEFAULT_AUTH_FILE;
		return 0;
	}
	snprintf(v->auth_note, sizeof(v->auth_note),
		 "the proxy's secret file %s %s; run vactl as a user who can read it "
		 "(root), or give --auth-file FILE, or put the secret in the URL "
		 "(http://" VA_PROXY_DEFAULT_USER ":SECRET@HOST:PORT" VA_PROXY_RPC_PATH ")",
		 VA_PROXY_DEFAULT_AUTH_FILE,
		 errno == ENOENT ? "does not exist" :
		 errno == EACCES ? "is not readable by this user" :
		 errno == EINVAL ? "holds no secret" : "cannot be read");
	return 0;
}

int
vactl_setup(struct vactl *v)
{
	char route[1 + VA_PROXY_MAX_GUEST_NAME + 1] = ""; /* "/NAME" */
	int r;

	if (v->guest) {
		if (!va_proxy_guest_name_ok(v->guest)) {
			fprintf(stderr, "vactl: bad guest name \"%s\" (1 to %d letters, digits, "
				"'_', '.', '-')\n", v->guest, VA_PROXY_MAX_GUEST_NAME);
			return VACTL_EXIT_USAGE;
		}
		snprintf(route, sizeof(route), "/%s", v->guest);
	}
	if (strncmp(v->url_opt, "unix:", 5) == 0)
		r = setup_unix(v, v->url_opt + 5, route);
	else
		r = setup_http(v, route);
	if (r)
		return r;
	return setup_credentials(v);
}

/* ---- the calls ---- */

int
vactl_connect(struct vactl *v)
{
	static int limit_set;

	if (!limit_set) {
		/*
		 * File chunks are megabytes of base64: raise xmlrpc-c's 512 KiB
		 * limit.  The gate may make a body longer before xmlrpc-c
		 * parses it (a 4-byte character becomes a 9-byte escape), so
		 * the limit is that much above the longest body read.
		 */
		xmlrpc_limit_set(XMLRPC_XML_SIZE_LIMIT_ID, (size_t)VACTL_XML_LIMIT / 4 * 9);
		limit_set = 1;
	}
	if (vactl_http_open(v) < 0) {
		fprintf(stderr, "vactl: cannot set up the HTTP client: out of memory\n");
		return VACTL_EXIT_FAULT;
	}
	return 0;
}

void
vactl_cleanup(struct vactl *v)
{
	vactl_http_close(v);
	free(v->display_url);
	free(v->http_url);
	free(v->unix_path);
	free(v->user);
	if (v->password) {
		explicit_bzero(v->password, strlen(v->password));
		free(v->password);
	}
	v->display_url = v->http_url = v->unix_path = v->user = v->password = NULL;
}

xmlrpc_value *
vactl_parse_answer(const char *body, size_t len, struct vactl_error *err)
{
	xmlrpc_env env;
	xmlrpc_value *result = NULL;
	int code = 0;
	char *fault = NULL;

	xmlrpc_env_init(&env);
	va_rpc_parse_response(&env, body, len, &result, &code, &fault);
	if (env.fault_occurred) {
		/* An answer, but not XML-RPC (or refused by the gate). */
		err->kind = VACTL_ERR_PROTOCOL;
		err->code = env.fault_code;
		set_msg(err, env.fault_string);
		result = NULL;
	} else if (fault) {
		err->kind = VACTL_ERR_FAULT;
		err->code = code;
		set_msg(err, fault);
		free(fault);
		result = NULL;
	}
	xmlrpc_env_clean(&env);
	return result;
}

int
vactl_xml_call_bytes(struct va_buf *out, const char *method, int a, const void *data, size_t n,
		     int close)
{
	out->len = 0;
	if (va_buf_printf(out, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\r\n<methodCall>\r\n"
			  "<methodName>%s</methodName>\r\n<params>\r\n"
			  "<param><value><i4>%d</i4></value></param>\r\n"
			  "<param><value><base64>\r\n", method, a) < 0 ||
	    va_buf_reserve(out, va_b64_encoded_size(n)) < 0)
		return -1;
	out->len += va_b64_encode_lines(data, n, (char *)out->data + out->len);
	if (va_buf_printf(out, "</base64></value></param>\r\n%s</params>\r\n</methodCall>\r\n",
			  close ? "<param><value><boolean>1</boolean></value></param>\r\n" : "") < 0)
		return -1;
	return 0;
}

struct started {
	struct vactl *v;
	struct vactl_post *post;
	vactl_done_fn *done;
	void *arg;
};

static void
on_answer(void *arg, const char *body, size_t len, const struct vactl_error *http_err)
{
	struct started s = *(struct started *)arg;
	struct vactl_error err = { 0 };
	xmlrpc_value *result = NULL;

	free(arg);
	s.v->in_flight--;
	if (http_err)
		err = *http_err;
	else
		result = vactl_parse_answer(body, len, &err);
	/* The body is parsed: the post may serve the calls done starts. */
	vactl_post_put(s.post);
	s.done(s.arg, result, result ? NULL : &err);
	if (result)
		xmlrpc_DECREF(result);
}

int
vactl_start(struct vactl *v, const char *method, xmlrpc_value *params,
	    vactl_done_fn *done, void *arg, struct vactl_error *err)
{
	xmlrpc_env env;
	struct started *s;

	if (vactl_interrupted) {
		err->kind = VACTL_ERR_INTERRUPTED;
		err->code = 0;
		set_msg(err, "interrupted");
		return -1;
	}
	if (!v->http_url) {
		vactl_error_local(err, "%s: not connected (vactl_setup first)", method);
		return -1;
	}
	s = calloc(1, sizeof(*s));
	if (!s || !(s->post = vactl_post_get(v))) {
		free(s);
		vactl_error_local(err, "out of memory");
		return -1;
	}
	s->v = v;
	s->done = done;
	s->arg = arg;
	struct va_buf *body = vactl_post_body(s->post);
	body->len = 0;
	xmlrpc_env_init(&env);
	va_rpc_serialize_call(&env, body, method, params);
	if (env.fault_occurred) {
		/* Nothing was sent: the request could not be built. */
		vactl_error_local(err, "%s: cannot start the call: %s", method, env.fault_string);
		xmlrpc_env_clean(&env);
		vactl_post_put(s->post);
		free(s);
		return -1;
	}
	xmlrpc_env_clean(&env);
	if (vactl_post_start(s->post, on_answer, s, err) < 0) {
		vactl_post_put(s->post);
		free(s);
		return -1;
	}
	v->in_flight++;
	return 0;
}

void
vactl_run_pending(struct vactl *v)
{
	vactl_http_run(v, NULL);
}

struct sync_call {
	int done;
	xmlrpc_value *result;
	struct vactl_error *err;
};

static void
sync_done(void *arg, xmlrpc_value *result, const struct vactl_error *err)
{
	struct sync_call *c = arg;

	c->done = 1;
	if (result) {
		xmlrpc_INCREF(result);
		c->result = result;
	} else {
		*c->err = *err;
	}
}

xmlrpc_value *
vactl_call(struct vactl *v, const char *method, xmlrpc_value *params, struct vactl_error *err)
{
	struct sync_call c = { 0, NULL, err };

	err->kind = VACTL_ERR_NONE;
	if (vactl_start(v, method, params, sync_done, &c, err) < 0)
		return NULL;
	/* Other posts in flight (if any) progress too; returns once c is done. */
	vactl_http_run(v, &c.done);
	if (!c.done)
		vactl_error_local(err, "%s: internal: the call was lost", method);
	return c.result;
}

xmlrpc_value *
vactl_callf(struct vactl *v, struct vactl_error *err, const char *method,
	    const char *format, ...)
{
	xmlrpc_env env;
	xmlrpc_value *params, *res;
	va_list ap;

	xmlrpc_env_init(&env);
	va_start(ap, format);
	params = vactl_build_params(&env, format, ap);
	va_end(ap);
	if (env.fault_occurred) {
		vactl_error_local(err, "%s: cannot build the parameters: %s", method,
				  env.fault_string);
		xmlrpc_env_clean(&env);
		return NULL;
	}
	xmlrpc_env_clean(&env);
	res = vactl_call(v, method, params, err);
	xmlrpc_DECREF(params);
	return res;
}

/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * channel.h - a byte stream to the peer, opened from a spec string.
 *
 * Kinds:
 *   virtio-serial:PATH     a guest virtio-serial port
 *                          (default /dev/virtio-ports/org.qemu.virtagent)
 *   isa-serial:PATH[,BAUD] a tty in raw mode (no echo, no CR/LF
 *                          translation, VMIN=1, VTIME=0), flushed on open;
 *                          BAUD defaults to 115200
 *   unix:PATH              connect to a unix stream socket (a QEMU chardev
 *                          in server mode); reconnects with backoff
 *   unix-listen:PATH       listen on a unix stream socket, one peer at a
 *                          time: a new connection replaces the old one
 *
 * Every fd is non-blocking and close-on-exec.  The channel is a state
 * machine with explicit time: prepare says which fds to poll for what
 * and when its timer is due, dispatch takes what happened (link.c drives
 * it on the loop, common/loop.h; the tests drive it on a clock of their
 * own).  It never blocks or spins.  It tells its user when the peer is gone (DOWN) and when a peer
 * is (maybe) new (UP), so the session above can reset:
 *   - virtio-serial: while no host process holds the chardev, poll()
 *     reports POLLHUP and read() returns 0 at once, every time, and
 *     write() fails with EAGAIN.  The channel then leaves the fd out of
 *     poll() and looks again every VA_CHANNEL_HUP_CHECK_MS, so an idle
 *     agent uses no CPU and sees a new host within 200 ms.
 *   - isa-serial has no connection state: UP once after open, never DOWN.
 *   - unix: DOWN when the peer closes or the connect fails; the channel
 *     retries the connect after 100 ms, doubling up to 2 s.
 *   - unix-listen: UP on accept, DOWN when the peer closes; an accept
 *     while a peer is up reports DOWN then UP.
 * The channel starts DOWN; the first UP is reported from dispatch.
 */
#ifndef VA_CHANNEL_H
#define VA_CHANNEL_H

#include <poll.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#define VA_CHANNEL_DEFAULT_SPEC "virtio-serial:/dev/virtio-ports/org.qemu.virtagent"
#define VA_CHANNEL_MAX_POLLFDS 2
#define VA_CHANNEL_HUP_CHECK_MS 100

enum va_channel_kind {
	VA_CHANNEL_VIRTIO_SERIAL,
	VA_CHANNEL_ISA_SERIAL,
	VA_CHANNEL_UNIX,
	VA_CHANNEL_UNIX_LISTEN,
};

enum va_channel_state { VA_CHANNEL_DOWN, VA_CHANNEL_UP };

/* Flags returned by va_channel_dispatch(). */
#define VA_CHANNEL_READABLE 0x1 /* read() may have data (or EOF) */
#define VA_CHANNEL_WRITABLE 0x2 /* writev() may accept bytes */

typedef struct va_channel va_channel;

/*
 * Called on every state change, from dispatch, read or writev.  The
 * callback must not free the channel.
 */
typedef void (*va_channel_state_cb)(void *opaque, enum va_channel_state st);

/*
 * Opens the channel named by spec.  On failure returns -errno and writes
 * a message naming the spec and the cause into err (errlen bytes).
 * unix: does not fail when nobody listens yet (it keeps trying);
 * virtio-serial:, isa-serial: and unix-listen: fail when the device or
 * socket cannot be opened.  A bad spec gives -EINVAL.
 */
int va_channel_open(const char *spec, va_channel **out, char *err, size_t errlen);
/* Closes every fd; unix-listen removes its socket file. NULL is fine. */
void va_channel_free(va_channel *ch);
void va_channel_set_state_cb(va_channel *ch, va_channel_state_cb cb, void *opaque);

enum va_channel_kind va_channel_kind(const va_channel *ch);
const char *va_channel_spec(const va_channel *ch);
enum va_channel_state va_channel_state(const va_channel *ch);
/*
 * Changes whenever the data fd is closed or replaced (a reconnect, a new
 * peer accepted), so that a loop that registered the old fd number
 * registers it anew even when the number is reused.
 */
unsigned va_channel_generation(const va_channel *ch);

/*
 * Fills at most max (>= VA_CHANNEL_MAX_POLLFDS) pollfds and returns how
 * many it used.  Asks for POLLOUT only when want_write is set.  Lowers
 * *timeout_ms (-1 = infinite) when the channel needs to look at something
 * at a given time (HUP check, reconnect).  now_ms is monotonic.
 */
size_t va_channel_prepare(va_channel *ch, struct pollfd *pfd, size_t max,
			  int want_write, uint64_t now_ms, int *timeout_ms);
/*
 * Handles the revents of the pollfds filled by prepare (after poll, also
 * when poll timed out), runs timers, accepts and reconnects.  Returns
 * VA_CHANNEL_READABLE / VA_CHANNEL_WRITABLE flags.
 */
unsigned va_channel_dispatch(va_channel *ch, const struct pollfd *pfd, size_t n,
			     uint64_t now_ms);

/*
 * Returns bytes read (> 0), 0 when nothing can be read now (no data, or
 * the channel is down; EOF turns the channel DOWN), or -1 with errno on
 * an error that is not the peer's going away.
 */
ssize_t va_channel_read(va_channel *ch, void *buf, size_t len);
/*
 * Returns bytes accepted (>= 0; 0 when the channel would block or is
 * down; EPIPE/ECONNRESET turn it DOWN), or -1 with errno otherwise.
 */
ssize_t va_channel_writev(va_channel *ch, const struct iovec *iov, int iovcnt);

#endif

/* witness.c: TCP connect + MySQL greeting with a millisecond deadline. */
#include "witness.h"

#include "clock.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

const char *orch_witness_name(orch_witness w)
{
    switch (w) {
    case ORCH_WITNESS_NOT_CHECKED:
        return "not_checked";
    case ORCH_WITNESS_GREETING:
        return "greeting";
    case ORCH_WITNESS_REFUSED:
        return "refused";
    case ORCH_WITNESS_TIMEOUT:
        return "timeout";
    case ORCH_WITNESS_ERROR:
        return "error";
    }
    return "unknown";
}

/* Resolves host:port into *ss; numeric addresses avoid DNS entirely. */
static int resolve(const char *host, uint16_t port, struct sockaddr_storage *ss, socklen_t *len,
                   char *msg, size_t msglen)
{
    struct sockaddr_in *in4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
    memset(ss, 0, sizeof(*ss));
    if (inet_pton(AF_INET, host, &in4->sin_addr) == 1) {
        in4->sin_family = AF_INET;
        in4->sin_port = htons(port);
        *len = sizeof(*in4);
        return 0;
    }
    if (inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons(port);
        *len = sizeof(*in6);
        return 0;
    }
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res = NULL;
    int rc = getaddrinfo(host, NULL, &hints, &res);
    if (rc != 0 || res == NULL) {
        snprintf(msg, msglen, "cannot resolve %s: %s", host, gai_strerror(rc));
        return -1;
    }
    memcpy(ss, res->ai_addr, res->ai_addrlen);
    *len = res->ai_addrlen;
    if (ss->ss_family == AF_INET)
        in4->sin_port = htons(port);
    else
        in6->sin6_port = htons(port);
    freeaddrinfo(res);
    return 0;
}

/* Waits for events on fd until deadline (monotonic ms); returns poll's result. */
static int wait_fd(int fd, short events, int64_t deadline)
{
    for (;;) {
        int64_t left = deadline - orch_mono_ms();
        if (left < 0)
            left = 0;
        struct pollfd p = {.fd = fd, .events = events};
        int rc = poll(&p, 1, (int)left);
        if (rc < 0 && errno == EINTR)
            continue;
        return rc;
    }
}

orch_witness orch_witness_check(const char *host, uint16_t port, int timeout_ms, int *elapsed_ms,
                                char *msg, size_t msglen)
{
    int64_t start = orch_mono_ms(), deadline = start + timeout_ms;
    orch_witness verdict = ORCH_WITNESS_ERROR;
    struct sockaddr_storage ss;
    socklen_t sslen;
    int fd = -1;
    char scratch[1];

    if (msg == NULL || msglen == 0) {
        msg = scratch;
        msglen = sizeof(scratch);
    }
    msg[0] = '\0';
    if (resolve(host, port, &ss, &sslen, msg, msglen) != 0)
        goto out;
    fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(msg, msglen, "socket: %s", strerror(errno));
        goto out;
    }
    if (connect(fd, (struct sockaddr *)&ss, sslen) != 0 && errno != EINPROGRESS) {
        verdict = errno == ECONNREFUSED ? ORCH_WITNESS_REFUSED : ORCH_WITNESS_ERROR;
        snprintf(msg, msglen, "connect: %s", strerror(errno));
        goto out;
    }
    if (wait_fd(fd, POLLOUT, deadline) <= 0) {
        verdict = ORCH_WITNESS_TIMEOUT;
        snprintf(msg, msglen, "no TCP connection within %d ms", timeout_ms);
        goto out;
    }
    int soerr = 0;
    socklen_t soerr_len = sizeof(soerr);
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &soerr_len) != 0 || soerr != 0) {
        verdict = soerr == ECONNREFUSED ? ORCH_WITNESS_REFUSED : ORCH_WITNESS_ERROR;
        snprintf(msg, msglen, "connect: %s", strerror(soerr ? soerr : errno));
        goto out;
    }
    /* The greeting: 3-byte length, sequence 0, then protocol version 10 or 0xff. */
    uint8_t hdr[5];
    size_t got = 0;
    while (got < sizeof(hdr)) {
        if (wait_fd(fd, POLLIN, deadline) <= 0) {
            verdict = ORCH_WITNESS_TIMEOUT;
            snprintf(msg, msglen, "connected but no server greeting within %d ms", timeout_ms);
            goto out;
        }
        ssize_t n = recv(fd, hdr + got, sizeof(hdr) - got, 0);
        if (n < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (n <= 0) {
            verdict = n == 0 || errno == ECONNRESET ? ORCH_WITNESS_REFUSED : ORCH_WITNESS_ERROR;
            snprintf(msg, msglen, "connection closed before the greeting");
            goto out;
        }
        got += (size_t)n;
    }
    if (hdr[3] == 0 && (hdr[4] == 10 || hdr[4] == 0xff)) {
        verdict = ORCH_WITNESS_GREETING;
    } else {
        snprintf(msg, msglen, "unexpected greeting bytes (seq %u, first byte 0x%02x)", hdr[3],
                 hdr[4]);
    }
out:
    if (fd >= 0)
        close(fd);
    if (elapsed_ms != NULL)
        *elapsed_ms = (int)(orch_mono_ms() - start);
    return verdict;
}

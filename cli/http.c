/*
 * http.c: orchctl's blocking HTTP/1.1 client (see http.h).
 *
 * Each request is a small state machine (connect, send, receive) over a
 * non-blocking socket; ctl_http_run drives any number of them with poll()
 * until they finish or the one deadline passes. The answer is parsed as it
 * arrives, so orchctl stops reading the moment the body is complete instead
 * of waiting for the server to close.
 */
#include "http.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define CTL_HEADERS_MAX (64 * 1024) /* longer header blocks are refused */
#define CTL_READ_CHUNK  (64 * 1024)

/* ---- URLs --------------------------------------------------------------------- */

static bool all_digits(const char *s, size_t n)
{
    if (n == 0)
        return false;
    for (size_t k = 0; k < n; k++)
        if (!isdigit((unsigned char)s[k]))
            return false;
    return true;
}

orch_err ctl_url_parse(const char *s, ctl_url *out, char *msg, size_t msglen)
{
    if (s == NULL)
        return orch_fail(msg, msglen, ORCH_ERR_INVAL, "no API URL");
    while (isspace((unsigned char)*s))
        s++;
    size_t slen = strlen(s);
    while (slen > 0 && isspace((unsigned char)s[slen - 1]))
        slen--;
    if (slen == 0)
        return orch_fail(msg, msglen, ORCH_ERR_INVAL, "empty API URL");
    if (slen >= CTL_URL_MAX)
        return orch_fail(msg, msglen, ORCH_ERR_TOOBIG, "API URL longer than %d bytes",
                         CTL_URL_MAX - 1);
    char text[CTL_URL_MAX];
    memcpy(text, s, slen);
    text[slen] = '\0';

    ctl_url u;
    memset(&u, 0, sizeof(u));
    const char *p = text;
    long port = CTL_DEFAULT_API_PORT;
    if (strncasecmp(p, "https://", 8) == 0)
        return orch_fail(msg, msglen, ORCH_ERR_INVAL,
                         "'%s': https is not supported by orchctl; reach the coordinator over "
                         "http on a trusted network or through a local TLS-terminating proxy",
                         text);
    if (strncasecmp(p, "http://", 7) == 0) {
        p += 7;
        port = 80;
    } else if (strstr(p, "://") != NULL) {
        return orch_fail(msg, msglen, ORCH_ERR_INVAL, "'%s': only http:// URLs are supported",
                         text);
    }
    const char *slash = strchr(p, '/');
    size_t alen = slash ? (size_t)(slash - p) : strlen(p);
    const char *path = slash ? slash : "";
    if (memchr(p, '@', alen) != NULL)
        return orch_fail(msg, msglen, ORCH_ERR_INVAL,
                         "'%s': credentials in the URL are not supported (use ORCH_AUTH_USER "
                         "and ORCH_AUTH_PASSWORD, or --auth-file)",
                         text);
    if (strpbrk(path, "?#") != NULL)
        return orch_fail(msg, msglen, ORCH_ERR_INVAL, "'%s': a query or fragment is not allowed",
                         text);
    const char *host = p;
    size_t hlen;
    const char *portstr = NULL;
    size_t plen = 0;
    if (alen > 0 && p[0] == '[') {
        const char *close = memchr(p, ']', alen);
        if (close == NULL)
            return orch_fail(msg, msglen, ORCH_ERR_PARSE, "'%s': missing ']' after IPv6 address",
                             text);
        host = p + 1;
        hlen = (size_t)(close - host);
        const char *after = close + 1;
        size_t rest = alen - (size_t)(after - p);
        if (rest > 0) {
            if (after[0] != ':')
                return orch_fail(msg, msglen, ORCH_ERR_PARSE, "'%s': junk after ']'", text);
            portstr = after + 1;
            plen = rest - 1;
        }
    } else {
        const char *colon = memchr(p, ':', alen);
        if (colon != NULL && memchr(colon + 1, ':', alen - (size_t)(colon + 1 - p)) != NULL)
            return orch_fail(msg, msglen, ORCH_ERR_PARSE,
                             "'%s': write IPv6 addresses in brackets (http://[::1]:3000)", text);
        hlen = colon ? (size_t)(colon - p) : alen;
        if (colon != NULL) {
            portstr = colon + 1;
            plen = alen - hlen - 1;
        }
    }
    if (hlen == 0)
        return orch_fail(msg, msglen, ORCH_ERR_PARSE, "'%s': no host", text);
    if (hlen >= sizeof(u.host))
        return orch_fail(msg, msglen, ORCH_ERR_TOOBIG, "'%s': host name too long", text);
    for (size_t k = 0; k < hlen; k++) {
        unsigned char c = (unsigned char)host[k];
        if (!(isalnum(c) || c == '-' || c == '.' || c == '_' || c == ':' || c == '%'))
            return orch_fail(msg, msglen, ORCH_ERR_PARSE, "'%s': bad character in host", text);
    }
    memcpy(u.host, host, hlen);
    u.host[hlen] = '\0';
    if (portstr != NULL) {
        if (!all_digits(portstr, plen) || plen > 5)
            return orch_fail(msg, msglen, ORCH_ERR_PARSE, "'%s': port is not a number in 1..65535",
                             text);
        char pb[8];
        memcpy(pb, portstr, plen);
        pb[plen] = '\0';
        port = strtol(pb, NULL, 10);
        if (port < 1 || port > 65535)
            return orch_fail(msg, msglen, ORCH_ERR_RANGE, "'%s': port is not in 1..65535", text);
    }
    u.port = (uint16_t)port;

    /* The prefix: the path without trailing slashes and without orchestrator's "/api". */
    size_t pl = strlen(path);
    while (pl > 0 && path[pl - 1] == '/')
        pl--;
    if (pl >= 4 && memcmp(path + pl - 4, "/api", 4) == 0)
        pl -= 4;
    while (pl > 0 && path[pl - 1] == '/')
        pl--;
    memcpy(u.prefix, path, pl);
    u.prefix[pl] = '\0';
    bool v6 = strchr(u.host, ':') != NULL;
    snprintf(u.text, sizeof(u.text), "http://%s%s%s:%u%s", v6 ? "[" : "", u.host, v6 ? "]" : "",
             (unsigned)u.port, u.prefix);
    *out = u;
    return ORCH_OK;
}

/* ---- small helpers -------------------------------------------------------------- */

bool ctl_http_encode(const char *s, char *out, size_t outlen)
{
    static const char hex[] = "0123456789ABCDEF";
    if (outlen == 0)
        return false;
    size_t o = strlen(out);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        bool plain = isalnum(*p) || *p == '-' || *p == '.' || *p == '_' || *p == '~';
        size_t need = plain ? 1 : 3;
        if (o + need >= outlen)
            return false;
        if (plain) {
            out[o++] = (char)*p;
        } else {
            out[o++] = '%';
            out[o++] = hex[*p >> 4];
            out[o++] = hex[*p & 15];
        }
        out[o] = '\0';
    }
    return true;
}

bool ctl_http_basic_auth(const char *user, const char *password, char *buf, size_t buflen)
{
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t ul = strlen(user), pl = strlen(password);
    size_t n = ul + 1 + pl;
    size_t need = 6 + (n + 2) / 3 * 4 + 1;
    if (need > buflen)
        return false;
    unsigned char *raw = malloc(n + 1);
    if (raw == NULL)
        return false;
    memcpy(raw, user, ul);
    raw[ul] = ':';
    memcpy(raw + ul + 1, password, pl);
    memcpy(buf, "Basic ", 6);
    size_t o = 6;
    for (size_t k = 0; k < n; k += 3) {
        unsigned v = (unsigned)raw[k] << 16;
        if (k + 1 < n)
            v |= (unsigned)raw[k + 1] << 8;
        if (k + 2 < n)
            v |= raw[k + 2];
        buf[o++] = b64[(v >> 18) & 63];
        buf[o++] = b64[(v >> 12) & 63];
        buf[o++] = k + 1 < n ? b64[(v >> 6) & 63] : '=';
        buf[o++] = k + 2 < n ? b64[v & 63] : '=';
    }
    buf[o] = '\0';
    memset(raw, 0, n);
    free(raw);
    return true;
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* ---- answer parsing --------------------------------------------------------------- */

static ctl_http_parse_state bad(ctl_http_parser *p, const char *why)
{
    snprintf(p->msg, sizeof(p->msg), "%s", why);
    return CTL_HTTP_BAD;
}

/* Finds "\r\n" in buf[from, len); returns its offset or (size_t)-1. */
static size_t find_crlf(const char *buf, size_t from, size_t len)
{
    for (size_t k = from; k + 1 < len; k++)
        if (buf[k] == '\r' && buf[k + 1] == '\n')
            return k;
    return (size_t)-1;
}

/* Parses the status line and headers of buf[0, end) (end: the offset of "\r\n\r\n"). */
static ctl_http_parse_state parse_headers(ctl_http_parser *p, const char *buf, size_t end)
{
    size_t eol = find_crlf(buf, 0, end + 2);
    if (eol == (size_t)-1 || eol < 12 || memcmp(buf, "HTTP/1.", 7) != 0 || buf[8] != ' ')
        return bad(p, "not an HTTP/1.x answer");
    if (!all_digits(buf + 9, 3) || (eol > 12 && buf[12] != ' '))
        return bad(p, "malformed status line");
    p->status = (buf[9] - '0') * 100 + (buf[10] - '0') * 10 + (buf[11] - '0');
    if (p->status < 200)
        return bad(p, "unexpected 1xx answer to a GET");
    size_t line = eol + 2;
    while (line < end + 2) {
        size_t le = find_crlf(buf, line, end + 2);
        if (le == (size_t)-1 || le == line)
            break;
        const char *colon = memchr(buf + line, ':', le - line);
        if (colon == NULL)
            return bad(p, "malformed header line");
        size_t nlen = (size_t)(colon - (buf + line));
        const char *v = colon + 1;
        const char *vend = buf + le;
        while (v < vend && (*v == ' ' || *v == '\t'))
            v++;
        while (vend > v && (vend[-1] == ' ' || vend[-1] == '\t'))
            vend--;
        size_t vlen = (size_t)(vend - v);
        if (nlen == 14 && strncasecmp(buf + line, "Content-Length", 14) == 0) {
            if (!all_digits(v, vlen) || vlen > 12)
                return bad(p, "malformed Content-Length");
            char num[16];
            memcpy(num, v, vlen);
            num[vlen] = '\0';
            size_t n = (size_t)strtoull(num, NULL, 10);
            if (p->has_length && n != p->length)
                return bad(p, "conflicting Content-Length headers");
            p->has_length = true;
            p->length = n;
        } else if (nlen == 17 && strncasecmp(buf + line, "Transfer-Encoding", 17) == 0) {
            /* chunked must be the last coding; nothing else is sent by the coordinator */
            p->chunked = vlen >= 7 && strncasecmp(vend - 7, "chunked", 7) == 0;
            if (!p->chunked)
                return bad(p, "unsupported Transfer-Encoding");
        } else if (nlen == 12 && strncasecmp(buf + line, "Content-Type", 12) == 0) {
            size_t n = vlen < sizeof(p->ctype) - 1 ? vlen : sizeof(p->ctype) - 1;
            memcpy(p->ctype, v, n);
            p->ctype[n] = '\0';
        }
        line = le + 2;
    }
    if (p->chunked)
        p->has_length = false; /* RFC 9112: Transfer-Encoding wins */
    if (p->has_length && p->length > CTL_BODY_MAX)
        return bad(p, "answer too large");
    p->headers_done = true;
    p->body_off = end + 4;
    p->chunk_off = p->body_off;
    return CTL_HTTP_MORE;
}

/* Walks the chunks that arrived since the last call. */
static ctl_http_parse_state parse_chunks(ctl_http_parser *p, const char *buf, size_t len)
{
    for (;;) {
        size_t eol = find_crlf(buf, p->chunk_off, len);
        if (eol == (size_t)-1)
            return len - p->chunk_off > 1024 ? bad(p, "malformed chunk size") : CTL_HTTP_MORE;
        size_t k = p->chunk_off;
        size_t size = 0;
        size_t digits = 0;
        for (; k < eol && isxdigit((unsigned char)buf[k]); k++, digits++) {
            int c = tolower((unsigned char)buf[k]);
            size = size * 16 + (size_t)(c <= '9' ? c - '0' : c - 'a' + 10);
            if (size > CTL_BODY_MAX)
                return bad(p, "answer too large");
        }
        if (digits == 0 || (k < eol && buf[k] != ';' && buf[k] != ' ' && buf[k] != '\t'))
            return bad(p, "malformed chunk size");
        size_t data = eol + 2;
        if (size == 0) {
            /* the last chunk, then optional trailers, then an empty line */
            for (size_t t = eol; t + 3 < len; t++)
                if (memcmp(buf + t, "\r\n\r\n", 4) == 0) {
                    p->body_len = p->dlen;
                    return CTL_HTTP_DONE;
                }
            return CTL_HTTP_MORE;
        }
        if (len < data + size + 2)
            return CTL_HTTP_MORE;
        if (buf[data + size] != '\r' || buf[data + size + 1] != '\n')
            return bad(p, "chunk not followed by CRLF");
        if (p->dlen + size > CTL_BODY_MAX)
            return bad(p, "answer too large");
        if (p->dlen + size + 1 > p->dcap) {
            size_t cap = p->dcap ? p->dcap : 4096;
            while (cap < p->dlen + size + 1)
                cap *= 2;
            char *d = realloc(p->dechunked, cap);
            if (d == NULL)
                return bad(p, "out of memory");
            p->dechunked = d;
            p->dcap = cap;
        }
        memcpy(p->dechunked + p->dlen, buf + data, size);
        p->dlen += size;
        p->dechunked[p->dlen] = '\0';
        p->chunk_off = data + size + 2;
    }
}

ctl_http_parse_state ctl_http_parse(ctl_http_parser *p, const char *buf, size_t len, bool eof)
{
    if (!p->headers_done) {
        size_t end = (size_t)-1;
        for (size_t k = 0; k + 3 < len; k++)
            if (memcmp(buf + k, "\r\n\r\n", 4) == 0) {
                end = k;
                break;
            }
        if (end == (size_t)-1) {
            if (len > CTL_HEADERS_MAX)
                return bad(p, "headers too large");
            if (eof)
                return bad(p, len == 0 ? "connection closed without an answer"
                                       : "connection closed in the middle of the headers");
            return CTL_HTTP_MORE;
        }
        ctl_http_parse_state st = parse_headers(p, buf, end);
        if (st != CTL_HTTP_MORE)
            return st;
    }
    if (p->status == 204 || p->status == 304) {
        p->body_len = 0;
        return CTL_HTTP_DONE;
    }
    ctl_http_parse_state st;
    if (p->chunked) {
        st = parse_chunks(p, buf, len);
    } else if (p->has_length) {
        if (len - p->body_off >= p->length) {
            p->body_len = p->length;
            st = CTL_HTTP_DONE;
        } else {
            st = CTL_HTTP_MORE;
        }
    } else if (eof) {
        p->body_len = len - p->body_off;
        st = CTL_HTTP_DONE;
    } else {
        st = len - p->body_off > CTL_BODY_MAX ? bad(p, "answer too large") : CTL_HTTP_MORE;
    }
    if (st == CTL_HTTP_MORE && eof)
        return bad(p, "connection closed before the answer was complete");
    return st;
}

const char *ctl_http_parser_body(const ctl_http_parser *p, const char *buf)
{
    if (p->chunked)
        return p->dechunked ? p->dechunked : "";
    return buf + p->body_off;
}

void ctl_http_parser_fini(ctl_http_parser *p)
{
    free(p->dechunked);
    p->dechunked = NULL;
    p->dlen = p->dcap = 0;
}

/* ---- connections ------------------------------------------------------------------ */

typedef enum conn_state { C_CONNECT, C_SEND, C_RECV, C_DONE } conn_state;

typedef struct ctl_http_conn {
    int fd;
    conn_state st;
    struct addrinfo *ai, *cur;
    int last_errno;
    char *out;
    size_t outlen, outoff;
    char *in;
    size_t inlen, incap;
    ctl_http_parser p;
    double start_ms;
} ctl_http_conn;

static void conn_close_fd(ctl_http_conn *c)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
}

static void conn_free(ctl_http_conn *c)
{
    if (c == NULL)
        return;
    conn_close_fd(c);
    if (c->ai != NULL)
        freeaddrinfo(c->ai);
    free(c->out);
    free(c->in);
    ctl_http_parser_fini(&c->p);
    free(c);
}

static void req_fail(ctl_http_req *r, orch_err err, const char *fmt, ...) ORCH_PRINTF(3, 4);
static void req_fail(ctl_http_req *r, orch_err err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->msg, sizeof(r->msg), fmt, ap);
    va_end(ap);
    r->err = err;
    if (r->conn != NULL) {
        r->elapsed_ms = now_ms() - r->conn->start_ms;
        conn_free(r->conn);
        r->conn = NULL;
    }
}

/* Starts connecting to c->cur or the next address that accepts a socket. */
static void conn_try_connect(ctl_http_req *r)
{
    ctl_http_conn *c = r->conn;
    for (; c->cur != NULL; c->cur = c->cur->ai_next) {
        conn_close_fd(c);
        c->fd = socket(c->cur->ai_family, c->cur->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
                       c->cur->ai_protocol);
        if (c->fd < 0) {
            c->last_errno = errno;
            continue;
        }
        int one = 1;
        (void)setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        if (connect(c->fd, c->cur->ai_addr, c->cur->ai_addrlen) == 0) {
            c->st = C_SEND;
            return;
        }
        if (errno == EINPROGRESS) {
            c->st = C_CONNECT;
            return;
        }
        c->last_errno = errno;
    }
    req_fail(r, ORCH_ERR_IO, "cannot connect to %s: %s", r->url->text, strerror(c->last_errno));
}

static bool conn_start(ctl_http_req *r)
{
    ctl_http_conn *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return false;
    c->fd = -1;
    c->start_ms = now_ms();
    r->conn = c;
    char portstr[8];
    snprintf(portstr, sizeof(portstr), "%u", (unsigned)r->url->port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV};
    int rc = getaddrinfo(r->url->host, portstr, &hints, &c->ai);
    if (rc == EAI_NONAME) {
        hints.ai_flags = AI_NUMERICSERV | AI_ADDRCONFIG;
        rc = getaddrinfo(r->url->host, portstr, &hints, &c->ai);
    }
    if (rc != 0) {
        c->ai = NULL;
        req_fail(r, ORCH_ERR_IO, "cannot resolve %s: %s", r->url->host,
                 rc == EAI_SYSTEM ? strerror(errno) : gai_strerror(rc));
        return true;
    }
    c->cur = c->ai;

    bool v6 = strchr(r->url->host, ':') != NULL;
    const char *a1 = r->auth ? "Authorization: " : "";
    const char *a2 = r->auth ? r->auth : "";
    const char *a3 = r->auth ? "\r\n" : "";
#define REQUEST_FMT                                                                                \
    "GET %s%s HTTP/1.1\r\n"                                                                        \
    "Host: %s%s%s:%u\r\n"                                                                          \
    "User-Agent: orchctl/" ORCH_VERSION "\r\n"                                                     \
    "Accept: application/json, text/plain\r\n"                                                     \
    "Connection: close\r\n"                                                                        \
    "%s%s%s"                                                                                       \
    "\r\n"
    int n = snprintf(NULL, 0, REQUEST_FMT, r->url->prefix, r->path, v6 ? "[" : "", r->url->host,
                     v6 ? "]" : "", (unsigned)r->url->port, a1, a2, a3);
    if (n < 0 || (c->out = malloc((size_t)n + 1)) == NULL)
        return false;
    snprintf(c->out, (size_t)n + 1, REQUEST_FMT, r->url->prefix, r->path, v6 ? "[" : "",
             r->url->host, v6 ? "]" : "", (unsigned)r->url->port, a1, a2, a3);
#undef REQUEST_FMT
    c->outlen = (size_t)n;
    conn_try_connect(r);
    return true;
}

/* The answer is complete: hand the body over to the request (no copy). */
static bool conn_finish(ctl_http_req *r)
{
    ctl_http_conn *c = r->conn;
    size_t len = c->p.body_len;
    if (c->p.chunked) {
        r->body = c->p.dechunked; /* NUL-terminated by parse_chunks */
        c->p.dechunked = NULL;
        if (r->body == NULL && (r->body = calloc(1, 1)) == NULL)
            return false;
    } else {
        memmove(c->in, c->in + c->p.body_off, len);
        c->in[len] = '\0';
        r->body = c->in;
        c->in = NULL;
    }
    r->len = len;
    r->status = c->p.status;
    snprintf(r->ctype, sizeof(r->ctype), "%s", c->p.ctype);
    r->err = ORCH_OK;
    r->elapsed_ms = now_ms() - c->start_ms;
    conn_free(c);
    r->conn = NULL;
    return true;
}

/*
 * A chunked answer's chunks are copied out as they complete: drop them from the
 * read buffer so that a long stream (all-instances of a large fleet) is not
 * held twice.
 */
static void conn_compact(ctl_http_conn *c)
{
    ctl_http_parser *p = &c->p;
    if (!p->chunked || p->chunk_off <= p->body_off)
        return;
    size_t gone = p->chunk_off - p->body_off;
    memmove(c->in + p->body_off, c->in + p->chunk_off, c->inlen - p->chunk_off);
    c->inlen -= gone;
    c->in[c->inlen] = '\0';
    p->chunk_off = p->body_off;
}

/* Advances r on poll events; false only when memory ran out. */
static bool conn_step(ctl_http_req *r, short revents)
{
    ctl_http_conn *c = r->conn;
    if (c->st == C_CONNECT) {
        int soerr = 0;
        socklen_t sl = sizeof(soerr);
        if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) != 0)
            soerr = errno;
        if (soerr != 0) {
            c->last_errno = soerr;
            c->cur = c->cur->ai_next;
            conn_try_connect(r);
            return true;
        }
        c->st = C_SEND;
    }
    if (c->st == C_SEND) {
        while (c->outoff < c->outlen) {
            ssize_t w = send(c->fd, c->out + c->outoff, c->outlen - c->outoff, MSG_NOSIGNAL);
            if (w < 0) {
                if (errno == EAGAIN || errno == EWOULDBLOCK)
                    return true;
                if (errno == EINTR)
                    continue;
                req_fail(r, ORCH_ERR_IO, "sending to %s: %s", r->url->text, strerror(errno));
                return true;
            }
            c->outoff += (size_t)w;
        }
        c->st = C_RECV;
        return true;
    }
    if (c->st != C_RECV || (revents & (POLLIN | POLLHUP | POLLERR)) == 0)
        return true;
    for (;;) {
        if (c->incap - c->inlen < CTL_READ_CHUNK + 1) {
            size_t cap = c->incap ? c->incap * 2 : 2 * CTL_READ_CHUNK;
            if (cap > (size_t)CTL_BODY_MAX + CTL_HEADERS_MAX + 2 * CTL_READ_CHUNK) {
                req_fail(r, ORCH_ERR_TOOBIG, "%s: answer larger than %u MiB", r->url->text,
                         (unsigned)(CTL_BODY_MAX >> 20));
                return true;
            }
            char *in = realloc(c->in, cap);
            if (in == NULL)
                return false;
            c->in = in;
            c->incap = cap;
        }
        ssize_t got = recv(c->fd, c->in + c->inlen, c->incap - c->inlen - 1, 0);
        if (got < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return true;
            req_fail(r, ORCH_ERR_IO, "reading from %s: %s", r->url->text, strerror(errno));
            return true;
        }
        c->inlen += (size_t)got;
        c->in[c->inlen] = '\0';
        ctl_http_parse_state st = ctl_http_parse(&c->p, c->in, c->inlen, got == 0);
        if (st == CTL_HTTP_DONE)
            return conn_finish(r);
        if (st == CTL_HTTP_BAD) {
            req_fail(r, ORCH_ERR_PROTO, "%s: %s", r->url->text, c->p.msg);
            return true;
        }
        conn_compact(c);
        if (got == 0)
            return true; /* cannot happen: eof makes MORE into BAD */
    }
}

orch_err ctl_http_run(ctl_http_req *reqs, size_t n, int timeout_ms, int stop_status)
{
    double deadline = now_ms() + (timeout_ms > 0 ? timeout_ms : 0);
    orch_err ret = ORCH_OK;
    struct pollfd *pfd = calloc(n ? n : 1, sizeof(*pfd));
    size_t *idx = calloc(n ? n : 1, sizeof(*idx));
    if (pfd == NULL || idx == NULL) {
        ret = ORCH_ERR_NOMEM;
        goto out;
    }
    for (size_t k = 0; k < n; k++) {
        ctl_http_req *r = &reqs[k];
        r->err = ORCH_ERR_TIMEOUT;
        r->status = 0;
        r->body = NULL;
        r->len = 0;
        r->ctype[0] = r->msg[0] = '\0';
        r->conn = NULL;
    }
    for (size_t k = 0; k < n; k++) {
        if (!conn_start(&reqs[k])) {
            ret = ORCH_ERR_NOMEM;
            goto out;
        }
    }
    for (;;) {
        size_t np = 0;
        bool stop = false;
        for (size_t k = 0; k < n; k++) {
            if (stop_status != 0 && reqs[k].conn == NULL && reqs[k].err == ORCH_OK &&
                reqs[k].status == stop_status)
                stop = true;
            if (reqs[k].conn == NULL)
                continue;
            pfd[np].fd = reqs[k].conn->fd;
            pfd[np].events = reqs[k].conn->st == C_RECV ? POLLIN : POLLOUT;
            pfd[np].revents = 0;
            idx[np++] = k;
        }
        if (np == 0 || stop)
            break;
        double left = deadline - now_ms();
        if (left <= 0)
            break;
        int rc = poll(pfd, np, (int)(left + 0.999));
        if (rc < 0 && errno == EINTR)
            continue;
        if (rc < 0) {
            for (size_t k = 0; k < np; k++)
                req_fail(&reqs[idx[k]], ORCH_ERR_IO, "poll: %s", strerror(errno));
            break;
        }
        for (size_t k = 0; k < np; k++) {
            if (pfd[k].revents == 0)
                continue;
            if (!conn_step(&reqs[idx[k]], pfd[k].revents)) {
                ret = ORCH_ERR_NOMEM;
                goto out;
            }
        }
    }
out:
    for (size_t k = 0; k < n; k++) {
        ctl_http_req *r = &reqs[k];
        if (r->conn == NULL)
            continue;
        if (ret != ORCH_OK)
            req_fail(r, ret, "out of memory");
        else if (now_ms() < deadline)
            req_fail(r, ORCH_ERR_CLOSED, "%s: not needed (another coordinator answered)",
                     r->url->text);
        else
            req_fail(r, ORCH_ERR_TIMEOUT, "%s: no answer within %d ms", r->url->text, timeout_ms);
    }
    free(pfd);
    free(idx);
    return ret;
}

void ctl_http_req_fini(ctl_http_req *r)
{
    if (r == NULL)
        return;
    conn_free(r->conn);
    r->conn = NULL;
    free(r->body);
    r->body = NULL;
    r->len = 0;
}

/*
 * http.h: orchctl's tiny blocking HTTP/1.1 client.
 *
 * orchctl makes one GET per call (plus one leader-check per coordinator when
 * ORCH_API names several), so the client is small: plain http:// URLs, one
 * request per connection ("Connection: close"), Content-Length, chunked or
 * read-to-EOF bodies, and one deadline for the whole exchange. Several
 * requests may run side by side in one poll() loop (the leader checks).
 *
 * Names that are IP literals are never looked up; others go through
 * getaddrinfo (which may block on DNS, outside the deadline).
 *
 * Single-threaded: orchctl calls these from its only thread. Parsing
 * functions are pure and safe anywhere.
 */
#ifndef ORCHCTL_HTTP_H
#define ORCHCTL_HTTP_H

#include "err.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CTL_URL_MAX          512          /* longest API URL accepted */
#define CTL_BODY_MAX         (512u << 20) /* larger answers are refused (512 MiB) */
#define CTL_DEFAULT_API_PORT 3000         /* the coordinator's default http_listen port */

/* A parsed API URL: "http://host[:port][/prefix]". */
typedef struct ctl_url {
    char host[256];               /* without IPv6 brackets */
    uint16_t port;                /* 80 when an http:// URL has none, 3000 for a bare host */
    char prefix[CTL_URL_MAX];     /* path before "/api/...", no trailing '/' ("" usually) */
    char text[CTL_URL_MAX + 300]; /* normalized, for messages: "http://127.0.0.1:3000" */
} ctl_url;

/*
 * Parses an API URL as operators write it: "http://h:3000", "http://h:3000/api"
 * (orchestrator-client's form: a trailing "/api" or "/" is dropped, since orchctl
 * adds "/api/..." itself), "h:3000" or "h" (http:// implied, port 3000 by
 * default), "http://[::1]:3000". https:// is refused with a message saying how to
 * get TLS. On failure *out is untouched and msg says why.
 */
orch_err ctl_url_parse(const char *s, ctl_url *out, char *msg, size_t msglen) ORCH_MUST_CHECK;

/* What parsing an answer so far found. */
typedef enum ctl_http_parse_state {
    CTL_HTTP_MORE = 0, /* incomplete: read more */
    CTL_HTTP_DONE,     /* complete answer */
    CTL_HTTP_BAD,      /* not HTTP, or a malformed header or chunk */
} ctl_http_parse_state;

/*
 * Incremental parser of one HTTP/1.x answer held in a growing buffer. Zero it,
 * then call ctl_http_parse after every read with the whole buffer so far and
 * eof when the peer closed. The buffer may move between calls (realloc), so
 * the parser keeps offsets only. Once DONE, status, the content type and the
 * body (ctl_http_parser_body) are set.
 */
typedef struct ctl_http_parser {
    int status;
    char ctype[128];
    bool headers_done;
    bool chunked;
    bool has_length;
    size_t length;    /* Content-Length */
    size_t body_off;  /* where the body starts in the buffer */
    size_t chunk_off; /* chunked: where the next chunk-size line starts */
    char *dechunked;  /* chunked: the body so far (malloc'd) */
    size_t dlen, dcap;
    size_t body_len; /* set when DONE */
    char msg[160];   /* why BAD */
} ctl_http_parser;

ctl_http_parse_state ctl_http_parse(ctl_http_parser *p, const char *buf, size_t len, bool eof);

/* The body of a DONE answer (borrowed from p or from buf); its length is p->body_len. */
const char *ctl_http_parser_body(const ctl_http_parser *p, const char *buf);

/* Frees what the parser allocated; safe on a zeroed or finished parser. */
void ctl_http_parser_fini(ctl_http_parser *p);

/* One GET to run. Fill url, path and auth; ctl_http_run fills the rest. */
typedef struct ctl_http_req {
    const ctl_url *url; /* borrowed */
    const char *path;   /* "/api/..." already percent-encoded; appended to url->prefix */
    const char *auth;   /* "Basic ..." header value, or NULL; borrowed */
    /* results */
    orch_err err;    /* ORCH_OK: an HTTP answer arrived (any status) */
    int status;      /* HTTP status when err is ORCH_OK */
    char *body;      /* NUL-terminated body (malloc'd, caller frees with ctl_http_req_fini) */
    size_t len;      /* body length */
    char ctype[128]; /* Content-Type */
    char msg[320];   /* why err is not ORCH_OK: "cannot connect to URL: Connection refused" */
    double elapsed_ms;
    /* internal */
    struct ctl_http_conn *conn;
} ctl_http_req;

/*
 * Runs the n requests side by side until all are answered or failed, or
 * timeout_ms passes (the ones still open fail with ORCH_ERR_TIMEOUT). When
 * stop_status is non-zero, returns as soon as one request got that status, and
 * the unfinished ones fail with ORCH_ERR_CLOSED ("not needed"). Blocks. Each
 * request's own err/status/body say how it went; the return value is ORCH_OK
 * unless memory ran out.
 */
orch_err ctl_http_run(ctl_http_req *reqs, size_t n, int timeout_ms, int stop_status);

/* Frees a request's results; safe to call twice. */
void ctl_http_req_fini(ctl_http_req *r);

/* Writes "Basic base64(user:password)" into buf; false when it does not fit. */
bool ctl_http_basic_auth(const char *user, const char *password, char *buf, size_t buflen);

/*
 * Appends s to out (of outlen, NUL-terminated) percent-encoded for a path
 * segment or query value: everything but A-Z a-z 0-9 - . _ ~ becomes %XX.
 * False when out is too small (out then holds a truncated, still valid prefix).
 */
bool ctl_http_encode(const char *s, char *out, size_t outlen);

#endif

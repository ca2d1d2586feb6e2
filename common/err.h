/*
 * err.h: orch's one error enum and the process exit codes.
 *
 * Every fallible function in orch returns an orch_err; detail for humans travels
 * in a caller-supplied message buffer (char *msg, size_t msglen), never in a
 * global. Any thread may call anything here.
 */
#ifndef ORCH_ERR_H
#define ORCH_ERR_H

#include <stddef.h>

#define ORCH_MUST_CHECK        __attribute__((warn_unused_result))
#define ORCH_PRINTF(fmt, args) __attribute__((format(printf, fmt, args)))

typedef enum orch_err {
    ORCH_OK = 0,
    ORCH_ERR_NOMEM,    /* out of memory */
    ORCH_ERR_INVAL,    /* invalid argument or input */
    ORCH_ERR_PARSE,    /* text that does not parse */
    ORCH_ERR_RANGE,    /* a number out of its bounds */
    ORCH_ERR_TOOBIG,   /* input or output larger than allowed */
    ORCH_ERR_IO,       /* a system call failed (errno in the message) */
    ORCH_ERR_CONFIG,   /* configuration errors */
    ORCH_ERR_NOTFOUND, /* no such object */
    ORCH_ERR_EXISTS,   /* object already exists */
    ORCH_ERR_TIMEOUT,  /* a deadline passed */
    ORCH_ERR_REFUSED,  /* the peer or the rules refused */
    ORCH_ERR_AUTH,     /* authentication failed */
    ORCH_ERR_STALE,    /* out-of-date epoch, sequence or data */
    ORCH_ERR_PROTO,    /* malformed or unsupported message */
    ORCH_ERR_MYSQL,    /* the MySQL server returned an error */
    ORCH_ERR_CLOSED,   /* connection or object closed */
    ORCH_ERR_STATE,    /* operation not allowed in the current state */
    ORCH_ERR__COUNT
} orch_err;

/* Exit codes shared by orch-agent, orch-coordinator and orchctl. */
enum orch_exit {
    ORCH_EXIT_OK = 0,
    ORCH_EXIT_FAILURE = 1,     /* runtime failure */
    ORCH_EXIT_USAGE = 2,       /* bad command line */
    ORCH_EXIT_CONFIG = 3,      /* bad configuration file */
    ORCH_EXIT_UNREACHABLE = 4, /* orchctl: no API node reachable */
    ORCH_EXIT_NOTFOUND = 5,    /* orchctl: no such instance or cluster */
    ORCH_EXIT_REFUSED = 6,     /* orchctl: the operation was refused */
    ORCH_EXIT_AUTH = 7,        /* orchctl: credentials refused */
};

/* Returns a static, human-readable name for err; never NULL. */
const char *orch_strerror(orch_err err);

/*
 * Writes a formatted message into msg (if msg is non-NULL and msglen > 0),
 * truncating safely, and returns err. Lets error paths read
 * `return orch_fail(msg, msglen, ORCH_ERR_PARSE, "bad port '%s'", s);`.
 */
orch_err orch_fail(char *msg, size_t msglen, orch_err err, const char *fmt, ...) ORCH_PRINTF(4, 5);

#endif

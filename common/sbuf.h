/*
 * sbuf.h: a growable string buffer (SQL statements, Prometheus text, JSON and
 * HTML fragments). Zero-initialised is empty and ready. A failed allocation
 * sets oom; later appends are ignored, and orch_sbuf_finish reports it. The
 * text is always NUL-terminated once anything was appended. One owner at a
 * time; any thread.
 */
#ifndef ORCH_SBUF_H
#define ORCH_SBUF_H

#include "err.h"

#include <stdbool.h>
#include <stddef.h>

typedef struct orch_sbuf {
    char *p;
    size_t len, cap;
    bool oom;
} orch_sbuf;

/* Makes room for extra more bytes (plus the NUL); false when out of memory. */
bool orch_sbuf_reserve(orch_sbuf *b, size_t extra);

/* Appends n bytes of s. */
void orch_sbuf_add(orch_sbuf *b, const char *s, size_t n);

/* Appends the string s. */
void orch_sbuf_str(orch_sbuf *b, const char *s);

/* Appends printf-style formatted text (no length limit). */
void orch_sbuf_fmt(orch_sbuf *b, const char *fmt, ...) ORCH_PRINTF(2, 3);

/* Empties the buffer, keeping its memory, and clears oom. */
void orch_sbuf_reset(orch_sbuf *b);

/*
 * Hands the text over (caller frees; "" when nothing was appended) and leaves
 * b empty. NULL (and everything freed) when an allocation had failed.
 */
char *orch_sbuf_finish(orch_sbuf *b);

/* Frees the buffer's memory and empties it. Safe on a zeroed buffer. */
void orch_sbuf_fini(orch_sbuf *b);

#endif

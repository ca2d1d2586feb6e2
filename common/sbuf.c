/* sbuf.c: a growable string buffer (see sbuf.h). */
#include "sbuf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool orch_sbuf_reserve(orch_sbuf *b, size_t extra)
{
    if (b->oom)
        return false;
    if (b->len + extra + 1 <= b->cap)
        return true;
    size_t cap = b->cap ? b->cap : 1024;
    while (cap < b->len + extra + 1)
        cap *= 2;
    char *p = realloc(b->p, cap);
    if (p == NULL) {
        b->oom = true;
        return false;
    }
    b->p = p;
    b->cap = cap;
    return true;
}

void orch_sbuf_add(orch_sbuf *b, const char *s, size_t n)
{
    if (!orch_sbuf_reserve(b, n))
        return;
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

void orch_sbuf_str(orch_sbuf *b, const char *s)
{
    orch_sbuf_add(b, s, strlen(s));
}

void orch_sbuf_fmt(orch_sbuf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || !orch_sbuf_reserve(b, (size_t)n))
        return;
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void orch_sbuf_reset(orch_sbuf *b)
{
    b->len = 0;
    b->oom = false;
    if (b->p != NULL)
        b->p[0] = '\0';
}

char *orch_sbuf_finish(orch_sbuf *b)
{
    if (!b->oom && b->p == NULL)
        orch_sbuf_add(b, "", 0);
    char *p = b->oom ? NULL : b->p;
    if (b->oom)
        free(b->p);
    memset(b, 0, sizeof(*b));
    return p;
}

void orch_sbuf_fini(orch_sbuf *b)
{
    free(b->p);
    memset(b, 0, sizeof(*b));
}

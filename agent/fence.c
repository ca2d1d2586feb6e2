/* fence.c: the epoch rule and the crash-safe state file (see fence.h). */
#include "fence.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

fence_verdict fence_check(const fence_state *st, uint64_t epoch, uint64_t command_id)
{
    if (epoch < st->epoch)
        return FENCE_STALE_EPOCH;
    if (epoch > st->epoch)
        return FENCE_ACCEPT_NEW_EPOCH;
    for (unsigned i = 0; i < st->nseen; i++) {
        if (st->seen[i] == command_id)
            return FENCE_REPLAY;
    }
    return FENCE_ACCEPT;
}

void fence_accept(fence_state *st, uint64_t epoch, uint64_t command_id)
{
    if (epoch > st->epoch) {
        st->epoch = epoch;
        st->nseen = 0;
        st->next_slot = 0;
    }
    st->seen[st->next_slot] = command_id;
    st->next_slot = (st->next_slot + 1) % FENCE_REPLAY_WINDOW;
    if (st->nseen < FENCE_REPLAY_WINDOW)
        st->nseen++;
}

const char *fence_verdict_name(fence_verdict v)
{
    switch (v) {
    case FENCE_ACCEPT:
        return "accept";
    case FENCE_ACCEPT_NEW_EPOCH:
        return "accept_new_epoch";
    case FENCE_STALE_EPOCH:
        return "stale_epoch";
    case FENCE_REPLAY:
        return "replay";
    }
    return "unknown";
}

orch_err fence_state_load(const char *path, fence_state *st, char *msg, size_t msglen)
{
    json_error_t jerr;
    json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL) {
        if (access(path, F_OK) != 0 && errno == ENOENT) {
            memset(st, 0, sizeof(*st));
            return ORCH_OK;
        }
        return orch_fail(msg, msglen, ORCH_ERR_PARSE,
                         "state file %s is unreadable or corrupt (%s, line %d); it holds the "
                         "highest leader epoch obeyed: restore it, or remove it only if no "
                         "deposed leader can still send commands",
                         path, jerr.text, jerr.line);
    }
    json_t *epoch = json_object_get(root, "epoch");
    json_t *fenced = json_object_get(root, "fenced");
    json_t *fence_epoch = json_object_get(root, "fence_epoch");
    orch_err err = ORCH_OK;
    if (!json_is_integer(epoch) || json_integer_value(epoch) < 0 || !json_is_boolean(fenced) ||
        (fence_epoch != NULL && !json_is_integer(fence_epoch)))
        err = orch_fail(msg, msglen, ORCH_ERR_PARSE,
                        "state file %s lacks a valid 'epoch' (non-negative integer) and "
                        "'fenced' (boolean)",
                        path);
    if (err == ORCH_OK) {
        memset(st, 0, sizeof(*st));
        st->epoch = (uint64_t)json_integer_value(epoch);
        st->fenced = json_is_true(fenced);
        st->fence_epoch = fence_epoch ? (uint64_t)json_integer_value(fence_epoch) : 0;
    }
    json_decref(root);
    return err;
}

/* fsyncs the directory holding path, so that a rename in it is durable. */
static orch_err fsync_parent(const char *path, char *msg, size_t msglen)
{
    char copy[PATH_MAX];
    snprintf(copy, sizeof(copy), "%s", path);
    const char *dir = dirname(copy);
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return orch_fail(msg, msglen, ORCH_ERR_IO, "open %s: %s", dir, strerror(errno));
    int rc = fsync(fd);
    int saved = errno;
    close(fd);
    if (rc != 0)
        return orch_fail(msg, msglen, ORCH_ERR_IO, "fsync %s: %s", dir, strerror(saved));
    return ORCH_OK;
}

orch_err fence_state_save(const char *path, const fence_state *st, char *msg, size_t msglen)
{
    char tmp[PATH_MAX];
    char body[256];
    int n =
        snprintf(body, sizeof(body), "{\"epoch\": %llu, \"fenced\": %s, \"fence_epoch\": %llu}\n",
                 (unsigned long long)st->epoch, st->fenced ? "true" : "false",
                 (unsigned long long)st->fence_epoch);
    if (snprintf(tmp, sizeof(tmp), "%s.tmp.%d", path, (int)getpid()) >= (int)sizeof(tmp))
        return orch_fail(msg, msglen, ORCH_ERR_TOOBIG, "state file path too long");

    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return orch_fail(msg, msglen, ORCH_ERR_IO, "create %s: %s", tmp, strerror(errno));
    const char *p = body;
    size_t left = (size_t)n;
    while (left > 0) {
        ssize_t w = write(fd, p, left);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            int saved = errno;
            close(fd);
            unlink(tmp);
            return orch_fail(msg, msglen, ORCH_ERR_IO, "write %s: %s", tmp, strerror(saved));
        }
        p += w;
        left -= (size_t)w;
    }
    if (fsync(fd) != 0) {
        int saved = errno;
        close(fd);
        unlink(tmp);
        return orch_fail(msg, msglen, ORCH_ERR_IO, "fsync %s: %s", tmp, strerror(saved));
    }
    close(fd);
    if (rename(tmp, path) != 0) {
        int saved = errno;
        unlink(tmp);
        return orch_fail(msg, msglen, ORCH_ERR_IO, "rename %s to %s: %s", tmp, path,
                         strerror(saved));
    }
    return fsync_parent(path, msg, msglen);
}

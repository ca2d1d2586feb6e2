/*
 * fence.h: the agent's fencing token and its crash-safe state file.
 *
 * Every command from a leader carries the leader's epoch. The agent obeys a
 * command only if its epoch is at least the highest it has obeyed, and writes a
 * new highest epoch to disk before acting on it, so that a deposed leader can
 * never act again, not even across an agent restart. The file also remembers
 * whether the leader has fenced this server (read-only and client connections
 * killed) and not lifted it: an agent that restarts or whose server comes back
 * re-applies the fence.
 *
 * The file is JSON, written crash-safely: temp file, fsync, rename, fsync of the
 * directory. A missing file means a fresh agent (epoch 0, not fenced); an
 * unreadable or corrupt file stops the agent with an error (guessing an epoch
 * would reopen the door to a deposed leader).
 *
 * fence_state functions are pure; fence_state_load/save do blocking file I/O
 * and are called by whoever holds the agent's fence lock (agent.c).
 */
#ifndef ORCH_AGENT_FENCE_H
#define ORCH_AGENT_FENCE_H

#include "err.h"

#include <stdbool.h>
#include <stdint.h>

#define FENCE_REPLAY_WINDOW 64

typedef struct fence_state {
    uint64_t epoch;       /* highest leader epoch obeyed (persisted) */
    bool fenced;          /* fenced by a leader and not lifted (persisted) */
    uint64_t fence_epoch; /* epoch of the command that fenced (persisted) */
    /* Command ids seen in the current epoch (memory only: after a restart a
     * replayed command of the same epoch may run again, which is harmless
     * because every command is idempotent; the epoch rule still holds). */
    uint64_t seen[FENCE_REPLAY_WINDOW];
    unsigned nseen;
    unsigned next_slot;
} fence_state;

typedef enum fence_verdict {
    FENCE_ACCEPT = 0,       /* same epoch, new command id */
    FENCE_ACCEPT_NEW_EPOCH, /* higher epoch: persist it before acting */
    FENCE_STALE_EPOCH,      /* epoch below the highest obeyed */
    FENCE_REPLAY,           /* (epoch, id) already seen */
} fence_verdict;

/*
 * Decides whether a command (epoch, command_id) may run. Does not change *st;
 * call fence_state_accept once the verdict is acted upon (after persisting a
 * new epoch).
 */
fence_verdict fence_check(const fence_state *st, uint64_t epoch, uint64_t command_id);

/* Records that (epoch, command_id) was accepted; a new epoch clears the window. */
void fence_accept(fence_state *st, uint64_t epoch, uint64_t command_id);

const char *fence_verdict_name(fence_verdict v);

/*
 * Loads the state file at path into *st. A missing file yields a fresh state
 * and ORCH_OK; a corrupt or unreadable one ORCH_ERR_PARSE / ORCH_ERR_IO with
 * msg naming the path and the problem.
 */
orch_err fence_state_load(const char *path, fence_state *st, char *msg,
                          size_t msglen) ORCH_MUST_CHECK;

/*
 * Writes epoch and fenced flags of *st to path crash-safely (see above). Blocks
 * on fsync. On failure the previous file is intact.
 */
orch_err fence_state_save(const char *path, const fence_state *st, char *msg,
                          size_t msglen) ORCH_MUST_CHECK;

#endif

/* hooks.c: shell hooks with placeholders, run off the loop (see hooks.h). */
#include "hooks.h"

#include "clock.h"
#include "log.h"
#include "wakeup.h"
#include "sbuf.h"

#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

#define OUTPUT_TAIL 400

/* One placeholder: its name in commands, its environment variable, its value. */
typedef struct var {
    const char *placeholder, *env;
    char value[512];
} var;

enum {
    V_TYPE,
    V_DESC,
    V_HOST,
    V_PORT,
    V_CLUSTER,
    V_ALIAS,
    V_SHOST,
    V_SPORT,
    V_SALIAS,
    V_LOST,
    V_COUNT,
    V_UID,
    V_OK,
    V_ORCH,
    V_COMMAND,
    V_REASON,
    V__N
};

static void fill_vars(var v[V__N], const hook_vars *h)
{
    static const struct {
        const char *placeholder, *env;
    } names[V__N] = {
        [V_TYPE] = {"{failureType}", "ORCH_FAILURE_TYPE"},
        [V_DESC] = {"{failureDescription}", "ORCH_FAILURE_DESCRIPTION"},
        [V_HOST] = {"{failedHost}", "ORCH_FAILED_HOST"},
        [V_PORT] = {"{failedPort}", "ORCH_FAILED_PORT"},
        [V_CLUSTER] = {"{failureCluster}", "ORCH_FAILURE_CLUSTER"},
        [V_ALIAS] = {"{failureClusterAlias}", "ORCH_FAILURE_CLUSTER_ALIAS"},
        [V_SHOST] = {"{successorHost}", "ORCH_SUCCESSOR_HOST"},
        [V_SPORT] = {"{successorPort}", "ORCH_SUCCESSOR_PORT"},
        [V_SALIAS] = {"{successorAlias}", "ORCH_SUCCESSOR_ALIAS"},
        [V_LOST] = {"{lostReplicas}", "ORCH_LOST_REPLICAS"},
        [V_COUNT] = {"{countReplicas}", "ORCH_COUNT_REPLICAS"},
        [V_UID] = {"{recoveryUID}", "ORCH_RECOVERY_UID"},
        [V_OK] = {"{isSuccessful}", "ORCH_IS_SUCCESSFUL"},
        [V_ORCH] = {"{orchestratorHost}", "ORCH_HOST"},
        [V_COMMAND] = {"{command}", "ORCH_COMMAND"},
        [V_REASON] = {"{reason}", "ORCH_REASON"},
    };
    for (int i = 0; i < V__N; i++) {
        v[i].placeholder = names[i].placeholder;
        v[i].env = names[i].env;
        v[i].value[0] = '\0';
    }
#define S(i, s) snprintf(v[i].value, sizeof(v[i].value), "%s", (s) ? (s) : "")
    S(V_TYPE, h->failure_type);
    S(V_DESC, h->failure_description);
    S(V_HOST, h->failed_host);
    S(V_CLUSTER, h->cluster);
    S(V_ALIAS, h->cluster_alias);
    S(V_SHOST, h->successor_host);
    S(V_SALIAS, h->successor_host);
    S(V_LOST, h->lost_replicas);
    S(V_UID, h->recovery_uid);
    S(V_ORCH, h->orch_host);
    S(V_COMMAND, h->command);
    S(V_REASON, h->reason);
#undef S
    if (h->failed_port > 0)
        snprintf(v[V_PORT].value, sizeof(v[V_PORT].value), "%d", h->failed_port);
    if (h->successor_port > 0)
        snprintf(v[V_SPORT].value, sizeof(v[V_SPORT].value), "%d", h->successor_port);
    snprintf(v[V_COUNT].value, sizeof(v[V_COUNT].value), "%d", h->count_replicas);
    snprintf(v[V_OK].value, sizeof(v[V_OK].value), "%s", h->is_successful ? "true" : "false");
}

/* Appends s single-quoted for /bin/sh ('it'\''s'). */
static void shell_quote(orch_sbuf *b, const char *s)
{
    orch_sbuf_str(b, "'");
    for (; *s; s++) {
        if (*s == '\'')
            orch_sbuf_str(b, "'\\''");
        else
            orch_sbuf_add(b, s, 1);
    }
    orch_sbuf_str(b, "'");
}

/* Expands placeholders of command with the values in v. */
static char *expand_with(const char *command, const var v[V__N])
{
    orch_sbuf b = {0};
    const char *p = command;
    while (*p) {
        bool matched = false;
        if (*p == '{') {
            for (int i = 0; i < V__N; i++) {
                size_t n = strlen(v[i].placeholder);
                if (strncmp(p, v[i].placeholder, n) == 0) {
                    shell_quote(&b, v[i].value);
                    p += n;
                    matched = true;
                    break;
                }
            }
        }
        if (!matched)
            orch_sbuf_add(&b, p++, 1);
    }
    return orch_sbuf_finish(&b);
}

char *hooks_expand(const char *command, const hook_vars *vars)
{
    var v[V__N];
    fill_vars(v, vars);
    return expand_with(command, v);
}

typedef struct job {
    struct job *next;
    char *event;
    char **commands;
    size_t n;
    var vars[V__N];
    int64_t timeout_ms;
    hooks_done_fn done;
    void *arg;
    hook_result result;
} job;

struct hooks {
    pthread_t thread;
    bool started;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool stopping;
    job *head, *tail;           /* to run */
    job *done_head, *done_tail; /* to deliver on the loop */
    orch_wakeup wake;           /* the runner hands results to the loop */
    pid_t running;              /* the process group of the hook running now, 0 none */
    bool halted;                /* hooks_halt ran: only the memory is left */
};

static void job_free(job *j)
{
    if (j == NULL)
        return;
    for (size_t i = 0; i < j->n; i++)
        free(j->commands[i]);
    free(j->commands);
    free(j->event);
    free(j);
}

/* Runs one command; fills r on failure. Returns true on exit status 0. */
static bool run_one(hooks *h, job *j, const char *cmd, hook_result *r)
{
    char *full = expand_with(cmd, j->vars);
    /* environment: ours plus ORCH_* */
    size_t nenv = 0;
    while (environ[nenv] != NULL)
        nenv++;
    char **envp = calloc(nenv + V__N + 1, sizeof(*envp));
    char *envbuf = calloc(V__N, 600);
    int fds[2] = {-1, -1};
    bool ok = false;
    if (full == NULL || envp == NULL || envbuf == NULL || pipe2(fds, O_CLOEXEC) != 0) {
        snprintf(r->error, sizeof(r->error), "%s: cannot run '%s': out of resources", j->event,
                 cmd);
        goto out;
    }
    size_t k = 0;
    for (size_t i = 0; i < nenv; i++) {
        if (strncmp(environ[i], "ORCH_", 5) != 0)
            envp[k++] = environ[i];
    }
    for (int i = 0; i < V__N; i++) {
        char *e = envbuf + i * 600;
        snprintf(e, 600, "%s=%s", j->vars[i].env, j->vars[i].value);
        envp[k++] = e;
    }
    envp[k] = NULL;
    char *argv[] = {(char *)"sh", (char *)"-c", full, NULL};
    pid_t pid = fork();
    if (pid < 0) {
        snprintf(r->error, sizeof(r->error), "%s: fork: %s", j->event, strerror(errno));
        goto out;
    }
    if (pid == 0) {
        /* child: async-signal-safe calls only */
        setpgid(0, 0);
        dup2(fds[1], 1);
        dup2(fds[1], 2);
        int devnull = open("/dev/null", O_RDONLY);
        if (devnull >= 0)
            dup2(devnull, 0);
        execve("/bin/sh", argv, envp);
        _exit(127);
    }
    setpgid(pid, pid);
    close(fds[1]);
    fds[1] = -1;
    pthread_mutex_lock(&h->mu);
    h->running = pid;
    pthread_mutex_unlock(&h->mu);

    char tail[OUTPUT_TAIL + 1];
    size_t tlen = 0;
    int64_t deadline = orch_mono_ms() + j->timeout_ms;
    bool timed_out = false, eof = false;
    while (!eof) {
        int64_t left = deadline - orch_mono_ms();
        if (left <= 0) {
            timed_out = true;
            break;
        }
        struct pollfd p = {.fd = fds[0], .events = POLLIN};
        int rc = poll(&p, 1, (int)(left > 200 ? 200 : left));
        if (rc < 0 && errno != EINTR)
            break;
        if (rc > 0) {
            char buf[512];
            ssize_t n = read(fds[0], buf, sizeof(buf));
            if (n <= 0) {
                eof = true;
            } else {
                /* keep the last OUTPUT_TAIL bytes: one shift per read */
                size_t take = (size_t)n < OUTPUT_TAIL ? (size_t)n : OUTPUT_TAIL;
                const char *src = buf + ((size_t)n - take);
                if (tlen + take > OUTPUT_TAIL) {
                    size_t drop = tlen + take - OUTPUT_TAIL;
                    memmove(tail, tail + drop, tlen - drop);
                    tlen -= drop;
                }
                for (size_t i = 0; i < take; i++)
                    tail[tlen++] = src[i] == '\n' ? ' ' : src[i];
            }
        }
        pthread_mutex_lock(&h->mu);
        bool stop = h->stopping;
        pthread_mutex_unlock(&h->mu);
        if (stop) {
            timed_out = true;
            break;
        }
    }
    tail[tlen] = '\0';
    int status = 0;
    if (timed_out) {
        kill(-pid, SIGKILL);
        waitpid(pid, &status, 0);
        snprintf(r->error, sizeof(r->error), "%s hook timed out after %lld ms: %s (output: %s)",
                 j->event, (long long)j->timeout_ms, cmd, tail);
    } else {
        /* output closed: wait for the exit, within what is left of the timeout */
        while (waitpid(pid, &status, WNOHANG) == 0) {
            if (orch_mono_ms() >= deadline) {
                kill(-pid, SIGKILL);
                waitpid(pid, &status, 0);
                snprintf(r->error, sizeof(r->error), "%s hook timed out: %s", j->event, cmd);
                goto done;
            }
            orch_sleep_ms(5);
        }
        if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
            ok = true;
        } else {
            snprintf(r->error, sizeof(r->error), "%s hook failed (%s %d): %s (output: %s)",
                     j->event, WIFEXITED(status) ? "exit" : "signal",
                     WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status), cmd, tail);
        }
    }
done:
    pthread_mutex_lock(&h->mu);
    h->running = 0;
    pthread_mutex_unlock(&h->mu);
out:
    if (fds[0] >= 0)
        close(fds[0]);
    if (fds[1] >= 0)
        close(fds[1]);
    free(envp);
    free(envbuf);
    free(full);
    return ok;
}

static void *hooks_main(void *arg)
{
    hooks *h = arg;
    pthread_mutex_lock(&h->mu);
    for (;;) {
        while (!h->stopping && h->head == NULL)
            pthread_cond_wait(&h->cv, &h->mu);
        if (h->stopping)
            break;
        job *j = h->head;
        h->head = j->next;
        if (h->head == NULL)
            h->tail = NULL;
        j->next = NULL;
        pthread_mutex_unlock(&h->mu);

        j->result.ok = true;
        for (size_t i = 0; i < j->n; i++) {
            j->result.ran++;
            orch_info(j->event, "running hook: %s", j->commands[i]);
            if (!run_one(h, j, j->commands[i], &j->result)) {
                j->result.ok = false;
                orch_log(ORCH_LOG_WARN, "ORCH-HOOK-FAILED", j->event, "%s", j->result.error);
                break;
            }
        }

        pthread_mutex_lock(&h->mu);
        if (h->done_tail != NULL)
            h->done_tail->next = j;
        else
            h->done_head = j;
        h->done_tail = j;
        orch_wakeup_notify(&h->wake);
    }
    pthread_mutex_unlock(&h->mu);
    return NULL;
}

static void deliver(hooks *h)
{
    pthread_mutex_lock(&h->mu);
    job *j = h->done_head;
    h->done_head = h->done_tail = NULL;
    pthread_mutex_unlock(&h->mu);
    while (j != NULL) {
        job *next = j->next;
        if (j->done != NULL)
            j->done(&j->result, j->arg);
        job_free(j);
        j = next;
    }
}

static void on_wake(void *arg)
{
    deliver(arg);
}

hooks *hooks_start(struct event_base *base, char *msg, size_t msglen)
{
    hooks *h = calloc(1, sizeof(*h));
    if (h == NULL) {
        orch_fail(msg, msglen, ORCH_ERR_NOMEM, "out of memory");
        return NULL;
    }
    orch_wakeup_clear(&h->wake);
    pthread_mutex_init(&h->mu, NULL);
    pthread_cond_init(&h->cv, NULL);
    if (orch_wakeup_init(&h->wake, base, on_wake, h, "hooks", msg, msglen) != ORCH_OK)
        goto fail;
    if (pthread_create(&h->thread, NULL, hooks_main, h) != 0) {
        orch_fail(msg, msglen, ORCH_ERR_IO, "cannot start the hook runner");
        goto fail;
    }
    h->started = true;
    return h;
fail:
    hooks_stop(h);
    return NULL;
}

void hooks_halt(hooks *h)
{
    if (h == NULL || h->halted)
        return;
    pthread_mutex_lock(&h->mu);
    h->stopping = true;
    if (h->running > 0)
        kill(-h->running, SIGKILL);
    pthread_cond_broadcast(&h->cv);
    job *j = h->head;
    h->head = h->tail = NULL;
    pthread_mutex_unlock(&h->mu);
    if (h->started)
        pthread_join(h->thread, NULL);
    while (j != NULL) {
        job *next = j->next;
        j->result.ok = false;
        snprintf(j->result.error, sizeof(j->result.error), "%s: coordinator stopping", j->event);
        if (j->done != NULL)
            j->done(&j->result, j->arg);
        job_free(j);
        j = next;
    }
    deliver(h);
    h->halted = true;
}

void hooks_stop(hooks *h)
{
    if (h == NULL)
        return;
    hooks_halt(h);
    orch_wakeup_fini(&h->wake);
    pthread_mutex_destroy(&h->mu);
    pthread_cond_destroy(&h->cv);
    free(h);
}

orch_err hooks_run(hooks *h, const char *event, const char *const *commands, size_t n,
                   const hook_vars *vars, int64_t timeout_ms, hooks_done_fn done, void *arg)
{
    job *j = calloc(1, sizeof(*j));
    if (j == NULL)
        return ORCH_ERR_NOMEM;
    j->event = strdup(event);
    j->commands = calloc(n ? n : 1, sizeof(*j->commands));
    if (j->event == NULL || j->commands == NULL) {
        job_free(j);
        return ORCH_ERR_NOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        if ((j->commands[i] = strdup(commands[i])) == NULL) {
            job_free(j);
            return ORCH_ERR_NOMEM;
        }
        j->n++;
    }
    fill_vars(j->vars, vars);
    j->timeout_ms = timeout_ms > 0 ? timeout_ms : 10000;
    j->done = done;
    j->arg = arg;
    pthread_mutex_lock(&h->mu);
    if (h->stopping) {
        pthread_mutex_unlock(&h->mu);
        job_free(j);
        return ORCH_ERR_CLOSED;
    }
    if (n == 0) {
        /* nothing to run: complete through the loop, never inside this call */
        j->result.ok = true;
        if (h->done_tail != NULL)
            h->done_tail->next = j;
        else
            h->done_head = j;
        h->done_tail = j;
        orch_wakeup_notify(&h->wake);
    } else {
        if (h->tail != NULL)
            h->tail->next = j;
        else
            h->head = j;
        h->tail = j;
        pthread_cond_signal(&h->cv);
    }
    pthread_mutex_unlock(&h->mu);
    return ORCH_OK;
}

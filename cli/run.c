/*
 * run.c: orchctl's main path (see run.h).
 *
 * A call costs one HTTP request to the API, plus one /api/leader-check per
 * coordinator when ORCH_API lists several; those go out side by side and the
 * first 200 ends the wait. Nothing else is read at start: no configuration
 * file, no DNS for IP addresses.
 */
#include "run.h"

#include "cmd.h"
#include "output.h"
#include "wire.h"

#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define DEFAULT_API "http://127.0.0.1:3000"
#define SECRET_MAX  (64 * 1024)

/* ---- small pieces ------------------------------------------------------------- */

int ctl_run_split_apis(const char *list, ctl_url *urls, size_t max, char *msg, size_t msglen)
{
    size_t n = 0;
    const char *p = list;
    for (;;) {
        while (*p == ' ' || *p == '\t' || *p == '\n' || *p == ',')
            p++;
        if (*p == '\0')
            break;
        const char *e = p;
        while (*e != '\0' && *e != ' ' && *e != '\t' && *e != '\n' && *e != ',')
            e++;
        if (n == max) {
            snprintf(msg, msglen, "more than %zu API URLs", max);
            return -1;
        }
        char one[CTL_URL_MAX + 1];
        size_t len = (size_t)(e - p);
        if (len > CTL_URL_MAX) {
            snprintf(msg, msglen, "API URL longer than %d bytes", CTL_URL_MAX);
            return -1;
        }
        memcpy(one, p, len);
        one[len] = '\0';
        if (ctl_url_parse(one, &urls[n], msg, msglen) != ORCH_OK)
            return -1;
        n++;
        p = e;
    }
    if (n == 0) {
        snprintf(msg, msglen, "no API URL given");
        return -1;
    }
    return (int)n;
}

static void append(char *msg, size_t msglen, const char *fmt, ...) ORCH_PRINTF(3, 4);
static void append(char *msg, size_t msglen, const char *fmt, ...)
{
    size_t used = strlen(msg);
    if (used + 1 >= msglen)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg + used, msglen - used, fmt, ap);
    va_end(ap);
}

int ctl_run_pick(const ctl_http_req *checks, size_t n, bool need_leader, int *exit_code, char *msg,
                 size_t msglen)
{
    for (size_t k = 0; k < n; k++)
        if (checks[k].err == ORCH_OK && checks[k].status == 200)
            return (int)k;
    bool auth = false;
    for (size_t k = 0; k < n; k++)
        if (checks[k].err == ORCH_OK && (checks[k].status == 401 || checks[k].status == 403))
            auth = true;
    if (!need_leader) {
        for (size_t k = 0; k < n; k++)
            if (checks[k].err == ORCH_OK && checks[k].status != 401 && checks[k].status != 403 &&
                checks[k].status < 500)
                return (int)k;
        for (size_t k = 0; k < n; k++)
            if (checks[k].err == ORCH_OK && checks[k].status != 401 && checks[k].status != 403)
                return (int)k;
    }
    *exit_code = auth ? ORCH_EXIT_AUTH : ORCH_EXIT_UNREACHABLE;
    if (msglen == 0)
        return -1;
    msg[0] = '\0';
    if (auth)
        append(msg, msglen,
               "credentials refused (set ORCH_AUTH_USER and ORCH_AUTH_PASSWORD, "
               "or --auth-file): ");
    else if (need_leader)
        append(msg, msglen, "no coordinator says it is the leader: ");
    else
        append(msg, msglen, "no coordinator reachable: ");
    for (size_t k = 0; k < n; k++) {
        const ctl_http_req *r = &checks[k];
        if (r->err == ORCH_OK)
            append(msg, msglen, "%s%s answered %d", k ? "; " : "", r->url->text, r->status);
        else
            append(msg, msglen, "%s%s", k ? "; " : "", r->msg);
    }
    return -1;
}

bool ctl_run_want_color(int color_opt, bool isatty_out, const char *no_color, const char *term)
{
    if (color_opt == CTL_COLOR_ALWAYS)
        return true;
    if (color_opt == CTL_COLOR_NEVER)
        return false;
    if (no_color != NULL && *no_color != '\0')
        return false;
    if (term != NULL && strcmp(term, "dumb") == 0)
        return false;
    return isatty_out;
}

/*
 * Reads a small secret file: content minus one trailing newline (as the
 * coordinator reads "file:" secrets), warning when group or others may read
 * it. Returns a malloc'd string or NULL with msg.
 */
static char *read_secret_file(const char *path, const char *what, char *msg, size_t msglen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(msg, msglen, "cannot open %s %s: %s", what, path, strerror(errno));
        return NULL;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        snprintf(msg, msglen, "%s %s is not a regular file", what, path);
        close(fd);
        return NULL;
    }
    if (st.st_mode & (S_IRWXG | S_IRWXO))
        fprintf(stderr,
                "orchctl: warning: %s %s may be read by group or others (mode %04o); "
                "chmod 600 it\n",
                what, path, (unsigned)(st.st_mode & 07777));
    if (st.st_size > SECRET_MAX) {
        snprintf(msg, msglen, "%s %s is larger than %d bytes", what, path, SECRET_MAX);
        close(fd);
        return NULL;
    }
    char *buf = malloc((size_t)st.st_size + 1);
    size_t len = 0;
    while (buf != NULL && len < (size_t)st.st_size) {
        ssize_t got = read(fd, buf + len, (size_t)st.st_size - len);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            break;
        len += (size_t)got;
    }
    close(fd);
    if (buf == NULL) {
        snprintf(msg, msglen, "out of memory");
        return NULL;
    }
    buf[len] = '\0';
    if (memchr(buf, '\0', len) != NULL) {
        snprintf(msg, msglen, "%s %s holds a NUL byte", what, path);
        free(buf);
        return NULL;
    }
    if (len > 0 && buf[len - 1] == '\n') {
        buf[--len] = '\0';
        if (len > 0 && buf[len - 1] == '\r')
            buf[--len] = '\0';
    }
    if (len == 0) {
        snprintf(msg, msglen, "%s %s is empty", what, path);
        free(buf);
        return NULL;
    }
    return buf;
}

/* ---- local commands ------------------------------------------------------------- */

static int agent_key(const ctl_opts *o)
{
    char msg[512];
    char *secret = NULL;
    if (o->fleet_secret_file != NULL) {
        secret = read_secret_file(o->fleet_secret_file, "fleet secret file", msg, sizeof(msg));
        if (secret == NULL) {
            fprintf(stderr, "orchctl: agent-key: %s\n", msg);
            return ORCH_EXIT_USAGE;
        }
    } else {
        const char *env = getenv("ORCH_FLEET_SECRET");
        if (env == NULL || *env == '\0') {
            fprintf(stderr, "orchctl: agent-key needs the fleet secret: --fleet-secret-file PATH "
                            "or ORCH_FLEET_SECRET\n");
            return ORCH_EXIT_USAGE;
        }
        secret = strdup(env);
        if (secret == NULL) {
            fprintf(stderr, "orchctl: out of memory\n");
            return ORCH_EXIT_FAILURE;
        }
    }
    orch_hmac_key key;
    size_t slen = strlen(secret);
    orch_err err = orch_wire_derive_key(secret, slen, o->host, &key);
    memset(secret, 0, slen);
    free(secret);
    if (err != ORCH_OK) {
        fprintf(stderr, "orchctl: agent-key: cannot derive the key of '%s': %s\n", o->host,
                orch_strerror(err));
        return ORCH_EXIT_USAGE;
    }
    char hex[2 * ORCH_HMAC_LEN + 1];
    orch_wire_key_to_hex(&key, hex, sizeof(hex));
    memset(&key, 0, sizeof(key));
    printf("%s\n", hex);
    return ORCH_EXIT_OK;
}

/* ---- credentials ----------------------------------------------------------------- */

/* Fills hdr with the Authorization value, or leaves it empty. Returns an exit code. */
static int load_auth(const ctl_opts *o, char *hdr, size_t hdrlen)
{
    hdr[0] = '\0';
    const char *file = o->auth_file ? o->auth_file : getenv("ORCH_AUTH_FILE");
    if (file != NULL && *file != '\0') {
        char msg[512];
        char *line = read_secret_file(file, "auth file", msg, sizeof(msg));
        if (line == NULL) {
            fprintf(stderr, "orchctl: %s\n", msg);
            return ORCH_EXIT_USAGE;
        }
        char *nl = strpbrk(line, "\r\n");
        if (nl != NULL)
            *nl = '\0';
        char *colon = strchr(line, ':');
        int rc = ORCH_EXIT_OK;
        if (colon == NULL || colon == line) {
            fprintf(stderr, "orchctl: auth file %s: expected one line \"user:password\"\n", file);
            rc = ORCH_EXIT_USAGE;
        } else {
            *colon = '\0';
            if (!ctl_http_basic_auth(line, colon + 1, hdr, hdrlen)) {
                fprintf(stderr, "orchctl: auth file %s: credentials too long\n", file);
                rc = ORCH_EXIT_USAGE;
            }
        }
        memset(line, 0, strlen(line));
        if (colon != NULL)
            memset(colon + 1, 0, strlen(colon + 1));
        free(line);
        return rc;
    }
    const char *user = getenv("ORCH_AUTH_USER");
    if (user != NULL && *user != '\0') {
        const char *pw = getenv("ORCH_AUTH_PASSWORD");
        if (!ctl_http_basic_auth(user, pw ? pw : "", hdr, hdrlen)) {
            fprintf(stderr, "orchctl: ORCH_AUTH_USER/ORCH_AUTH_PASSWORD too long\n");
            return ORCH_EXIT_USAGE;
        }
    }
    return ORCH_EXIT_OK;
}

static const char *default_owner(void)
{
    const char *u = getenv("USER");
    if (u != NULL && *u != '\0')
        return u;
    struct passwd *pw = getpwuid(getuid());
    if (pw != NULL && pw->pw_name != NULL && *pw->pw_name != '\0')
        return pw->pw_name;
    return "orchctl";
}

/* ---- the API call ------------------------------------------------------------------ */

static void report_failure(const ctl_cmd *cmd, const ctl_url *url, const char *path, int rc,
                           bool unsupported, const char *apimsg, bool had_auth)
{
    if (unsupported) {
        if (cmd->flags & CTL_CMD_WRITE)
            fprintf(stderr, "orchctl: the coordinator does not support %s yet (404 on %s)\n",
                    cmd->name, path);
        else
            fprintf(stderr, "orchctl: %s: not supported by this coordinator (route %s missing)\n",
                    cmd->name, path);
        return;
    }
    if (rc == ORCH_EXIT_AUTH && !had_auth)
        fprintf(stderr,
                "orchctl: %s: %s at %s: credentials needed (set ORCH_AUTH_USER and "
                "ORCH_AUTH_PASSWORD, or --auth-file)\n",
                cmd->name, apimsg, url->text);
    else if (rc == ORCH_EXIT_AUTH)
        fprintf(stderr,
                "orchctl: %s: %s at %s (check ORCH_AUTH_USER/ORCH_AUTH_PASSWORD or "
                "--auth-file)\n",
                cmd->name, apimsg, url->text);
    else
        fprintf(stderr, "orchctl: %s: %s\n", cmd->name, apimsg);
}

int ctl_main(int argc, char **argv)
{
    ctl_opts o;
    char msg[2048];
    if (ctl_cmd_parse(argc, argv, &o, msg, sizeof(msg)) != ORCH_OK) {
        fprintf(stderr, "orchctl: %s\n", msg);
        if (o.cmd != NULL) {
            char usage[256];
            ctl_cmd_usage(o.cmd, usage, sizeof(usage));
            fprintf(stderr, "usage: %s (orchctl help %s)\n", usage, o.cmd->name);
        }
        return ORCH_EXIT_USAGE;
    }
    const ctl_cmd *cmd = o.cmd;
    if (o.help || cmd == NULL) {
        ctl_cmd_help(stdout, cmd);
        return ORCH_EXIT_OK;
    }
    if (strcmp(cmd->name, "help") == 0) {
        ctl_cmd_help(stdout, o.topic ? ctl_cmd_find(o.topic) : NULL);
        return ORCH_EXIT_OK;
    }
    if (strcmp(cmd->name, "version") == 0) {
        printf("orchctl %s\n", ORCH_VERSION);
        return ORCH_EXIT_OK;
    }
    if (strcmp(cmd->name, "agent-key") == 0)
        return agent_key(&o);

    /* where */
    const char *list = o.api;
    if (list == NULL)
        list = getenv("ORCH_API");
    if (list == NULL || *list == '\0')
        list = DEFAULT_API;
    static ctl_url urls[CTL_MAX_APIS];
    int nurls = ctl_run_split_apis(list, urls, CTL_MAX_APIS, msg, sizeof(msg));
    if (nurls < 0) {
        fprintf(stderr, "orchctl: bad %s: %s\n", o.api ? "--api" : "ORCH_API", msg);
        return ORCH_EXIT_USAGE;
    }
    char auth[2048];
    int rc = load_auth(&o, auth, sizeof(auth));
    if (rc != ORCH_EXIT_OK)
        return rc;
    if (o.owner == NULL && ((cmd->needs | cmd->takes) & CTL_A_OWNER))
        o.owner = default_owner();

    /* what */
    char path[4096] = "";
    if ((cmd->flags & CTL_CMD_NOREQ) == 0 &&
        !ctl_cmd_path(cmd, &o, o.json, path, sizeof(path), msg, sizeof(msg))) {
        fprintf(stderr, "orchctl: %s\n", msg);
        return ORCH_EXIT_USAGE;
    }

    /* which coordinator */
    const ctl_url *url = &urls[0];
    if (nurls > 1) {
        ctl_http_req checks[CTL_MAX_APIS];
        memset(checks, 0, sizeof(checks));
        for (int k = 0; k < nurls; k++) {
            checks[k].url = &urls[k];
            checks[k].path = "/api/leader-check";
            checks[k].auth = auth[0] ? auth : NULL;
        }
        int t =
            o.timeout_ms < CTL_LEADER_CHECK_TIMEOUT_MS ? o.timeout_ms : CTL_LEADER_CHECK_TIMEOUT_MS;
        if (ctl_http_run(checks, (size_t)nurls, t, 200) != ORCH_OK) {
            fprintf(stderr, "orchctl: out of memory\n");
            return ORCH_EXIT_FAILURE;
        }
        int exit_code = ORCH_EXIT_UNREACHABLE;
        int pick = ctl_run_pick(checks, (size_t)nurls, (cmd->flags & CTL_CMD_WRITE) != 0,
                                &exit_code, msg, sizeof(msg));
        for (int k = 0; k < nurls; k++)
            ctl_http_req_fini(&checks[k]);
        if (pick < 0) {
            fprintf(stderr, "orchctl: %s: %s\n", cmd->name, msg);
            return exit_code;
        }
        url = &urls[pick];
    }
    if (cmd->flags & CTL_CMD_NOREQ) {
        printf("%s\n", url->text);
        return ORCH_EXIT_OK;
    }
    if (o.dry_run) {
        printf("GET %s%s\n", url->text, path);
        return ORCH_EXIT_OK;
    }

    /* the request */
    ctl_http_req req;
    memset(&req, 0, sizeof(req));
    req.url = url;
    req.path = path;
    req.auth = auth[0] ? auth : NULL;
    if (ctl_http_run(&req, 1, o.timeout_ms, 0) != ORCH_OK) {
        fprintf(stderr, "orchctl: out of memory\n");
        return ORCH_EXIT_FAILURE;
    }
    memset(auth, 0, sizeof(auth));
    if (req.err != ORCH_OK) {
        fprintf(stderr, "orchctl: %s: cannot reach the API: %s\n", cmd->name, req.msg);
        ctl_http_req_fini(&req);
        return ORCH_EXIT_UNREACHABLE;
    }
    bool unsupported = false;
    char apimsg[1024];
    rc = ctl_cmd_classify(req.status, req.body, req.len, (cmd->flags & CTL_CMD_WRITE) != 0,
                          &unsupported, apimsg, sizeof(apimsg));
    bool raw = cmd->out == CTL_OUT_RAW || o.json;
    if (raw && (rc == ORCH_EXIT_OK || cmd->out == CTL_OUT_RAW)) {
        /* the body as it came (api prints it whatever the status) */
        fwrite(req.body, 1, req.len, stdout);
        if (req.len > 0 && req.body[req.len - 1] != '\n')
            fputc('\n', stdout);
    }
    if (rc != ORCH_EXIT_OK) {
        report_failure(cmd, url, path, rc, unsupported, apimsg, req.auth != NULL);
    } else if (!raw) {
        ctl_out_ctx oc = {
            .color = ctl_run_want_color(o.color, isatty(STDOUT_FILENO) == 1, getenv("NO_COLOR"),
                                        getenv("TERM")),
        };
        rc = ctl_out_render(cmd->out, req.body, req.len, &oc, stdout, msg, sizeof(msg));
        if (rc != ORCH_EXIT_OK)
            fprintf(stderr, "orchctl: %s: %s\n", cmd->name, msg);
    }
    ctl_http_req_fini(&req);
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "orchctl: writing the output: %s\n", strerror(errno));
        return rc != ORCH_EXIT_OK ? rc : ORCH_EXIT_FAILURE;
    }
    return rc;
}

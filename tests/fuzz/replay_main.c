/*
 * replay_main.c: a main() for any libFuzzer-style target, for machines and
 * builds without libFuzzer (gcc, the sanitizer build in CI).
 *
 *   fuzz_X_replay [--mutations N] [--seed S] [--max-len L] [--max-seconds T]
 *                 [--save-crash DIR] PATH...
 *
 * Runs LLVMFuzzerTestOneInput once on every file given, or in a directory
 * given (not recursive; sorted by name), then N pseudo-random mutations of
 * them: bit flips, byte changes, "interesting" values, inserts, deletes,
 * duplicated ranges, truncation, splices of two inputs. The mutations depend
 * only on the seed and the corpus, so a failure reproduces with the same
 * arguments; each input is its own exact-size heap buffer, so that ASan sees
 * a read past its end. Before each mutated input runs it is written to
 * DIR/last-input when --save-crash is given, so the input that crashed is on
 * disk (a libFuzzer build then reproduces it: fuzz_X DIR/last-input).
 *
 * --max-seconds (default 8) bounds the run on a slow or sanitizer build; the
 * count actually run is printed. Exit status: 0, 2 usage or unreadable corpus;
 * a failing input aborts (the target's sanitizer report says why).
 *
 * Reusable: link it with any fuzz_*.c that defines LLVMFuzzerTestOneInput;
 * LLVMFuzzerInitialize is called when the target defines it.
 */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv) __attribute__((weak));

typedef struct input {
    uint8_t *data;
    size_t len;
    char *name;
} input;

typedef struct corpus {
    input *v;
    size_t n, cap;
} corpus;

static uint64_t rng_state;

/* xorshift64*: small, fast, and the same sequence everywhere. */
static uint64_t rnd(void)
{
    uint64_t x = rng_state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    rng_state = x;
    return x * 0x2545F4914F6CDD1DULL;
}

/* Uniform-enough integer in [0, n); n > 0. */
static size_t below(size_t n)
{
    return (size_t)(rnd() % n);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int read_whole(const char *path, uint8_t **out, size_t *outlen)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return -1;
    uint8_t *buf = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        if (len == cap) {
            size_t ncap = cap ? cap * 2 : 4096;
            uint8_t *n = realloc(buf, ncap);
            if (n == NULL) {
                free(buf);
                fclose(f);
                return -1;
            }
            buf = n;
            cap = ncap;
        }
        size_t r = fread(buf + len, 1, cap - len, f);
        len += r;
        if (r == 0)
            break;
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        free(buf);
        return -1;
    }
    *out = buf;
    *outlen = len;
    return 0;
}

static int corpus_add(corpus *c, const char *path)
{
    if (c->n == c->cap) {
        size_t ncap = c->cap ? c->cap * 2 : 64;
        input *v = realloc(c->v, ncap * sizeof(*v));
        if (v == NULL)
            return -1;
        c->v = v;
        c->cap = ncap;
    }
    input *in = &c->v[c->n];
    if (read_whole(path, &in->data, &in->len) != 0) {
        fprintf(stderr, "replay: cannot read %s: %s\n", path, strerror(errno));
        return -1;
    }
    in->name = strdup(path);
    if (in->name == NULL) {
        free(in->data);
        return -1;
    }
    c->n++;
    return 0;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Adds path, or every regular file directly in it when it is a directory. */
static int corpus_load(corpus *c, const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
        return -1;
    }
    if (!S_ISDIR(st.st_mode))
        return corpus_add(c, path);
    DIR *d = opendir(path);
    if (d == NULL) {
        fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
        return -1;
    }
    char **names = NULL;
    size_t n = 0, cap = 0;
    int rc = 0;
    struct dirent *e;
    while (rc == 0 && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 64;
            char **nv = realloc(names, ncap * sizeof(*nv));
            if (nv == NULL) {
                rc = -1;
                break;
            }
            names = nv;
            cap = ncap;
        }
        size_t len = strlen(path) + strlen(e->d_name) + 2;
        char *full = malloc(len);
        if (full == NULL) {
            rc = -1;
            break;
        }
        snprintf(full, len, "%s/%s", path, e->d_name);
        struct stat fst;
        if (stat(full, &fst) != 0 || !S_ISREG(fst.st_mode)) {
            free(full);
            continue;
        }
        names[n++] = full;
    }
    closedir(d);
    if (n > 0)
        qsort(names, n, sizeof(*names), by_name);
    for (size_t i = 0; i < n; i++) {
        if (rc == 0)
            rc = corpus_add(c, names[i]);
        free(names[i]);
    }
    free(names);
    return rc;
}

/* Runs one input from an exact-size heap copy. */
static void run_one(const uint8_t *data, size_t len)
{
    uint8_t *copy = malloc(len ? len : 1);
    if (copy == NULL) {
        fprintf(stderr, "replay: out of memory\n");
        exit(2);
    }
    if (len)
        memcpy(copy, data, len);
    LLVMFuzzerTestOneInput(copy, len);
    free(copy);
}

/* Applies one random mutation to buf[0..*len) (capacity cap); other is a splice source. */
static void mutate_once(uint8_t *buf, size_t *len, size_t cap, const input *other)
{
    static const uint8_t interesting[] = {0x00, 0x01, 0x7f, 0x80, 0xff, 0x08, 0x10, 0x12,
                                          0x1a, 0x22, 0x2a, 0x40, 0xfe, 0x0a, 0x27, 0x5c};
    size_t n = *len;
    switch (below(9)) {
    case 0: /* flip one bit */
        if (n)
            buf[below(n)] ^= (uint8_t)(1u << below(8));
        break;
    case 1: /* random byte */
        if (n)
            buf[below(n)] = (uint8_t)rnd();
        break;
    case 2: /* interesting byte (protobuf tags and lengths, quotes, backslash) */
        if (n)
            buf[below(n)] = interesting[below(sizeof(interesting))];
        break;
    case 3: { /* insert 1..8 random bytes */
        size_t k = 1 + below(8);
        if (n + k > cap)
            break;
        size_t at = below(n + 1);
        memmove(buf + at + k, buf + at, n - at);
        for (size_t i = 0; i < k; i++)
            buf[at + i] = (uint8_t)rnd();
        *len = n + k;
        break;
    }
    case 4: { /* delete a range */
        if (n == 0)
            break;
        size_t at = below(n), k = 1 + below(n - at < 16 ? n - at : 16);
        memmove(buf + at, buf + at + k, n - at - k);
        *len = n - k;
        break;
    }
    case 5: { /* duplicate a range */
        if (n == 0)
            break;
        size_t at = below(n), k = 1 + below(n - at < 32 ? n - at : 32);
        if (n + k > cap)
            break;
        size_t to = below(n + 1);
        uint8_t tmp[32];
        memcpy(tmp, buf + at, k);
        memmove(buf + to + k, buf + to, n - to);
        memcpy(buf + to, tmp, k);
        *len = n + k;
        break;
    }
    case 6: /* truncate */
        if (n)
            *len = below(n);
        break;
    case 7: { /* splice: our head, other's tail */
        if (other->len == 0)
            break;
        size_t head = below(n + 1), from = below(other->len);
        size_t k = other->len - from;
        if (head + k > cap)
            k = cap - head;
        memcpy(buf + head, other->data + from, k);
        *len = head + k;
        break;
    }
    default: /* overwrite a varint-looking byte run with a large value */
        if (n >= 2) {
            size_t at = below(n - 1);
            buf[at] = 0xff;
            buf[at + 1] = (uint8_t)(rnd() | 0x80);
        }
        break;
    }
}

static void save_last(const char *dir, const uint8_t *data, size_t len)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/last-input", dir);
    FILE *f = fopen(path, "wb");
    if (f == NULL)
        return;
    if (len)
        fwrite(data, 1, len, f);
    fclose(f);
}

static long long number(const char *s, const char *what)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (*s == '\0' || *end != '\0' || errno != 0 || v < 0) {
        fprintf(stderr, "replay: bad %s '%s'\n", what, s);
        exit(2);
    }
    return v;
}

int main(int argc, char **argv)
{
    long long mutations = 10000, seed = 1, max_len = 4096, max_seconds = 8;
    const char *save_dir = NULL;
    corpus c = {0};
    int first = 1;

    if (LLVMFuzzerInitialize != NULL)
        LLVMFuzzerInitialize(&argc, &argv);
    for (; first < argc && strncmp(argv[first], "--", 2) == 0; first += 2) {
        if (first + 1 >= argc) {
            fprintf(stderr, "replay: %s needs a value\n", argv[first]);
            return 2;
        }
        if (strcmp(argv[first], "--mutations") == 0)
            mutations = number(argv[first + 1], "--mutations");
        else if (strcmp(argv[first], "--seed") == 0)
            seed = number(argv[first + 1], "--seed");
        else if (strcmp(argv[first], "--max-len") == 0)
            max_len = number(argv[first + 1], "--max-len");
        else if (strcmp(argv[first], "--max-seconds") == 0)
            max_seconds = number(argv[first + 1], "--max-seconds");
        else if (strcmp(argv[first], "--save-crash") == 0)
            save_dir = argv[first + 1];
        else {
            fprintf(stderr, "replay: unknown option %s\n", argv[first]);
            return 2;
        }
    }
    if (first >= argc) {
        fprintf(stderr,
                "usage: %s [--mutations N] [--seed S] [--max-len L] [--max-seconds T] "
                "[--save-crash DIR] CORPUS_DIR_OR_FILE...\n",
                argv[0]);
        return 2;
    }
    for (int i = first; i < argc; i++) {
        if (corpus_load(&c, argv[i]) != 0)
            return 2;
    }
    if (c.n == 0) {
        fprintf(stderr, "replay: the corpus is empty\n");
        return 2;
    }

    double start = now_s();
    for (size_t i = 0; i < c.n; i++)
        run_one(c.v[i].data, c.v[i].len);

    size_t cap = (size_t)max_len;
    for (size_t i = 0; i < c.n; i++)
        cap = c.v[i].len > cap ? c.v[i].len : cap;
    uint8_t *buf = malloc(cap ? cap : 1);
    if (buf == NULL)
        return 2;
    rng_state = (uint64_t)seed * 0x9E3779B97F4A7C15ULL + 1;
    long long done = 0;
    for (; done < mutations; done++) {
        if ((done & 255) == 0 && now_s() - start > (double)max_seconds)
            break;
        const input *base = &c.v[below(c.n)];
        size_t len = base->len;
        memcpy(buf, base->data, len);
        for (size_t k = 1 + below(4); k > 0; k--)
            mutate_once(buf, &len, cap, &c.v[below(c.n)]);
        if (save_dir != NULL)
            save_last(save_dir, buf, len);
        run_one(buf, len);
    }
    free(buf);
    printf("replay: %zu corpus inputs and %lld mutations (seed %lld) in %.1f s%s\n", c.n, done,
           seed, now_s() - start, done < mutations ? ", stopped by --max-seconds" : "");
    for (size_t i = 0; i < c.n; i++) {
        free(c.v[i].data);
        free(c.v[i].name);
    }
    free(c.v);
    return 0;
}

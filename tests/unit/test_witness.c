/*
 * Unit tests for witness.c against local sockets: a listener that never greets
 * (what a SIGSTOPped server looks like from outside), a closed port, a server
 * that greets, one that sends an error packet, and one that sends junk. The
 * system tests check the same against real MariaDB servers.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "witness.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static int listen_any(uint16_t *port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(fd, 8), 0);
    socklen_t len = sizeof(a);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    *port = ntohs(a.sin_port);
    return fd;
}

struct greeter {
    int lfd;
    const uint8_t *bytes;
    size_t len;
};

static void *greet_once(void *arg)
{
    struct greeter *g = arg;
    int c = accept(g->lfd, NULL, NULL);
    if (c >= 0) {
        if (write(c, g->bytes, g->len) < 0) {
            /* the test will notice */
        }
        char buf[16];
        while (read(c, buf, sizeof(buf)) > 0)
            ;
        close(c);
    }
    return NULL;
}

static orch_witness run_with(const uint8_t *bytes, size_t len, char *msg, size_t msglen)
{
    uint16_t port;
    struct greeter g = {.bytes = bytes, .len = len};
    g.lfd = listen_any(&port);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, greet_once, &g), 0);
    orch_witness w = orch_witness_check("127.0.0.1", port, 1000, NULL, msg, msglen);
    shutdown(g.lfd, SHUT_RDWR);
    pthread_join(t, NULL);
    close(g.lfd);
    return w;
}

static void test_greeting_variants(void **state)
{
    (void)state;
    static const uint8_t handshake[] = {0x5b, 0, 0, 0, 10, '1', '0', '.', '1', '1', 0};
    static const uint8_t error_pkt[] = {0x17, 0, 0, 0, 0xff, 0x10, 0x04, 'T', 'o', 'o'};
    static const uint8_t junk[] = {'H', 'T', 'T', 'P', '/', '1'};
    static const uint8_t short_pkt[] = {0x5b, 0};
    static const struct {
        const uint8_t *bytes;
        size_t len;
        orch_witness want;
        const char *msg_part;
    } cases[] = {
        {handshake, sizeof(handshake), ORCH_WITNESS_GREETING, ""},
        {error_pkt, sizeof(error_pkt), ORCH_WITNESS_GREETING, ""},
        {junk, sizeof(junk), ORCH_WITNESS_ERROR, "unexpected greeting"},
        {short_pkt, sizeof(short_pkt), ORCH_WITNESS_TIMEOUT, "no server greeting"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char msg[128];
        orch_witness w = run_with(cases[i].bytes, cases[i].len, msg, sizeof(msg));
        if (w != cases[i].want || strstr(msg, cases[i].msg_part) == NULL)
            fail_msg("case %zu: got %s (%s)", i, orch_witness_name(w), msg);
    }
}

static void test_no_greeting_times_out(void **state)
{
    (void)state;
    uint16_t port;
    int lfd = listen_any(&port); /* the kernel accepts; nobody ever speaks */
    char msg[128];
    int elapsed = 0;
    orch_witness w = orch_witness_check("127.0.0.1", port, 200, &elapsed, msg, sizeof(msg));
    close(lfd);
    assert_int_equal(w, ORCH_WITNESS_TIMEOUT);
    assert_non_null(strstr(msg, "no server greeting"));
    assert_true(elapsed >= 190 && elapsed < 1000);
}

static void test_refused_and_bad_names(void **state)
{
    (void)state;
    uint16_t port;
    int lfd = listen_any(&port);
    close(lfd); /* nothing listens on port now */
    char msg[128];
    assert_int_equal(orch_witness_check("127.0.0.1", port, 500, NULL, msg, sizeof(msg)),
                     ORCH_WITNESS_REFUSED);
    assert_int_equal(orch_witness_check("no-such-host.invalid", 3306, 500, NULL, msg, sizeof(msg)),
                     ORCH_WITNESS_ERROR);
    assert_non_null(strstr(msg, "cannot resolve"));
    assert_string_equal(orch_witness_name(ORCH_WITNESS_TIMEOUT), "timeout");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_greeting_variants),
        cmocka_unit_test(test_no_greeting_times_out),
        cmocka_unit_test(test_refused_and_bad_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

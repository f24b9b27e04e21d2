/*
 * student_client.c: a C client for the course protocol ("V1"), written the
 * way a student writes it for the course's networking assignment.
 *
 * This is NOT any student's or the course's code. It was written for
 * larder's interoperability tests from the course protocol reference (see
 * README.md in this folder): POSIX sockets, its own SHA-256, a salt given
 * on the command line, and two switches that reproduce what real student
 * clients do:
 *
 *   --fixed-buffer  send the path in a fixed 128-byte buffer after a length
 *                   that counts only the path, a registration's empty path
 *                   included (the reference server ignores the extra bytes,
 *                   so this bug goes unnoticed);
 *   --split         send the header and the body in two writes with a pause
 *                   between them (the reference server rejects this).
 *
 * Usage:
 *   student_client HOST PORT USER PASSWORD SALT [PATH] [--fixed-buffer] [--split]
 *   student_client --selftest
 *
 * Without PATH the user is registered. On status 1 the payload is written
 * to standard output; on any other status "status N: MESSAGE" goes to
 * standard error. Exit codes, as the course_client.py re-creation:
 *   0 status 1 (OK); 1 usage error; 2 network error; 3 the reply failed a
 *   check; 4 no reply at all; 10+N the server replied with status N.
 *
 * Build: cc -std=c11 -Wall -Wextra -Werror -O2 -o student_client student_client.c
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <netdb.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#define MSG_MAX 1024
#define REQUEST_HEADER 52
#define BLOCK_HEADER 80
#define MAX_PAYLOAD (MSG_MAX - BLOCK_HEADER) /* 944 */
#define PATH_BUFFER 128                      /* the --fixed-buffer size */
#define MAX_REPLY (256u << 20)               /* refuse to buffer more */
#define TIMEOUT_SECONDS 30

enum { EXIT_OK = 0, EXIT_USAGE = 1, EXIT_NETWORK = 2, EXIT_INTEGRITY = 3, EXIT_NO_REPLY = 4 };

/* ---- SHA-256 (FIPS 180-4) ---- */

typedef struct {
    uint32_t h[8];
    uint64_t len; /* bytes hashed so far */
    uint8_t buf[64];
    size_t n; /* bytes in buf */
} sha256_ctx;

static const uint32_t K[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

#define ROTR(x, n) (((x) >> (n)) | ((x) << (32 - (n))))

static void sha256_block(sha256_ctx *c, const uint8_t *p) {
    uint32_t w[64], a, b, d, e, f, g, h, cc, t1, t2;
    for (int i = 0; i < 16; i++)
        w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 | (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
    for (int i = 16; i < 64; i++) {
        uint32_t s0 = ROTR(w[i - 15], 7) ^ ROTR(w[i - 15], 18) ^ (w[i - 15] >> 3);
        uint32_t s1 = ROTR(w[i - 2], 17) ^ ROTR(w[i - 2], 19) ^ (w[i - 2] >> 10);
        w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    a = c->h[0], b = c->h[1], cc = c->h[2], d = c->h[3];
    e = c->h[4], f = c->h[5], g = c->h[6], h = c->h[7];
    for (int i = 0; i < 64; i++) {
        t1 = h + (ROTR(e, 6) ^ ROTR(e, 11) ^ ROTR(e, 25)) + ((e & f) ^ (~e & g)) + K[i] + w[i];
        t2 = (ROTR(a, 2) ^ ROTR(a, 13) ^ ROTR(a, 22)) + ((a & b) ^ (a & cc) ^ (b & cc));
        h = g, g = f, f = e, e = d + t1, d = cc, cc = b, b = a, a = t1 + t2;
    }
    c->h[0] += a, c->h[1] += b, c->h[2] += cc, c->h[3] += d;
    c->h[4] += e, c->h[5] += f, c->h[6] += g, c->h[7] += h;
}

static void sha256_init(sha256_ctx *c) {
    static const uint32_t iv[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                   0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
    memcpy(c->h, iv, sizeof iv);
    c->len = 0;
    c->n = 0;
}

static void sha256_update(sha256_ctx *c, const void *data, size_t len) {
    const uint8_t *p = data;
    c->len += len;
    while (len > 0) {
        size_t k = 64 - c->n < len ? 64 - c->n : len;
        memcpy(c->buf + c->n, p, k);
        c->n += k, p += k, len -= k;
        if (c->n == 64) {
            sha256_block(c, c->buf);
            c->n = 0;
        }
    }
}

static void sha256_final(sha256_ctx *c, uint8_t out[32]) {
    uint64_t bits = c->len * 8;
    uint8_t pad[72] = {0x80};
    size_t padlen = (c->n < 56 ? 56 : 120) - c->n;
    for (int i = 0; i < 8; i++)
        pad[padlen + i] = (uint8_t)(bits >> (56 - 8 * i));
    sha256_update(c, pad, padlen + 8);
    for (int i = 0; i < 8; i++) {
        out[4 * i] = (uint8_t)(c->h[i] >> 24);
        out[4 * i + 1] = (uint8_t)(c->h[i] >> 16);
        out[4 * i + 2] = (uint8_t)(c->h[i] >> 8);
        out[4 * i + 3] = (uint8_t)c->h[i];
    }
}

static void sha256(const void *data, size_t len, uint8_t out[32]) {
    sha256_ctx c;
    sha256_init(&c);
    sha256_update(&c, data, len);
    sha256_final(&c, out);
}

static void hex(const uint8_t d[32], char out[65]) {
    for (int i = 0; i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", d[i]);
}

/* selftest checks the SHA-256 against the FIPS 180-2 vectors and against
 * digests computed with Python's hashlib around the padding edges (55, 56,
 * 63, 64 and 65 bytes), with the input fed whole and in 3-byte pieces. */
static int selftest(void) {
    static const struct {
        const char *in, *want;
    } v[] = {
        {"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
        {"abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
        {"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
         "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"},
        {"abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu",
         "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1"},
        {"0123456789012345678901234567890123456789012345678901234",
         "f34d5a0f80c0cbf84c8c0b90218c22637abd199965249da736a20143c8c9c9d9"},
        {"01234567890123456789012345678901234567890123456789012345",
         "83aa034bda83e458a0dc9cbce0d4e354716aa0ff770ed37ac0ed2b292052e4af"},
        {"012345678901234567890123456789012345678901234567890123456789012",
         "074f6e9ac301d5d1b6df6f1dfb8c6f89c187ea945d352ce6a29279a9c630680b"},
        {"0123456789012345678901234567890123456789012345678901234567890123",
         "9674d9e078535b7cec43284387a6ee39956188e735a85452b0050b55341cda56"},
        {"01234567890123456789012345678901234567890123456789012345678901234",
         "52774b57c10e45040a61c14d35c1c8ebefe880082313aa0a21ebb077734cd067"},
        /* The signature of the password "password" with the course salt. */
        {"password0123456789012345678901234567890123456789012345678901234567890123",
         "bf08ba3b6c18117f4474450615f6109937e7dcef7e7549473d58c3243d51a136"},
    };
    int failed = 0;
    char got[65], got2[65];
    uint8_t d[32];
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        size_t len = strlen(v[i].in);
        sha256(v[i].in, len, d);
        hex(d, got);
        sha256_ctx c;
        sha256_init(&c);
        for (size_t j = 0; j < len; j += 3)
            sha256_update(&c, v[i].in + j, len - j < 3 ? len - j : 3);
        sha256_final(&c, d);
        hex(d, got2);
        if (strcmp(got, v[i].want) != 0 || strcmp(got2, v[i].want) != 0) {
            fprintf(stderr, "selftest: %zu-byte vector %zu: got %s (whole), %s (pieces), want %s\n",
                    len, i, got, got2, v[i].want);
            failed = 1;
        }
    }
    /* One million 'a' (FIPS 180-2, appendix B.3), in pieces of 1000. */
    char a[1000];
    memset(a, 'a', sizeof a);
    sha256_ctx c;
    sha256_init(&c);
    for (int i = 0; i < 1000; i++)
        sha256_update(&c, a, sizeof a);
    sha256_final(&c, d);
    hex(d, got);
    if (strcmp(got, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0") != 0) {
        fprintf(stderr, "selftest: a million 'a': got %s\n", got);
        failed = 1;
    }
    if (!failed)
        printf("selftest: ok\n");
    return failed ? EXIT_INTEGRITY : EXIT_OK;
}

/* ---- the protocol ---- */

static uint32_t get32(const uint8_t *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void put32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)(v >> 24), p[1] = (uint8_t)(v >> 16), p[2] = (uint8_t)(v >> 8), p[3] = (uint8_t)v;
}

static int send_all(int fd, const uint8_t *p, size_t n) {
    while (n > 0) {
        ssize_t k = send(fd, p, n, MSG_NOSIGNAL);
        if (k < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += k, n -= (size_t)k;
    }
    return 0;
}

static int dial(const char *host, const char *port) {
    struct addrinfo hints = {0}, *res, *ai;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    int rc = getaddrinfo(host, port, &hints, &res);
    if (rc != 0) {
        fprintf(stderr, "student_client: %s:%s: %s\n", host, port, gai_strerror(rc));
        return -1;
    }
    int fd = -1;
    for (ai = res; ai != NULL; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
        if (fd < 0)
            continue;
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
            break;
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0) {
        fprintf(stderr, "student_client: cannot connect to %s:%s: %s\n", host, port, strerror(errno));
        return -1;
    }
    struct timeval tv = {TIMEOUT_SECONDS, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    return fd;
}

/* read_all reads until the server closes. */
static uint8_t *read_all(int fd, size_t *len) {
    size_t cap = 64 * 1024, n = 0;
    uint8_t *buf = malloc(cap);
    if (buf == NULL)
        return NULL;
    for (;;) {
        if (n == cap) {
            if (cap >= MAX_REPLY) {
                fprintf(stderr, "student_client: reply larger than %u bytes\n", MAX_REPLY);
                free(buf);
                return NULL;
            }
            uint8_t *b = realloc(buf, cap * 2);
            if (b == NULL) {
                free(buf);
                return NULL;
            }
            buf = b, cap *= 2;
        }
        ssize_t k = recv(fd, buf + n, cap - n, 0);
        if (k < 0) {
            if (errno == EINTR)
                continue;
            fprintf(stderr, "student_client: network error: %s\n", strerror(errno));
            free(buf);
            return NULL;
        }
        if (k == 0) {
            *len = n;
            return buf;
        }
        n += (size_t)k;
    }
}

static int bad_reply(const char *what, long block) {
    if (block >= 0)
        fprintf(stderr, "student_client: bad reply: block %ld: %s\n", block, what);
    else
        fprintf(stderr, "student_client: bad reply: %s\n", what);
    return EXIT_INTEGRITY;
}

/* handle_reply reassembles the first reply in data[0:n], checks it, and
 * prints it. Blocks may come in any order. */
static int handle_reply(const uint8_t *data, size_t n) {
    if (n == 0) {
        fprintf(stderr, "student_client: the server closed the connection without a reply\n");
        return EXIT_NO_REPLY;
    }
    size_t pos = 0, got = 0, size = 0;
    uint32_t status = 0, count = 0, blocks = 0;
    const uint8_t *total = NULL;
    uint8_t *payload = NULL, *seen = NULL;
    int rc = EXIT_OK;
    uint8_t d[32];

    while (total == NULL || got < blocks) {
        if (n - pos < BLOCK_HEADER) {
            rc = bad_reply(total == NULL ? "cut short in the first block header" : "reply ended before its last block", -1);
            goto out;
        }
        const uint8_t *h = data + pos;
        uint32_t len = get32(h), st = get32(h + 4), idx = get32(h + 8), cnt = get32(h + 12);
        pos += BLOCK_HEADER;
        if (len > MAX_PAYLOAD || n - pos < len) {
            rc = bad_reply("bad or cut-short length", (long)idx);
            goto out;
        }
        const uint8_t *p = data + pos;
        pos += len;
        if (total == NULL) {
            status = st, count = cnt, total = h + 48;
            blocks = cnt == 0 ? 1 : cnt; /* a count of 0 with one empty block is empty */
            /* Every block takes at least 80 bytes: a count the data cannot
             * hold is a lie, and must not size an allocation. */
            if (blocks > n / BLOCK_HEADER) {
                rc = bad_reply("block count larger than the reply", -1);
                goto out;
            }
            payload = malloc((size_t)blocks * MAX_PAYLOAD);
            seen = calloc(blocks, 1);
            if (payload == NULL || seen == NULL) {
                fprintf(stderr, "student_client: out of memory\n");
                rc = EXIT_NETWORK;
                goto out;
            }
        }
        if (st != status || cnt != count || memcmp(h + 48, total, 32) != 0) {
            rc = bad_reply("disagrees with the first block", (long)idx);
            goto out;
        }
        if (idx >= blocks || seen[idx]) {
            rc = bad_reply("index out of range or repeated", (long)idx);
            goto out;
        }
        if (idx + 1 < blocks && len != MAX_PAYLOAD) {
            rc = bad_reply("short block before the last", (long)idx);
            goto out;
        }
        sha256(p, len, d);
        if (memcmp(d, h + 16, 32) != 0) {
            rc = bad_reply("hash mismatch", (long)idx);
            goto out;
        }
        seen[idx] = 1;
        got++;
        memcpy(payload + (size_t)idx * MAX_PAYLOAD, p, len);
        if (idx + 1 == blocks)
            size = (size_t)idx * MAX_PAYLOAD + len;
    }
    sha256(payload, size, d);
    if (memcmp(d, total, 32) != 0) {
        rc = bad_reply("total hash mismatch", -1);
        goto out;
    }
    if (pos < n)
        fprintf(stderr, "student_client: ignoring %zu bytes after the reply\n", n - pos);
    if (status != 1) {
        fprintf(stderr, "status %u: %.*s\n", status, (int)size, (const char *)payload);
        rc = status < 246 ? 10 + (int)status : 255;
        goto out;
    }
    if (size > 0 && fwrite(payload, 1, size, stdout) != size) {
        fprintf(stderr, "student_client: writing the payload: %s\n", strerror(errno));
        rc = EXIT_NETWORK;
    }
    if (fflush(stdout) != 0)
        rc = EXIT_NETWORK;
out:
    free(payload);
    free(seen);
    return rc;
}

static int usage(void) {
    fprintf(stderr, "usage: student_client HOST PORT USER PASSWORD SALT [PATH] [--fixed-buffer] [--split]\n"
                    "       student_client --selftest\n");
    return EXIT_USAGE;
}

int main(int argc, char **argv) {
    const char *pos[6];
    int npos = 0, fixed = 0, split = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--selftest") == 0 && argc == 2)
            return selftest();
        else if (strcmp(argv[i], "--fixed-buffer") == 0)
            fixed = 1;
        else if (strcmp(argv[i], "--split") == 0)
            split = 1;
        else if (npos < 6)
            pos[npos++] = argv[i];
        else
            return usage();
    }
    if (npos < 5)
        return usage();
    const char *host = pos[0], *port = pos[1], *user = pos[2], *password = pos[3], *salt = pos[4];
    const char *path = npos == 6 ? pos[5] : NULL;
    size_t pathlen = path ? strlen(path) : 0;
    if (path != NULL && pathlen == 0) {
        fprintf(stderr, "student_client: empty PATH (omit it to register)\n");
        return EXIT_USAGE;
    }
    if (pathlen > (fixed ? PATH_BUFFER : (size_t)(MSG_MAX - REQUEST_HEADER))) {
        fprintf(stderr, "student_client: path too long\n");
        return EXIT_USAGE;
    }

    /* The request: username (NUL-padded, cut to 16), signature, length, body. */
    uint8_t req[MSG_MAX] = {0};
    strncpy((char *)req, user, 16);
    sha256_ctx c;
    sha256_init(&c);
    sha256_update(&c, password, strlen(password));
    sha256_update(&c, salt, strlen(salt));
    sha256_final(&c, req + 16);
    put32(req + 48, (uint32_t)pathlen);
    memcpy(req + REQUEST_HEADER, path ? path : "", pathlen);
    size_t bodylen = fixed ? PATH_BUFFER : pathlen; /* the student bug, registration included */

    int fd = dial(host, port);
    if (fd < 0)
        return EXIT_NETWORK;
    int ok;
    if (split && bodylen > 0) {
        ok = send_all(fd, req, REQUEST_HEADER) == 0;
        struct timespec pause = {0, 200 * 1000 * 1000};
        nanosleep(&pause, NULL);
        ok = ok && send_all(fd, req + REQUEST_HEADER, bodylen) == 0;
    } else {
        ok = send_all(fd, req, REQUEST_HEADER + bodylen) == 0;
    }
    if (!ok) {
        fprintf(stderr, "student_client: sending the request: %s\n", strerror(errno));
        close(fd);
        return EXIT_NETWORK;
    }
    size_t n = 0;
    uint8_t *data = read_all(fd, &n);
    close(fd);
    if (data == NULL)
        return EXIT_NETWORK;
    int rc = handle_reply(data, n);
    free(data);
    return rc;
}

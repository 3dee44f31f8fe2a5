/* One load-client process of the fan-out benchmark, compiled: many SSE readers on epoll.
 *
 * The same command line, the same stdin/stdout protocol and the same checks as loadclient.py
 * (read its docstring): run.py builds this file once with `cc -O2` and uses it when a
 * compiler is there (`--client c`, the default), or the Python client (`--client python`).
 * It exists because at 100,000 readers the Python clients used about a third of the two
 * cores the servers are measured on; this one reads each socket with one read() and scans
 * it with memmem/memchr, and sleeps in epoll_wait while nothing happens.
 *
 * Per reader: the status line of its response, then for each frame (up to "\n\n") the marker
 * `zq<seq>x<time_ns>qz` and the frame's `id:` line. A frame cut by a read is kept until the
 * marker is in; the latency is taken at the read that brought the marker.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

#define MAX_HEADER_BYTES 16384
#define MAX_FRAME_BYTES (1 << 20)
#define CONNECT_CONCURRENCY 256 /* handshakes in flight: far below the listen backlog */
#define CONNECT_ATTEMPTS 30
#define CONNECT_TIMEOUT 10.0
#define HEADERS_TIMEOUT 30.0
#define RECONNECT_DELAY 1.0
#define ID_MAX 63
#define READ_BYTES (256 * 1024)

enum state { IDLE, WAITING, CONNECTING, HEADERS, STREAMING };

typedef struct {
    int fd;
    uint8_t state;
    uint8_t attempt;
    uint8_t in_frame;   /* the current frame's marker is counted: skip to its end */
    uint8_t initial;    /* this chain of attempts is the first connect ("go") */
    uint8_t resuming;   /* the reader has had a stream: reconnect where --reconnect-to says */
    uint8_t id_len;
    char last_id[ID_MAX + 1];
    double due;         /* WAITING: when to try; CONNECTING/HEADERS: the deadline */
    char *carry;
    uint32_t carry_len;
    uint8_t *seen;
} reader_t;

static reader_t *readers;
static int count, updates, epfd;
static struct sockaddr_in target, *targets;
static int n_targets;
static struct in_addr *sources;
static int n_sources;
static double spread = -1;
static char request[1024];
static int request_len;
static int measuring, closing, in_gate, timed_states;
static int *gate_queue, gate_head, gate_tail; /* FIFO ring of readers waiting for the gate */
static long open_now, total, duplicates, errors, bad_status, lost, reconnects, failed, resumed;
static long id_mismatch, out_of_range, settled_initial;
static long statuses[1000];
static int64_t last_delivery_ns;
static char (*ids)[ID_MAX + 1];
static uint8_t *id_lens;
static int32_t *latencies;
static size_t n_latencies, cap_latencies;
static double go_at;
static int go_reported = 1;
static char buf[READ_BYTES + MAX_FRAME_BYTES];

static double now_mono(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

static int64_t now_wall_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

static void say(const char *json) {
    fputs(json, stdout);
    fputc('\n', stdout);
    fflush(stdout);
}

static void set_state(reader_t *r, int state) {
    int was_timed = r->state == WAITING || r->state == CONNECTING || r->state == HEADERS;
    int is_timed = state == WAITING || state == CONNECTING || state == HEADERS;
    timed_states += is_timed - was_timed;
    r->state = (uint8_t)state;
}

static void gate_push(int index) {
    gate_queue[gate_tail] = index;
    gate_tail = (gate_tail + 1) % (count + 1);
}

static void start_attempt(int index);

static void gate_release(void) {
    in_gate--;
    while (in_gate < CONNECT_CONCURRENCY && gate_head != gate_tail) {
        int index = gate_queue[gate_head];
        gate_head = (gate_head + 1) % (count + 1);
        start_attempt(index);
    }
}

static void gate_enter(int index) {
    if (in_gate < CONNECT_CONCURRENCY)
        start_attempt(index);
    else
        gate_push(index);
}

static void chain_settled(reader_t *r) {
    if (r->initial) {
        r->initial = 0;
        settled_initial++;
    }
}

static void close_fd(reader_t *r) {
    if (r->fd >= 0) {
        close(r->fd); /* leaves the epoll set with it */
        r->fd = -1;
    }
    free(r->carry);
    r->carry = NULL;
    r->carry_len = 0;
    r->in_frame = 0;
}

/* An attempt that ended before its response headers: try again, with a back-off outside
 * the gate, or give up after CONNECT_ATTEMPTS. */
static void attempt_failed(reader_t *r) {
    close_fd(r);
    gate_release();
    r->attempt++;
    if (r->attempt >= CONNECT_ATTEMPTS) {
        failed++;
        set_state(r, IDLE);
        chain_settled(r);
        return;
    }
    double delay = 0.2 * r->attempt;
    r->due = now_mono() + (delay < 5.0 ? delay : 5.0);
    set_state(r, WAITING);
}

static void start_attempt(int index) {
    reader_t *r = &readers[index];
    in_gate++;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (fd < 0) {
        r->fd = -1;
        attempt_failed(r);
        return;
    }
    int one = 1;
    setsockopt(fd, SOL_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
    struct sockaddr_in source = {.sin_family = AF_INET, .sin_addr = sources[index % n_sources]};
    struct sockaddr_in *to = (r->resuming && n_targets) ? &targets[index % n_targets] : &target;
    r->fd = fd;
    if (bind(fd, (struct sockaddr *)&source, sizeof source) < 0 ||
        (connect(fd, (struct sockaddr *)to, sizeof *to) < 0 && errno != EINPROGRESS)) {
        attempt_failed(r);
        return;
    }
    struct epoll_event ev = {.events = EPOLLOUT, .data.u32 = (uint32_t)index};
    epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev);
    r->due = now_mono() + CONNECT_TIMEOUT;
    set_state(r, CONNECTING);
}

static void open_reader(int index, int initial) {
    reader_t *r = &readers[index];
    r->attempt = 0;
    r->initial = (uint8_t)initial;
    gate_enter(index);
}

/* A stream that had its headers has ended: come back, as a browser does. */
static void stream_ended(reader_t *r) {
    close_fd(r);
    open_now--;
    set_state(r, IDLE);
    if (closing)
        return;
    if (measuring) {
        lost++;
        resumed++;
    } else {
        reconnects++;
    }
    r->resuming = 1;
    r->attempt = 0;
    double delay = spread < 0 ? RECONNECT_DELAY : spread * (rand() / (RAND_MAX + 1.0));
    r->due = now_mono() + delay;
    r->attempt = 0;
    set_state(r, WAITING);
    r->initial = 0;
    r->due = -r->due; /* negative: a reopen (enters the gate), not a back-off retry */
}

static void connected(int index) {
    reader_t *r = &readers[index];
    int err = 0;
    socklen_t len = sizeof err;
    if (getsockopt(r->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0 || err) {
        attempt_failed(r);
        return;
    }
    int n = request_len;
    const char *req = request;
    char resume[1200];
    if (r->id_len) { /* resume, as a browser's EventSource does */
        n = snprintf(resume, sizeof resume, "%.*sLast-Event-ID: %.*s\r\n\r\n", request_len - 2, request,
                     r->id_len, r->last_id);
        req = resume;
    }
    if (write(r->fd, req, (size_t)n) != n) {
        attempt_failed(r);
        return;
    }
    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)index};
    epoll_ctl(epfd, EPOLL_CTL_MOD, r->fd, &ev);
    r->due = now_mono() + HEADERS_TIMEOUT;
    set_state(r, HEADERS);
}

static void delivered(reader_t *r, long seq, int64_t sent_ns, const char *id, size_t id_len, int64_t now) {
    if (seq < 0 || seq >= updates) {
        out_of_range++;
        return;
    }
    if (r->seen[seq]) {
        duplicates++;
        if (r->seen[seq] < 255)
            r->seen[seq]++;
        return;
    }
    r->seen[seq] = 1;
    if (id) {
        if (id_len > ID_MAX)
            id_len = ID_MAX;
        memcpy(r->last_id, id, id_len);
        r->id_len = (uint8_t)id_len;
        if (!id_lens[seq]) {
            memcpy(ids[seq], id, id_len);
            id_lens[seq] = (uint8_t)id_len;
        } else if (id_lens[seq] != id_len || memcmp(ids[seq], id, id_len)) {
            id_mismatch++; /* the same update under two ids: one of them is a duplicate */
        }
    }
    total++;
    last_delivery_ns = now;
    if (seq) {
        if (n_latencies == cap_latencies) {
            cap_latencies = cap_latencies ? cap_latencies * 2 : 65536;
            latencies = realloc(latencies, cap_latencies * sizeof *latencies);
        }
        latencies[n_latencies++] = (int32_t)((now - sent_ns) / 1000);
    }
}

/* The marker in [s, e): 1 if counted, 0 if absent or cut, -1 if malformed. */
static int count_marker(reader_t *r, const char *s, const char *e, int64_t now) {
    const char *mark = memmem(s, (size_t)(e - s), "zq", 2);
    if (!mark)
        return 0;
    const char *mark_end = memmem(mark + 2, (size_t)(e - mark - 2), "qz", 2);
    if (!mark_end)
        return e - mark > 64 ? -1 : 0;
    long seq = 0;
    int64_t sent = 0;
    const char *p = mark + 2;
    if (p == mark_end || *p < '0' || *p > '9')
        return -1;
    while (p < mark_end && *p >= '0' && *p <= '9')
        seq = seq * 10 + (*p++ - '0');
    if (p >= mark_end || *p++ != 'x' || p == mark_end)
        return -1;
    while (p < mark_end && *p >= '0' && *p <= '9')
        sent = sent * 10 + (*p++ - '0');
    if (p != mark_end)
        return -1;
    const char *id = memmem(s, (size_t)(mark - s), "id: ", 4);
    const char *id_end = id ? memchr(id + 4, '\n', (size_t)(mark - id - 4)) : NULL;
    if (id_end)
        delivered(r, seq, sent, id + 4, (size_t)(id_end - id - 4), now);
    else
        delivered(r, seq, sent, NULL, 0, now);
    return 1;
}

static void keep(reader_t *r, const char *from, size_t n) {
    if (n > MAX_FRAME_BYTES) {
        errors++;
        n = 0;
    }
    char *copy = n ? malloc(n) : NULL;
    if (n)
        memcpy(copy, from, n);
    free(r->carry);
    r->carry = copy;
    r->carry_len = (uint32_t)n;
}

/* Returns 0 to go on reading, -1 if the reader was closed. */
static int scan(int index, char *data, size_t len, int64_t now) {
    reader_t *r = &readers[index];
    const char *pos = data, *end = data + len;
    if (r->state == HEADERS) {
        const char *head_end = memmem(data, len, "\r\n\r\n", 4);
        if (!head_end) {
            if (len > MAX_HEADER_BYTES) {
                errors++;
                attempt_failed(r);
                return -1;
            }
            keep(r, data, len);
            return 0;
        }
        if (len < 12 || (memcmp(data, "HTTP/1.1 200", 12) && memcmp(data, "HTTP/1.0 200", 12))) {
            bad_status++;
            int code = len >= 12 ? atoi(data + 9) : 0;
            statuses[code > 0 && code < 1000 ? code : 0]++;
            close_fd(r);
            gate_release();
            set_state(r, IDLE);
            chain_settled(r); /* another status: this reader gives up, as loadclient.py does */
            return -1;
        }
        set_state(r, STREAMING);
        r->resuming = 1;
        open_now++;
        gate_release();
        chain_settled(r);
        pos = head_end + 4;
    }
    if (r->in_frame) {
        const char *frame_end = memmem(pos, (size_t)(end - pos), "\n\n", 2);
        if (!frame_end) {
            keep(r, end[-1] == '\n' ? end - 1 : end, end[-1] == '\n' ? 1 : 0);
            return 0;
        }
        r->in_frame = 0;
        pos = frame_end + 2;
    }
    while (pos < end) {
        const char *frame_end = memmem(pos, (size_t)(end - pos), "\n\n", 2);
        const char *stop = frame_end ? frame_end : end;
        int counted = count_marker(r, pos, stop, now);
        if (counted < 0)
            errors++;
        if (!frame_end) {
            if (counted) { /* counted: skip the rest of this frame when it comes */
                r->in_frame = 1;
                keep(r, end[-1] == '\n' ? end - 1 : end, end[-1] == '\n' ? 1 : 0);
            } else {
                keep(r, pos, (size_t)(end - pos)); /* wait for the marker */
            }
            return 0;
        }
        pos = frame_end + 2;
    }
    keep(r, NULL, 0);
    return 0;
}

static void readable(int index, int64_t now) {
    reader_t *r = &readers[index];
    size_t have = r->carry_len;
    if (have)
        memcpy(buf, r->carry, have);
    ssize_t n = read(r->fd, buf + have, READ_BYTES);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n <= 0) {
        if (r->state == HEADERS)
            attempt_failed(r);
        else
            stream_ended(r);
        return;
    }
    scan(index, buf, have + (size_t)n, now);
}

static void check_timers(void) {
    double t = now_mono();
    for (int i = 0; i < count && timed_states; i++) {
        reader_t *r = &readers[i];
        if (r->state == WAITING) {
            if (r->due < 0 && -r->due <= t) { /* a reopen after a stream ended */
                set_state(r, IDLE);
                open_reader(i, 0);
            } else if (r->due >= 0 && r->due <= t) { /* a back-off retry, outside the gate */
                set_state(r, IDLE);
                gate_enter(i);
            }
        } else if ((r->state == CONNECTING || r->state == HEADERS) && r->due <= t) {
            attempt_failed(r);
        }
    }
}

static void report(const char *path) {
    FILE *f = fopen(path, "wb");
    if (f) {
        fwrite(latencies, sizeof *latencies, n_latencies, f);
        fclose(f);
    }
    long missing = 0, warmup_missing = 0;
    for (int i = 0; i < count; i++) {
        for (int s = 1; s < updates; s++)
            missing += !readers[i].seen[s];
        warmup_missing += !readers[i].seen[0];
    }
    struct rusage usage;
    getrusage(RUSAGE_SELF, &usage);
    double cpu = usage.ru_utime.tv_sec + usage.ru_utime.tv_usec / 1e6 + usage.ru_stime.tv_sec +
                 usage.ru_stime.tv_usec / 1e6;
    char status_json[4096] = "{";
    size_t at = 1;
    for (int code = 0; code < 1000; code++)
        if (statuses[code] && at < sizeof status_json - 32)
            at += (size_t)snprintf(status_json + at, sizeof status_json - at, "%s\"%d\": %ld", at > 1 ? ", " : "",
                                   code, statuses[code]);
    snprintf(status_json + at, sizeof status_json - at, "}");
    printf("{\"readers\": %d, \"open\": %ld, \"delivered\": %ld, \"missing\": %ld, \"warmup_missing\": %ld, "
           "\"duplicates\": %ld, \"id_mismatch\": %ld, \"out_of_range\": %ld, \"lost\": %ld, \"failed\": %ld, "
           "\"reconnects\": %ld, \"resumed\": %ld, \"bad_status\": %ld, \"statuses\": %s, \"errors\": %ld, "
           "\"last_delivery_ns\": %lld, \"cpu_seconds\": %.3f, \"cpu_system_seconds\": %.3f, \"max_rss_kb\": %ld, \"uvloop\": false, "
           "\"client\": \"c\"}\n",
           count, open_now, total, missing, warmup_missing, duplicates, id_mismatch, out_of_range, lost, failed,
           reconnects, resumed, bad_status, status_json, errors, (long long)last_delivery_ns, cpu,
           usage.ru_stime.tv_sec + usage.ru_stime.tv_usec / 1e6, usage.ru_maxrss);
    fflush(stdout);
}

static char line[8192];
static size_t line_len;

/* Commands from run.py, one a line. Returns 1 on quit (or end of input). */
static int command(void) {
    ssize_t n = read(0, line + line_len, sizeof line - 1 - line_len);
    if (n <= 0)
        return 1;
    line_len += (size_t)n;
    char *nl;
    while ((nl = memchr(line, '\n', line_len))) {
        *nl = 0;
        char msg[256];
        if (!strcmp(line, "go")) {
            go_at = now_mono();
            go_reported = 0;
            for (int i = 0; i < count; i++)
                open_reader(i, 1);
        } else if (!strcmp(line, "progress")) {
            snprintf(msg, sizeof msg, "{\"open\": %ld, \"delivered\": %ld, \"failed\": %ld}", open_now, total, failed);
            say(msg);
        } else if (!strcmp(line, "measure")) {
            measuring = 1;
        } else if (!strncmp(line, "report ", 7)) {
            report(line + 7);
        } else if (!strcmp(line, "quit")) {
            return 1;
        }
        size_t used = (size_t)(nl - line) + 1;
        memmove(line, nl + 1, line_len - used);
        line_len -= used;
    }
    return 0;
}

static int parse_address(const char *host, int port, struct sockaddr_in *out) {
    memset(out, 0, sizeof *out);
    out->sin_family = AF_INET;
    out->sin_port = htons((uint16_t)port);
    return inet_pton(AF_INET, host, &out->sin_addr) == 1 ? 0 : -1;
}

static void usage_exit(const char *why) {
    fprintf(stderr, "loadclient: %s\nusage: loadclient --host H --port P --path PATH --readers N --updates M "
                    "[--source A,B] [--reconnect-to H:P,...] [--reconnect-spread S]\n", why);
    exit(2);
}

int main(int argc, char **argv) {
    const char *host = "127.0.0.1", *path = NULL, *source = "127.0.0.1", *reconnect_to = "";
    int port = 0;
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *k = argv[i], *v = argv[i + 1];
        if (!strcmp(k, "--host")) host = v;
        else if (!strcmp(k, "--port")) port = atoi(v);
        else if (!strcmp(k, "--path")) path = v;
        else if (!strcmp(k, "--source")) source = v;
        else if (!strcmp(k, "--readers")) count = atoi(v);
        else if (!strcmp(k, "--updates")) updates = atoi(v);
        else if (!strcmp(k, "--reconnect-to")) reconnect_to = v;
        else if (!strcmp(k, "--reconnect-spread")) spread = atof(v);
        else usage_exit(k);
    }
    if (!path || port <= 0 || count <= 0 || updates <= 0 || parse_address(host, port, &target))
        usage_exit("--host (an IPv4 address), --port, --path, --readers and --updates are required");
    request_len = snprintf(request, sizeof request,
                           "GET %s HTTP/1.1\r\nHost: %s:%d\r\nAccept: text/event-stream\r\nCache-Control: no-cache\r\n\r\n",
                           path, host, port);
    for (const char *p = source; p; p = strchr(p, ',') ? strchr(p, ',') + 1 : NULL) n_sources++;
    sources = calloc((size_t)n_sources, sizeof *sources);
    char copy[4096];
    snprintf(copy, sizeof copy, "%s", source);
    n_sources = 0;
    for (char *tok = strtok(copy, ","); tok; tok = strtok(NULL, ","))
        if (inet_pton(AF_INET, tok, &sources[n_sources]) == 1) n_sources++;
    if (!n_sources)
        usage_exit("--source: IPv4 addresses");
    if (*reconnect_to) {
        targets = calloc(64, sizeof *targets);
        snprintf(copy, sizeof copy, "%s", reconnect_to);
        for (char *tok = strtok(copy, ","); tok && n_targets < 64; tok = strtok(NULL, ",")) {
            char *colon = strrchr(tok, ':');
            if (!colon) usage_exit("--reconnect-to: host:port,...");
            *colon = 0;
            if (parse_address(tok, atoi(colon + 1), &targets[n_targets]) == 0) n_targets++;
        }
    }
    struct rlimit files;
    if (getrlimit(RLIMIT_NOFILE, &files) == 0) {
        files.rlim_cur = files.rlim_max;
        setrlimit(RLIMIT_NOFILE, &files);
    }
    srand((unsigned)getpid());
    readers = calloc((size_t)count, sizeof *readers);
    uint8_t *seen = calloc((size_t)count, (size_t)updates);
    gate_queue = calloc((size_t)count + 1, sizeof *gate_queue);
    ids = calloc((size_t)updates, sizeof *ids);
    id_lens = calloc((size_t)updates, 1);
    for (int i = 0; i < count; i++) {
        readers[i].fd = -1;
        readers[i].seen = seen + (size_t)i * updates;
    }
    epfd = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = UINT32_MAX};
    epoll_ctl(epfd, EPOLL_CTL_ADD, 0, &ev);
    char hello[64];
    snprintf(hello, sizeof hello, "{\"hello\": %d}", getpid());
    say(hello);

    struct epoll_event events[512];
    double next_timers = 0;
    for (;;) {
        int timeout = timed_states ? 50 : -1;
        int n = epoll_wait(epfd, events, 512, timeout);
        if (n < 0 && errno != EINTR)
            break;
        int64_t now = now_wall_ns();
        for (int i = 0; i < n; i++) {
            uint32_t index = events[i].data.u32;
            if (index == UINT32_MAX) {
                if (command())
                    goto quit;
                continue;
            }
            reader_t *r = &readers[index];
            if (r->state == CONNECTING)
                connected((int)index);
            else if (r->state == HEADERS || r->state == STREAMING)
                readable((int)index, now);
        }
        if (timed_states) {
            double t = now_mono();
            if (t >= next_timers) {
                check_timers();
                next_timers = t + 0.05;
            }
        }
        if (!go_reported && settled_initial == count) {
            char msg[128];
            snprintf(msg, sizeof msg, "{\"headers\": %ld, \"seconds\": %.3f}", open_now, now_mono() - go_at);
            say(msg);
            go_reported = 1;
        }
    }
quit:
    closing = 1;
    for (int i = 0; i < count; i++)
        if (readers[i].fd >= 0) {
            struct linger abort_now = {1, 0}; /* reset, as transport.abort() does */
            setsockopt(readers[i].fd, SOL_SOCKET, SO_LINGER, &abort_now, sizeof abort_now);
            close(readers[i].fd);
        }
    return 0;
}

/* factory's /init for page-size smoke runs: a freestanding static AArch64 Linux program (no C
 * library, raw system calls), the first process of a guest booted by qemu-system-aarch64.
 *
 * It mounts /proc and /dev, runs the command in /smoke/argv (NUL-separated: the program, then its
 * arguments; stdin /dev/null) with stdout and stderr captured through pipes, prints what happened
 * to the console as lines that kernel messages cannot be mistaken for, and powers off:
 *
 *   @@factory-pages <key> <value> <crc32 of "<key> <value>", 8 hex digits>
 *
 * keys, in order: begin (1), kernel (uname's release), page_size (AT_PAGESZ of this process),
 * status (exited:N or signaled:N), stdout and stderr (base64 of at most 65536 bytes each),
 * stdout_dropped and stderr_dropped (bytes beyond that), run_ns (the command's wall time in
 * nanoseconds), end (1). When it cannot run the command at all: begin, status error:<what>, end.
 * factory/validate/guest.py reads these lines; change both together.
 */

typedef unsigned long size_t;
typedef unsigned int u32;

#define NR_dup3 24
#define NR_mknodat 33
#define NR_mkdirat 34
#define NR_mount 40
#define NR_openat 56
#define NR_close 57
#define NR_pipe2 59
#define NR_read 63
#define NR_write 64
#define NR_ppoll 73
#define NR_exit 93
#define NR_clock_gettime 113
#define NR_reboot 142
#define NR_uname 160
#define NR_clone 220
#define NR_execve 221
#define NR_wait4 260

#define AT_FDCWD (-100)
#define O_RDONLY 0
#define O_RDWR 2
#define O_CLOEXEC 02000000
#define SIGCHLD 17
#define POLLIN 1
#define AT_PAGESZ 6
#define CAP 65536
#define ARGV_MAX 256

static long sys6(long n, long a, long b, long c, long d, long e, long f) {
    register long x8 __asm__("x8") = n;
    register long x0 __asm__("x0") = a;
    register long x1 __asm__("x1") = b;
    register long x2 __asm__("x2") = c;
    register long x3 __asm__("x3") = d;
    register long x4 __asm__("x4") = e;
    register long x5 __asm__("x5") = f;
    __asm__ volatile("svc 0"
                     : "+r"(x0)
                     : "r"(x8), "r"(x1), "r"(x2), "r"(x3), "r"(x4), "r"(x5)
                     : "memory", "cc");
    return x0;
}
#define sys(n, a, b, c) sys6(n, (long)(a), (long)(b), (long)(c), 0, 0, 0)

/* The compiler may call these for struct copies and zeroing. */
void *memset(void *dst, int c, size_t n) {
    unsigned char *d = dst;
    while (n--) *d++ = (unsigned char)c;
    return dst;
}
void *memcpy(void *dst, const void *src, size_t n) {
    unsigned char *d = dst;
    const unsigned char *s = src;
    while (n--) *d++ = *s++;
    return dst;
}

static size_t len(const char *s) {
    size_t n = 0;
    while (s[n]) n++;
    return n;
}

/* --- console output ------------------------------------------------------------------------ */

static char line[4 * CAP / 3 + 256];
static size_t used;

static void put(const char *s, size_t n) {
    while (n && used < sizeof line) { line[used++] = *s++; n--; }
}
static void puts_(const char *s) { put(s, len(s)); }
static void putu(unsigned long v) {
    char tmp[24];
    int i = 0;
    do { tmp[i++] = (char)('0' + v % 10); v /= 10; } while (v);
    while (i) { char c = tmp[--i]; put(&c, 1); }
}
static void put64(const unsigned char *s, size_t n) {
    static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for (size_t i = 0; i < n; i += 3) {
        u32 v = (u32)s[i] << 16 | (i + 1 < n ? (u32)s[i + 1] << 8 : 0) | (i + 2 < n ? s[i + 2] : 0);
        char out[4] = {abc[v >> 18 & 63], abc[v >> 12 & 63], i + 1 < n ? abc[v >> 6 & 63] : '=',
                       i + 2 < n ? abc[v & 63] : '='};
        put(out, 4);
    }
}

static u32 crc32(const char *s, size_t n) {
    u32 c = 0xffffffffu;
    while (n--) {
        c ^= (unsigned char)*s++;
        for (int k = 0; k < 8; k++) c = c >> 1 ^ (0xedb88320u & -(c & 1));
    }
    return ~c;
}

static const char marker[] = "@@factory-pages ";

/* Start a record line: "key " is in the buffer after the marker. */
static void begin_line(const char *key) {
    used = 0;
    puts_(marker);
    puts_(key);
    put(" ", 1);
}

/* End it: the CRC of everything after the marker, a newline, one write to the console. */
static void end_line(void) {
    static const char hex[] = "0123456789abcdef";
    size_t start = sizeof marker - 1;
    u32 c = crc32(line + start, used - start);
    char tail[10] = {' '};
    for (int i = 0; i < 8; i++) tail[1 + i] = hex[c >> (28 - 4 * i) & 15];
    tail[9] = '\n';
    put(tail, 10);
    for (size_t done = 0; done < used;) {
        long n = sys(NR_write, 1, line + done, used - done);
        if (n <= 0) break;
        done += (size_t)n;
    }
}

static void record_u(const char *key, unsigned long v) { begin_line(key); putu(v); end_line(); }
static void record_s(const char *key, const char *s) { begin_line(key); puts_(s); end_line(); }
static void record_b(const char *key, const unsigned char *s, size_t n) {
    begin_line(key);
    put64(s, n);
    end_line();
}

/* --- the run --------------------------------------------------------------------------------- */

static unsigned char out[CAP], err[CAP];
static char argbuf[CAP];
static char *argv_[ARGV_MAX + 1];

struct timespec_ { long sec, nsec; };
struct pollfd_ { int fd; short events, revents; };

static unsigned long now_ns(void) {
    struct timespec_ t;
    sys(NR_clock_gettime, 1 /* CLOCK_MONOTONIC */, &t, 0);
    return (unsigned long)t.sec * 1000000000ul + (unsigned long)t.nsec;
}

static void power_off(void) {
    sys6(NR_reboot, 0xfee1dead, 0x28121969, 0x4321fedc /* POWER_OFF */, 0, 0, 0);
    sys(NR_exit, 0, 0, 0);
}

static void fail(const char *what) {
    record_s("begin", "1");
    record_s("status", what);
    record_s("end", "1");
    power_off();
}

static int read_argv(void) {
    long fd = sys6(NR_openat, AT_FDCWD, (long)"/smoke/argv", O_RDONLY | O_CLOEXEC, 0, 0, 0);
    if (fd < 0) return -1;
    long total = 0, n;
    while ((n = sys(NR_read, fd, argbuf + total, sizeof argbuf - 1 - total)) > 0) total += n;
    sys(NR_close, fd, 0, 0);
    int argc = 0;
    for (long i = 0; i < total && argc < ARGV_MAX; argc++) {
        argv_[argc] = argbuf + i;
        while (i < total && argbuf[i]) i++;
        i++;
    }
    argv_[argc] = 0;
    return argc;
}

static void child(int out_w, int err_w) {
    long null = sys6(NR_openat, AT_FDCWD, (long)"/dev/null", O_RDWR, 0, 0, 0);
    if (null >= 0) sys(NR_dup3, null, 0, 0);
    else sys(NR_close, 0, 0, 0);
    sys(NR_dup3, out_w, 1, 0);
    sys(NR_dup3, err_w, 2, 0);
    static char *envp[] = {"PATH=/smoke:/bin", "HOME=/", 0};
    sys(NR_execve, argv_[0], argv_, envp);
    static const char msg[] = "init: cannot execute the smoke binary (execve failed)\n";
    sys(NR_write, 2, msg, sizeof msg - 1);
    sys(NR_exit, 127, 0, 0);
}

void start(long *sp) {
    long argc = sp[0];
    long *p = sp + 1 + argc + 1; /* past argv and its NULL */
    while (*p) p++;              /* past envp */
    unsigned long page = 0;
    for (p++; p[0]; p += 2)
        if (p[0] == AT_PAGESZ) page = (unsigned long)p[1];

    sys6(NR_mkdirat, AT_FDCWD, (long)"/proc", 0555, 0, 0, 0);
    sys6(NR_mkdirat, AT_FDCWD, (long)"/dev", 0755, 0, 0, 0);
    sys6(NR_mount, (long)"proc", (long)"/proc", (long)"proc", 0, 0, 0);
    sys6(NR_mount, (long)"devtmpfs", (long)"/dev", (long)"devtmpfs", 0, 0, 0);

    if (read_argv() < 1) fail("error:no-argv");
    int o[2], e[2];
    if (sys(NR_pipe2, o, O_CLOEXEC, 0) < 0 || sys(NR_pipe2, e, O_CLOEXEC, 0) < 0)
        fail("error:pipe");
    unsigned long started = now_ns();
    long pid = sys6(NR_clone, SIGCHLD, 0, 0, 0, 0, 0);
    if (pid < 0) fail("error:clone");
    if (pid == 0) child(o[1], e[1]);
    sys(NR_close, o[1], 0, 0);
    sys(NR_close, e[1], 0, 0);

    size_t got[2] = {0, 0};
    unsigned long dropped[2] = {0, 0};
    unsigned char *bufs[2] = {out, err};
    struct pollfd_ fds[2] = {{o[0], POLLIN, 0}, {e[0], POLLIN, 0}};
    int open_ = 2;
    while (open_) {
        if (sys6(NR_ppoll, (long)fds, 2, 0, 0, 8, 0) < 0) continue;
        for (int i = 0; i < 2; i++) {
            if (fds[i].fd < 0 || !fds[i].revents) continue;
            unsigned char scratch[4096];
            long n = sys(NR_read, fds[i].fd, scratch, sizeof scratch);
            if (n <= 0) { sys(NR_close, fds[i].fd, 0, 0); fds[i].fd = -1; open_--; continue; }
            for (long k = 0; k < n; k++) {
                if (got[i] < CAP) bufs[i][got[i]++] = scratch[k];
                else dropped[i]++;
            }
        }
    }
    int status = 0;
    sys6(NR_wait4, pid, (long)&status, 0, 0, 0, 0);
    unsigned long took = now_ns() - started;

    static char uts[6][65];
    if (sys(NR_uname, uts, 0, 0) < 0) uts[2][0] = 0;

    record_s("begin", "1");
    record_s("kernel", uts[2]);
    record_u("page_size", page);
    begin_line("status");
    if ((status & 0x7f) == 0) { puts_("exited:"); putu((unsigned long)(status >> 8 & 0xff)); }
    else { puts_("signaled:"); putu((unsigned long)(status & 0x7f)); }
    end_line();
    record_b("stdout", out, got[0]);
    record_b("stderr", err, got[1]);
    record_u("stdout_dropped", dropped[0]);
    record_u("stderr_dropped", dropped[1]);
    record_u("run_ns", took);
    record_s("end", "1");
    power_off();
}

__asm__(".text\n.global _start\n_start:\n mov x0, sp\n bl start\n b .\n");

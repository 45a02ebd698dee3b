/* The allocator must work from the first instruction a process runs: in an
 * early constructor, as the very first call in a fresh process (including
 * free() and the less common entry points first), from threads, from libc
 * internals that allocate behind the program's back (stdio, locale, NSS,
 * dlopen, regex, qsort, getaddrinfo, iconv...), and in destructors/atexit
 * handlers after main returned.
 *
 * The "first call" cases re-exec /proc/self/exe with a --first=<what> flag;
 * the constructor does nothing in that mode, so the named call really is the
 * program's first allocator call. */
#define _GNU_SOURCE
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <glob.h>
#include <grp.h>
#include <iconv.h>
#include <locale.h>
#include <malloc.h>
#include <netdb.h>
#include <pthread.h>
#include <pwd.h>
#include <regex.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <wchar.h>

#include "../harness.h"

/* ---- constructor (runs before other constructors and main) ---- */
static int ctor_ran, ctor_malloc_ok, ctor_calloc_ok, ctor_realloc_ok, ctor_memalign_ok,
    ctor_strdup_ok;
static char *ctor_block; /* allocated in the constructor, checked and freed in main */
enum { CTOR_BLOCK = 3000 };

static int is_first_mode(int argc, char **argv) {
    return argc > 1 && argv && argv[1] && strncmp(argv[1], "--first=", 8) == 0;
}

__attribute__((constructor(101))) static void early(int argc, char **argv, char **envp) {
    (void)envp;
    if (is_first_mode(argc, argv)) return;
    ctor_ran = 1;

    char *p = malloc(100);
    if (p) {
        memset(p, 0x5c, 100);
        ctor_malloc_ok = p[99] == 0x5c;
    }
    free(p);
    free(NULL);

    int *z = calloc(1000, sizeof *z);
    ctor_calloc_ok = z != NULL;
    for (int i = 0; z && i < 1000; i++)
        if (z[i]) ctor_calloc_ok = 0;

    char *r = realloc(NULL, 10);
    if (r) {
        memcpy(r, "012345678", 10);
        char *r2 = realloc(r, 1 << 20);
        ctor_realloc_ok = r2 && memcmp(r2, "012345678", 10) == 0;
        free(r2 ? r2 : r);
    }
    free(z);

    void *a = NULL;
    ctor_memalign_ok = posix_memalign(&a, 256, 1000) == 0 && ((uintptr_t)a & 255) == 0;
    free(a);

    char *d = strdup("constructor");
    ctor_strdup_ok = d && strcmp(d, "constructor") == 0;
    free(d);

    ctor_block = malloc(CTOR_BLOCK);
    if (ctor_block) memset(ctor_block, 0x3e, CTOR_BLOCK);
}

/* ---- destructor and atexit: allocate and free after main returned ---- */
static char *late_block; /* allocated in main, freed by the atexit handler */

static void late_fail(int code, const char *what) {
    static const char prefix[] = "FAIL api/bootstrap: after main: ";
    write(2, prefix, sizeof prefix - 1);
    write(2, what, strlen(what));
    write(2, "\n", 1);
    _exit(code);
}

static void at_exit_handler(void) {
    for (int i = 0; i < 4096; i++)
        if (late_block[i] != 0x21) late_fail(41, "block from main corrupted in atexit");
    free(late_block);
    char *p = malloc(50000);
    if (!p) late_fail(42, "malloc in atexit");
    memset(p, 1, 50000);
    p = realloc(p, 10);
    if (!p || p[9] != 1) late_fail(43, "realloc in atexit");
    free(p);
}

__attribute__((destructor)) static void late(void) {
    void *v[100];
    for (int i = 0; i < 100; i++) {
        v[i] = malloc((size_t)i * 97);
        if (!v[i]) late_fail(44, "malloc in destructor");
    }
    for (int i = 0; i < 100; i++) free(v[i]);
    char *s = strdup("destructor");
    if (!s) late_fail(45, "strdup in destructor");
    free(s);
}

/* ---- a fresh process whose first allocator call is <what> ---- */
static void *first_thread(void *arg) {
    (void)arg;
    char *p = malloc(123);
    if (!p) return (void *)1;
    memset(p, 7, 123);
    free(p);
    return NULL;
}

static int run_first(const char *what) {
    if (!strcmp(what, "free")) {
        free(NULL);
        free(malloc(1));
        return 0;
    }
    if (!strcmp(what, "usable")) {
        if (malloc_usable_size(NULL) != 0) return 2;
        void *p = malloc(10);
        if (!p || malloc_usable_size(p) < 10) return 3;
        free(p);
        return 0;
    }
    if (!strcmp(what, "realloc")) {
        char *p = realloc(NULL, 64);
        if (!p) return 2;
        p[63] = 1;
        free(p);
        return 0;
    }
    if (!strcmp(what, "calloc")) {
        int *p = calloc(4096, sizeof *p);
        if (!p) return 2;
        for (int i = 0; i < 4096; i++)
            if (p[i]) return 3;
        free(p);
        return 0;
    }
    if (!strcmp(what, "posix_memalign")) {
        void *p = NULL;
        if (posix_memalign(&p, 4096, 10) || ((uintptr_t)p & 4095)) return 2;
        free(p);
        return 0;
    }
    if (!strcmp(what, "large")) {
        char *p = malloc(32 << 20);
        if (!p) return 2;
        p[(32 << 20) - 1] = 1;
        free(p);
        return 0;
    }
    if (!strcmp(what, "mallinfo2")) {
        struct mallinfo2 mi = mallinfo2();
        (void)mi;
        free(malloc(1));
        return 0;
    }
    if (!strcmp(what, "malloc_trim")) {
        int r = malloc_trim(0);
        free(malloc(1));
        return r == 0 || r == 1 ? 0 : 2;
    }
    if (!strcmp(what, "thread")) {
        pthread_t t;
        void *res = (void *)1;
        if (pthread_create(&t, NULL, first_thread, NULL)) return 2;
        if (pthread_join(t, &res) || res) return 3;
        return 0;
    }
    return 99;
}

static int spawn_first(const char *what) {
    char flag[64];
    snprintf(flag, sizeof flag, "--first=%s", what);
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        char *args[] = {"bootstrap", flag, NULL};
        execv("/proc/self/exe", args);
        _exit(127);
    }
    int st = 0;
    if (pid < 0 || waitpid(pid, &st, 0) != pid) return -1;
    if (WIFSIGNALED(st)) {
        fprintf(stderr, "  --first=%s: killed by signal %d\n", what, WTERMSIG(st));
        return -1;
    }
    if (WEXITSTATUS(st))
        fprintf(stderr, "  --first=%s: exit status %d\n", what, WEXITSTATUS(st));
    return WEXITSTATUS(st);
}

/* ---- libc internals that allocate ---- */
static int cmp_int(const void *a, const void *b) {
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

static __thread char tls_buf[256] = "tls-initial";
static void *thread_body(void *arg) {
    int n = (int)(intptr_t)arg;
    if (strcmp(tls_buf, "tls-initial")) return NULL;
    char *s = NULL;
    if (asprintf(&s, "thread %d", n) < 0) return NULL;
    for (int i = 0; i < 1000; i++) free(malloc((size_t)(i % 50) * 40 + 1));
    return s; /* freed by the main thread */
}

static void test_libc(void) {
    char *s = strdup("hello, allocator");
    CHECK("strdup", s && !strcmp(s, "hello, allocator"));
    free(s);
    s = strndup("abcdefgh", 3);
    CHECK("strndup", s && !strcmp(s, "abc"));
    free(s);

    s = NULL;
    int n = asprintf(&s, "%d-%s-%.3f", 42, "x", 1.5);
    CHECK("asprintf", n == 10 && s && !strcmp(s, "42-x-1.500"));
    free(s);
    s = NULL;
    n = asprintf(&s, "%100000d", 7);
    CHECK("asprintf with a 100000-wide field", n == 100000 && s && s[99999] == '7' && s[0] == ' ');
    free(s);

    struct passwd *pw = getpwuid(getuid());
    CHECK("getpwuid(getuid())", pw && pw->pw_name && pw->pw_name[0]);
    struct group *gr = getgrgid(getgid());
    CHECK("getgrgid(getgid())", gr && gr->gr_name && gr->gr_name[0]);

    setenv("LC_ALL", "C.UTF-8", 1);
    setenv("MSPACE_BOOTSTRAP_TEST", "1", 1);
    const char *loc = setlocale(LC_ALL, "");
    CHECK("setlocale(LC_ALL, \"\") with C.UTF-8", loc != NULL);
    wchar_t w[16];
    size_t wn = mbstowcs(w, "h\xc3\xa9llo", 16);
    CHECK("UTF-8 locale decodes multibyte text", loc == NULL || (wn == 5 && w[1] == 0xe9));
    setlocale(LC_ALL, "C");
    unsetenv("MSPACE_BOOTSTRAP_TEST");
    CHECK("setenv/unsetenv", getenv("MSPACE_BOOTSTRAP_TEST") == NULL);

    enum { QN = 1 << 20 };
    int *arr = malloc(QN * sizeof *arr);
    uint32_t x = 12345;
    for (int i = 0; i < QN; i++) {
        x = x * 1664525u + 1013904223u;
        arr[i] = (int)(x >> 1);
    }
    qsort(arr, QN, sizeof *arr, cmp_int);
    int sorted = 1;
    for (int i = 1; i < QN; i++)
        if (arr[i - 1] > arr[i]) sorted = 0;
    CHECK("qsort of 1M ints (libc allocates a merge buffer)", sorted);
    free(arr);

    char path[] = "/tmp/mspace-bootstrap-XXXXXX";
    int fd = mkstemp(path);
    CHECK("mkstemp", fd >= 0);
    if (fd >= 0) {
        close(fd);
        FILE *f = fopen(path, "w");
        int ok = f != NULL;
        for (int i = 0; f && i < 1000; i++)
            if (fprintf(f, "line %d %s\n", i, i % 10 ? "" : "................................"
                                                              "................................") < 0)
                ok = 0;
        if (f && fclose(f)) ok = 0;
        CHECK("fopen/fprintf/fclose", ok);
        f = fopen(path, "r");
        char *line = NULL;
        size_t cap = 0;
        int lines = 0, match = 1;
        ssize_t len;
        while (f && (len = getline(&line, &cap, f)) > 0) {
            char expect[128];
            snprintf(expect, sizeof expect, "line %d %s\n", lines,
                     lines % 10 ? "" : "................................"
                                       "................................");
            if (strcmp(line, expect)) match = 0;
            lines++;
        }
        free(line);
        if (f) fclose(f);
        CHECK("getline reads back what fprintf wrote", lines == 1000 && match);
        unlink(path);
    }

    char *buf = NULL;
    size_t size = 0;
    FILE *ms = open_memstream(&buf, &size);
    for (int i = 0; ms && i < 100000; i++) fprintf(ms, "%09d\n", i);
    if (ms) fclose(ms);
    CHECK("open_memstream grows to 1 MB through realloc",
          size == 1000000 && buf && !memcmp(buf + 999990, "000099999\n", 10));
    free(buf); /* a libc-allocated buffer freed by the program */

    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    int rc = getaddrinfo("localhost", "80", &hints, &res);
    CHECK("getaddrinfo(\"localhost\")", rc == 0 && res != NULL);
    int count = 0;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) count++;
    CHECK("getaddrinfo returns at least one address", count > 0);
    if (res) freeaddrinfo(res);

    void *lib = dlopen("libm.so.6", RTLD_NOW | RTLD_LOCAL);
    CHECK("dlopen(libm.so.6)", lib != NULL);
    if (lib) {
        double (*fn)(double) = (double (*)(double))dlsym(lib, "cos");
        CHECK("dlsym(cos) works", fn && fn(0.0) == 1.0);
        dlclose(lib);
    }
    void *none = dlopen("libdoes-not-exist-mspace.so", RTLD_NOW);
    const char *err = dlerror();
    CHECK("dlopen failure reports an error string", none == NULL && err && err[0]);

    regex_t re;
    rc = regcomp(&re, "^([a-z]+)@([a-z]+)\\.(com|org)$", REG_EXTENDED);
    CHECK("regcomp", rc == 0);
    if (rc == 0) {
        regmatch_t m[4];
        CHECK("regexec matches", regexec(&re, "user@example.org", 4, m, 0) == 0 && m[2].rm_so == 5);
        CHECK("regexec rejects", regexec(&re, "user@@example.org", 4, m, 0) == REG_NOMATCH);
        regfree(&re);
    }

    DIR *dir = opendir("/proc/self/fd");
    int entries = 0;
    while (dir && readdir(dir)) entries++;
    if (dir) closedir(dir);
    CHECK("opendir/readdir", entries >= 3);
    struct dirent **list = NULL;
    int nl = scandir("/", &list, NULL, alphasort);
    CHECK("scandir(\"/\") returns sorted entries", nl > 2 && !strcmp(list[0]->d_name, "."));
    for (int i = 0; i < nl; i++) free(list[i]);
    free(list);

    glob_t g;
    rc = glob("/proc/self/*", 0, NULL, &g);
    CHECK("glob", rc == 0 && g.gl_pathc > 5);
    if (rc == 0) globfree(&g);

    iconv_t cd = iconv_open("UTF-16LE", "UTF-8");
    CHECK("iconv_open(UTF-16LE, UTF-8)", cd != (iconv_t)-1);
    if (cd != (iconv_t)-1) {
        char in[] = "h\xc3\xa9", out[16] = {0};
        char *ip = in, *op = out;
        size_t il = 3, ol = sizeof out;
        size_t r = iconv(cd, &ip, &il, &op, &ol);
        CHECK("iconv converts", r != (size_t)-1 && op - out == 4 && (unsigned char)out[2] == 0xe9);
        iconv_close(cd);
    }

    pthread_t t[4];
    for (int i = 0; i < 4; i++) pthread_create(&t[i], NULL, thread_body, (void *)(intptr_t)i);
    int tok = 1;
    for (int i = 0; i < 4; i++) {
        void *r = NULL;
        pthread_join(t[i], &r);
        char expect[32];
        snprintf(expect, sizeof expect, "thread %d", i);
        if (!r || strcmp(r, expect)) tok = 0;
        free(r);
    }
    CHECK("threads with TLS allocate; main frees their blocks", tok);
}

/* ---- fork while other threads allocate; system(), popen() ---- */
static _Atomic int stop_workers;
static void *worker(void *arg) {
    void **slot = arg; /* a block handed to main before the fork */
    void *b = malloc(777);
    memset(b, 0x77, 777);
    __atomic_store_n(slot, b, __ATOMIC_RELEASE);
    while (!stop_workers) {
        void *v[16];
        for (int i = 0; i < 16; i++) v[i] = malloc((size_t)(i * 53 % 2000) + 1);
        for (int i = 0; i < 16; i++) free(v[i]);
    }
    return NULL;
}

static void test_fork(void) {
    enum { W = 3 };
    pthread_t t[W];
    void *slots[W] = {0};
    for (int i = 0; i < W; i++) pthread_create(&t[i], NULL, worker, &slots[i]);
    for (int i = 0; i < W; i++)
        while (!__atomic_load_n(&slots[i], __ATOMIC_ACQUIRE)) usleep(100);
    int ok = 1;
    for (int round = 0; round < 20; round++) {
        fflush(NULL);
        pid_t pid = fork();
        if (pid == 0) {
            alarm(10); /* a deadlocked child dies of SIGALRM */
            for (int i = 0; i < 1000; i++) free(malloc((size_t)i * 13 + 1));
            for (int i = 0; i < W; i++) { /* blocks of threads that do not exist here */
                unsigned char *b = slots[i];
                if (b[0] != 0x77 || b[776] != 0x77) _exit(2);
                free(b);
            }
            char *big = malloc(5 << 20);
            if (!big) _exit(3);
            big[(5 << 20) - 1] = 1;
            free(big);
            _exit(0);
        }
        int st = 0;
        if (pid < 0 || waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st)) {
            fprintf(stderr, "  fork round %d: child %s %d\n", round,
                    WIFSIGNALED(st) ? "killed by signal" : "exit status",
                    WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st));
            ok = 0;
            break;
        }
    }
    stop_workers = 1;
    for (int i = 0; i < W; i++) pthread_join(t[i], NULL);
    for (int i = 0; i < W; i++) free(slots[i]);
    CHECK("fork while 3 threads allocate: child allocates and frees their blocks", ok);

    int src = system("exit 3");
    CHECK("system(\"exit 3\") runs a shell and returns its status",
          WIFEXITED(src) && WEXITSTATUS(src) == 3);
    FILE *pp = popen("echo mspace-popen", "r");
    char line[64] = {0};
    if (pp && !fgets(line, sizeof line, pp)) line[0] = 0;
    int prc = pp ? pclose(pp) : -1;
    CHECK("popen/pclose", prc == 0 && !strcmp(line, "mspace-popen\n"));
}

int main(int argc, char **argv) {
    if (is_first_mode(argc, argv)) return run_first(argv[1] + 8);

    TEST_BEGIN("api/bootstrap");
    CHECK("constructor(101) ran", ctor_ran);
    CHECK("malloc/free in constructor(101)", ctor_malloc_ok);
    CHECK("calloc zeroed in constructor(101)", ctor_calloc_ok);
    CHECK("realloc keeps contents in constructor(101)", ctor_realloc_ok);
    CHECK("posix_memalign in constructor(101)", ctor_memalign_ok);
    CHECK("strdup in constructor(101)", ctor_strdup_ok);
    int intact = ctor_block != NULL;
    for (int i = 0; intact && i < CTOR_BLOCK; i++)
        if (ctor_block[i] != 0x3e) intact = 0;
    CHECK("block allocated in the constructor is intact in main", intact);
    free(ctor_block);

    static const char *const firsts[] = {"free",       "usable", "realloc",   "calloc",
                                         "posix_memalign", "large", "mallinfo2", "malloc_trim",
                                         "thread"};
    for (size_t i = 0; i < sizeof firsts / sizeof firsts[0]; i++) {
        int rc = spawn_first(firsts[i]);
        char name[96];
        snprintf(name, sizeof name, "fresh process whose first allocator call is %s", firsts[i]);
        CHECK(name, rc == 0);
    }

    test_libc();
    test_fork();

    late_block = malloc(4096);
    memset(late_block, 0x21, 4096);
    CHECK("atexit registration", atexit(at_exit_handler) == 0);
    return TEST_DONE();
}

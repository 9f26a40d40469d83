// victim: scenario 3's victim process (docs/hazard-lab.md), freestanding
// x86-64 C without a C library, built by the lab with
//
//	clang -O2 -static -nostdlib -ffreestanding -fno-stack-protector -o victim victim.c
//
// It maps the library given as its argument (read + exec, private: the
// uprobes registered on that file are installed in this process), prints
// "ready", then forks (the child exits at once) and maps, touches and
// unmaps an anonymous page in a loop, timing each iteration with
// CLOCK_MONOTONIC, until its stdin reaches end of file. Then it prints
// "start_ns duration_ns" per iteration and exits.
//
// It is C rather than Go because a Go process's fork is dominated by its
// runtime (copy-on-write faults on the heap and stacks it keeps touching):
// under QEMU TCG each Go iteration took about 100 ms, so the registrations
// waited for the victim instead of the other way round.

typedef unsigned long u64;
typedef long s64;

static s64 sys6(s64 n, s64 a, s64 b, s64 c, s64 d, s64 e, s64 f) {
	s64 ret;
	register s64 r10 __asm__("r10") = d;
	register s64 r8 __asm__("r8") = e;
	register s64 r9 __asm__("r9") = f;
	__asm__ volatile("syscall"
			 : "=a"(ret)
			 : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9)
			 : "rcx", "r11", "memory");
	return ret;
}
#define sys(n, a, b, c) sys6(n, (s64)(a), (s64)(b), (s64)(c), 0, 0, 0)

enum {
	SYS_read = 0, SYS_write = 1, SYS_open = 2, SYS_close = 3, SYS_mmap = 9, SYS_munmap = 11,
	SYS_fork = 57, SYS_exit_group = 231, SYS_wait4 = 61, SYS_fcntl = 72, SYS_lseek = 8,
	SYS_clock_gettime = 228,
};

struct timespec { s64 sec, nsec; };

static s64 now(void) {
	struct timespec ts;
	sys(SYS_clock_gettime, 1 /* CLOCK_MONOTONIC */, &ts, 0);
	return ts.sec * 1000000000L + ts.nsec;
}

static void out(const char *s, s64 n) {
	while (n > 0) {
		s64 w = sys(SYS_write, 1, s, n);
		if (w <= 0)
			return;
		s += w;
		n -= w;
	}
}

static char buf[1 << 16];
static s64 bufn;

static void flush(void) { out(buf, bufn); bufn = 0; }

static void putnum(u64 v) {
	char tmp[24];
	int i = 0;
	do { tmp[i++] = '0' + v % 10; v /= 10; } while (v);
	if (bufn + i + 2 > (s64)sizeof(buf))
		flush();
	while (i)
		buf[bufn++] = tmp[--i];
}

#define MAXITER (1 << 20)
static s64 starts[MAXITER], durs[MAXITER];

static void die(const char *msg, s64 n) {
	out(msg, n);
	sys(SYS_exit_group, 1, 0, 0);
}

void run(char *lib) {
	s64 fd = sys(SYS_open, lib, 0 /* O_RDONLY */, 0);
	if (fd < 0)
		die("victim: open failed\n", 20);
	s64 size = sys(SYS_lseek, fd, 0, 2 /* SEEK_END */);
	/* PROT_READ|PROT_EXEC, MAP_PRIVATE */
	s64 text = sys6(SYS_mmap, 0, size, 1 | 4, 2, fd, 0);
	if (text < 0 && text > -4096)
		die("victim: mmap failed\n", 20);
	sys(SYS_fcntl, 0, 4 /* F_SETFL */, 04000 /* O_NONBLOCK */);
	out("ready\n", 6);
	s64 n = 0;
	char c;
	for (;;) {
		s64 r = sys(SYS_read, 0, &c, 1);
		if (r == 0)
			break; /* end of file: stop */
		s64 t0 = now();
		s64 pid = sys(SYS_fork, 0, 0, 0);
		if (pid == 0)
			sys(SYS_exit_group, 0, 0, 0);
		if (pid > 0)
			sys6(SYS_wait4, pid, 0, 0, 0, 0, 0);
		/* PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS */
		s64 p = sys6(SYS_mmap, 0, 4096, 1 | 2, 2 | 0x20, -1, 0);
		if (p > 0) {
			*(volatile char *)p = 1;
			sys(SYS_munmap, p, 4096, 0);
		}
		if (n < MAXITER) {
			starts[n] = t0;
			durs[n] = now() - t0;
			n++;
		}
	}
	for (s64 i = 0; i < n; i++) {
		putnum(starts[i]);
		buf[bufn++] = ' ';
		putnum(durs[i]);
		buf[bufn++] = '\n';
	}
	flush();
	sys(SYS_exit_group, 0, 0, 0);
}

/* The kernel enters with the stack holding argc, argv[0], argv[1], ... */
__asm__(".global _start\n"
	"_start:\n"
	"  xor %rbp, %rbp\n"
	"  mov 16(%rsp), %rdi\n" /* argv[1] */
	"  and $-16, %rsp\n"
	"  call run\n"
	"  hlt\n");

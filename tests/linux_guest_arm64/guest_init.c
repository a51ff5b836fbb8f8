/*
 * /init of the arm64 restricted-dma-pool guest (built static with
 * aarch64-linux-gnu-gcc by guest.py; never committed as a binary).
 *
 * It writes a pattern to /dev/vda with O_DIRECT at each offset of a fixed
 * plan, flushes, reads every range back with O_DIRECT, compares, reports
 * one result a line on the console and powers off:
 *
 *   @@BEGIN
 *   @@R features <bits of /sys/bus/virtio/devices/virtio0/features>
 *   @@R transport <sysfs path of the virtio device>
 *   @@R wrote.<offset> <length>        (one per range)
 *   @@R verify.<offset> <length> ok|bad
 *   @@R io_ns <nanoseconds> <bytes written> <bytes read>
 *   @@END
 *
 * "@@ERROR <text>" marks a failure the program saw itself. The I/O runs in
 * a child process: when the device never completes a request (the negative
 * control), the parent reports "@@ERROR io timed out" after `iotimeout`
 * seconds (kernel command line, default 20) and still powers off.
 *
 * The pattern of a range is xorshift64* seeded from its offset; the test
 * computes the same bytes on the host to check the disk image.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

struct range { uint64_t offset; uint32_t length; };

/* Sizes chosen to cross the 256 KiB that one swiotlb mapping can hold. */
static const struct range plan[] = {
	{ 0, 4096 },
	{ 1 << 20, 64 << 10 },
	{ (4 << 20) + 4096, 512 << 10 },
	{ 8 << 20, 1 << 20 },
};
#define NPLAN (sizeof(plan) / sizeof(plan[0]))

static void fill(uint8_t *buf, uint32_t len, uint64_t offset)
{
	uint64_t x = (offset + 1) * 0x9E3779B97F4A7C15ULL;
	for (uint32_t i = 0; i < len; i += 8) {
		x ^= x >> 12;
		x ^= x << 25;
		x ^= x >> 27;
		uint64_t v = x * 0x2545F4914F6CDD1DULL;
		memcpy(buf + i, &v, 8);
	}
}

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

static void show_features(void)
{
	char line[256] = "";
	FILE *f = fopen("/sys/bus/virtio/devices/virtio0/features", "r");
	if (!f) {
		printf("@@ERROR no /sys/bus/virtio/devices/virtio0/features\n");
		return;
	}
	if (fgets(line, sizeof(line), f))
		line[strcspn(line, "\n")] = 0;
	fclose(f);
	printf("@@R features %s\n", line);
	static char path[4096];   /* realpath wants PATH_MAX bytes */
	if (realpath("/sys/bus/virtio/devices/virtio0", path))
		printf("@@R transport %s\n", path);
}

/* One whole O_DIRECT transfer of plan[i]; 0 when it moved every byte. */
static int transfer(int fd, uint8_t *buf, unsigned i, int write)
{
	const char *what = write ? "write" : "read";
	ssize_t n = write ? pwrite(fd, buf, plan[i].length, plan[i].offset)
			  : pread(fd, buf, plan[i].length, plan[i].offset);
	if (n == (ssize_t)plan[i].length)
		return 0;
	printf("@@ERROR %s %llu: %zd (%s)\n", what, (unsigned long long)plan[i].offset, n,
	       strerror(errno));
	return 1;
}

static int do_io(void)
{
	uint8_t *out, *in;
	uint64_t written = 0, read_back = 0, t0;
	int fd = open("/dev/vda", O_RDWR | O_DIRECT);
	if (fd < 0) {
		printf("@@ERROR open /dev/vda: %s\n", strerror(errno));
		return 1;
	}
	if (posix_memalign((void **)&out, 4096, 1 << 20) ||
	    posix_memalign((void **)&in, 4096, 1 << 20)) {
		printf("@@ERROR out of memory\n");
		return 1;
	}
	t0 = now_ns();
	for (unsigned i = 0; i < NPLAN; i++) {
		fill(out, plan[i].length, plan[i].offset);
		if (transfer(fd, out, i, 1))
			return 1;
		written += plan[i].length;
		printf("@@R wrote.%llu %u\n", (unsigned long long)plan[i].offset, plan[i].length);
	}
	if (fdatasync(fd))
		printf("@@ERROR fdatasync: %s\n", strerror(errno));
	for (unsigned i = 0; i < NPLAN; i++) {
		fill(out, plan[i].length, plan[i].offset);
		memset(in, 0, plan[i].length);
		if (transfer(fd, in, i, 0))
			return 1;
		read_back += plan[i].length;
		printf("@@R verify.%llu %u %s\n", (unsigned long long)plan[i].offset,
		       plan[i].length, memcmp(in, out, plan[i].length) ? "bad" : "ok");
	}
	printf("@@R io_ns %llu %llu %llu\n", (unsigned long long)(now_ns() - t0),
	       (unsigned long long)written, (unsigned long long)read_back);
	close(fd);
	return 0;
}

/* The child that does the I/O, waited for at most `seconds` (polling: the
 * kernel has no POSIX timers, so no alarm()). 0 once it exited with 0. */
static int wait_io(pid_t child, unsigned seconds)
{
	int status = 0;
	struct timespec tick = { 0, 100 * 1000 * 1000 };
	for (unsigned waited = 0; waited < seconds * 10; waited++) {
		pid_t r = waitpid(child, &status, WNOHANG);
		if (r == child)
			return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
		if (r < 0)
			return -1;
		nanosleep(&tick, NULL);
	}
	return 1;
}

int main(void)
{
	unsigned timeout = 20;
	const char *t = getenv("iotimeout");   /* unknown cmdline key=value pairs arrive as env */

	if (t && atoi(t) > 0)
		timeout = atoi(t);
	mkdir("/proc", 0755);
	mkdir("/sys", 0755);
	mkdir("/dev", 0755);
	mount("proc", "/proc", "proc", 0, NULL);
	mount("sysfs", "/sys", "sysfs", 0, NULL);
	mount("devtmpfs", "/dev", "devtmpfs", 0, NULL);
	setvbuf(stdout, NULL, _IOLBF, 0);

	printf("@@BEGIN\n");
	show_features();
	pid_t child = fork();
	if (child == 0) {
		setvbuf(stdout, NULL, _IOLBF, 0);
		_exit(do_io());
	}
	switch (wait_io(child, timeout)) {
	case 1:
		printf("@@ERROR io timed out after %u s\n", timeout);
		break;
	case -1:
		printf("@@ERROR io failed\n");
		break;
	}
	printf("@@END\n");
	fflush(stdout);
	sync();
	reboot(RB_POWER_OFF);
	return 0;
}

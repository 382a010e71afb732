import { createHash } from "node:crypto";
import { existsSync, mkdirSync, renameSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { run } from "./lab-shell.js";

/**
 * The lab's delayer, a small C program (the kernel here has no netem; iptables' NFQUEUE works):
 * its source is kept here so that the bench builds it wherever it runs (cc and Debian's
 * libnetfilter-queue-dev), once per source, into $TMPDIR.
 */
const SOURCE = String.raw`/*
 * The lab's latency: holds every packet of an NFQUEUE queue DELAY_MS before accepting it.
 * The kernel here has no netem; iptables' NFQUEUE target works. Run it inside a lab host and send
 * that host's arriving packets to it (delay on arrival: delaying on the way out collapses TCP):
 *   iptables -t mangle -A PREROUTING -i eth0 -j NFQUEUE --queue-num 0 --queue-bypass
 *   banyan-lab-delayer 0 50
 * Packets leave in the order they came (one constant delay). Built by the bench on first use
 * (cc, libnetfilter-queue-dev); --queue-bypass lets packets through if it is not running.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <libnetfilter_queue/libnetfilter_queue.h>
#include <linux/netfilter.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#define RING 65536 /* packets held at most: past it, the oldest is let through at once */

static struct { uint32_t id; int64_t due_us; } ring[RING];
static unsigned head, tail; /* held: ring[head..tail) */
static int64_t delay_us;
static struct nfq_q_handle *queue;

static int64_t now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void release(unsigned k) { nfq_set_verdict(queue, ring[k % RING].id, NF_ACCEPT, 0, NULL); }

static int held(struct nfq_q_handle *q, struct nfgenmsg *msg, struct nfq_data *nfa, void *data) {
  (void)q; (void)msg; (void)data;
  struct nfqnl_msg_packet_hdr *ph = nfq_get_msg_packet_hdr(nfa);
  if (ph == NULL) return 0;
  if (tail - head == RING) release(head++);
  ring[tail % RING].id = ntohl(ph->packet_id);
  ring[tail % RING].due_us = now_us() + delay_us;
  tail++;
  return 0;
}

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: %s QUEUE_NUM DELAY_MS\n", argv[0]);
    return 2;
  }
  delay_us = (int64_t)atoi(argv[2]) * 1000;
  struct nfq_handle *h = nfq_open();
  if (h == NULL) { perror("nfq_open"); return 1; }
  queue = nfq_create_queue(h, (uint16_t)atoi(argv[1]), &held, NULL);
  if (queue == NULL) { perror("nfq_create_queue"); return 1; }
  if (nfq_set_mode(queue, NFQNL_COPY_META, 0) < 0) { perror("nfq_set_mode"); return 1; }
  nfq_set_queue_maxlen(queue, RING);
  int fd = nfq_fd(h);
  char buf[65536] __attribute__((aligned));
  for (;;) {
    int64_t now = now_us();
    while (head != tail && ring[head % RING].due_us <= now) release(head++);
    int wait_ms = head == tail ? 1000 : (int)((ring[head % RING].due_us - now + 999) / 1000);
    struct pollfd p = {.fd = fd, .events = POLLIN};
    int r = poll(&p, 1, wait_ms);
    if (r < 0 && errno != EINTR) { perror("poll"); return 1; }
    if (r > 0) {
      int n = recv(fd, buf, sizeof buf, 0);
      if (n >= 0) nfq_handle_packet(h, buf, n);
      else if (errno != ENOBUFS && errno != EINTR) { perror("recv"); return 1; }
    }
  }
}
`;

/** The delayer's executable, built on first use. */
export function delayerBinary(): string {
  const hash = createHash("sha256").update(SOURCE).digest("hex").slice(0, 12);
  const dir = join(tmpdir(), "banyan-lab");
  const bin = join(dir, `delayer-${hash}`);
  if (existsSync(bin)) return bin;
  mkdirSync(dir, { recursive: true });
  const c = join(dir, `delayer-${hash}.c`);
  writeFileSync(c, SOURCE);
  try {
    run("cc", ["-O2", "-o", `${bin}.tmp`, c, "-lnetfilter_queue"]);
  } catch (err) {
    throw new Error(`the lab's latency needs a C compiler, Debian's libnetfilter-queue-dev and iptables (apt-get install gcc libnetfilter-queue-dev iptables): ${(err as Error).message}`);
  }
  renameSync(`${bin}.tmp`, bin);
  return bin;
}

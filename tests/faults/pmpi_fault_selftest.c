/*
 * Self test of the PMPI fault interposer (pmpi_fault.c). Runs every collective it intercepts, and
 * receives, on known data: blocking and non-blocking (each completion call), in place and out of
 * place, float / uint16 (user-defined sum) / byte. For each call it predicts the receive buffer
 * from DTBENCH_PMPI_FAULT (the true result when unset) and compares every byte, gaps included.
 * The same calls on communicators named "dtbench-control*" must always be exact. With
 * MPI_THREAD_MULTIPLE and no call= filter, two threads also run non-blocking calls at once.
 *
 * Rank 0 ends with "selftest: OK checks=N corrupt=M" (M = calls predicted to differ from the true
 * result, summed over ranks) or "selftest: FAILED ..." and exit 1.
 */
#define _POSIX_C_SOURCE 200809L
#include <mpi.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { OP_ALLREDUCE, OP_REDUCE_SCATTER, OP_ALLGATHER, OP_ALLTOALL, OP_ALLTOALLV, OP_ALLGATHERV, OP_BCAST,
       OP_SEND, OP_GATHERV, OP_COUNT };
static const char *const k_ops[OP_COUNT] = {"allreduce",  "reduce_scatter", "allgather", "alltoall", "alltoallv",
                                            "allgatherv", "bcast",          "send",      "gatherv"};
enum { M_NONE, M_ROTATE, M_OFFSET, M_WRONG_SHARD, M_SWAP_BLOCKS, M_DUP_BLOCK, M_STALE, M_BITFLIP, M_NEGZERO,
       M_TRUNCATE, M_COUNT };
static const char *const k_modes[M_COUNT] = {"none",      "rotate", "offset",  "wrong-shard", "swap-blocks",
                                             "dup-block", "stale",  "bitflip", "negzero",     "truncate"};
/* Completion styles: blocking, then every completion call the interposer intercepts. */
enum { S_BLOCKING, S_WAIT, S_TEST, S_WAITALL, S_TESTALL, S_WAITANY, S_TESTANY, S_WAITSOME, S_TESTSOME, S_COUNT };
static const char *const k_styles[S_COUNT] = {"blocking", "wait",    "test",     "waitall", "testall",
                                              "waitany",  "testany", "waitsome", "testsome"};

enum { kBlock = 256, kMsg = 200, kGap = 8, kMaxRanks = 16, kMaxPrints = 5 };

/* The fault the interposer was told to inject (it has validated the spec already). */
static struct {
  int mode, op, rank; /* op -1: any collective */
  long call;
  long long bytes;
} cfg = {M_NONE, -1, -1, -1, -1};
static int g_world_rank;

typedef struct {
  MPI_Datatype type;
  size_t es;
  const char *name;
  MPI_Op sum;
} dtype_t;
static dtype_t g_f32, g_u16, g_byte;

typedef struct stale {
  int op;
  size_t bytes;
  unsigned char *data;
  struct stale *next;
} stale_t;

/* One communicator under test and what the model knows about it. */
typedef struct {
  MPI_Comm comm;
  int n, me, control;
  long calls; /* matching calls so far: the interposer counts per rank, and only one ctx runs
                 when call= is given */
  int seed;
  stale_t *stale;
  long checks, corrupt, failures;
} ctx_t;

typedef struct {
  int op, style, inplace, root;
  const dtype_t *t;
  int seed;
  size_t recv_elems, cmp_elems;
  unsigned char *send, *recv, *pre, *truth, *full;
  int nspan;
  size_t soff[kMaxRanks], slen[kMaxRanks]; /* the output's blocks, in elements */
  int scount[kMaxRanks], sdispl[kMaxRanks], rcount[kMaxRanks], rdispl[kMaxRanks];
} case_t;

/* ---- data ------------------------------------------------------------------------------------- */

/* Small integers, so every sum is exact; every 4th is 0 (for negzero); no short period. */
static uint32_t val(int seed, int rank, size_t i) {
  if (i % 4 == 0) return 0;
  return 1 + (uint32_t)(((size_t)seed * 37 + (size_t)rank * 131 + i * 3) % 1021);
}

static void put(const dtype_t *t, unsigned char *buf, size_t i, uint32_t v) {
  if (t->es == 4) {
    float f = (float)v;
    memcpy(buf + i * 4, &f, 4);
  } else if (t->es == 2) {
    uint16_t h = (uint16_t)v;
    memcpy(buf + i * 2, &h, 2);
  } else {
    buf[i] = (unsigned char)v;
  }
}

/* What a receive buffer holds before the call: never a value the data can take. */
static void put_sentinel(const dtype_t *t, unsigned char *buf, size_t i) {
  if (t->es == 4) {
    float f = -1.5f - (float)(i % 977);
    memcpy(buf + i * 4, &f, 4);
  } else if (t->es == 2) {
    uint16_t h = (uint16_t)(0xF000 | (i & 0xFFF));
    memcpy(buf + i * 2, &h, 2);
  } else {
    buf[i] = (unsigned char)(0xF0 | (i & 0xF));
  }
}

static void sum_u16(void *in, void *inout, int *len, MPI_Datatype *type) {
  (void)type;
  const uint16_t *a = in;
  uint16_t *b = inout;
  for (int i = 0; i < *len; ++i) b[i] = (uint16_t)(a[i] + b[i]);
}

/* Symmetric (so in place works), uneven, and empty for some pairs from 4 ranks on, but never for
 * the blocks from ranks 0 and 1 (swap-blocks and dup-block act on those). */
static int alltoallv_count(int from, int to) {
  return from >= 2 && to >= 2 && (from + to) % 3 == 0 ? 0 : 24 + 40 * ((from + to) % 4);
}
static int allgatherv_count(int from) { return 40 * (from % 3) + 24; }

/* ---- building a case -------------------------------------------------------------------------- */

static unsigned char *alloc_elems(const dtype_t *t, size_t n) { return calloc(n ? n : 1, t->es); }

static void fill_sentinel(const dtype_t *t, unsigned char *buf, size_t n) {
  for (size_t i = 0; i < n; ++i) put_sentinel(t, buf, i);
}

/* Displacements with a gap before every block, which nobody may write. Returns the buffer size. */
static size_t gapped_displs(int n, const int counts[], int displs[]) {
  size_t at = kGap;
  for (int j = 0; j < n; ++j) {
    displs[j] = (int)at;
    at += (size_t)counts[j] + kGap;
  }
  return at;
}

static void build(const ctx_t *x, case_t *k) {
  const dtype_t *t = k->t;
  int n = x->n, me = x->me, s = k->seed;
  size_t es = t->es, send_elems = 0;
  k->nspan = 1;
  k->soff[0] = 0;
  k->slen[0] = kBlock;
  switch (k->op) {
    case OP_ALLREDUCE:
      k->recv_elems = kBlock;
      break;
    case OP_REDUCE_SCATTER:
      k->recv_elems = k->inplace ? (size_t)n * kBlock : kBlock;
      break;
    case OP_ALLGATHER:
    case OP_ALLTOALL:
      k->recv_elems = (size_t)n * kBlock;
      k->nspan = n;
      for (int j = 0; j < n; ++j) k->soff[j] = (size_t)j * kBlock, k->slen[j] = kBlock;
      break;
    case OP_ALLTOALLV:
    case OP_ALLGATHERV:
    case OP_GATHERV: /* every rank has the root's receive buffer; only the root's is written */
      k->root = (s / 2) % n; /* two calls in a row per root (run_all): stale has a past on each */
      for (int j = 0; j < n; ++j) {
        k->rcount[j] = k->op == OP_ALLTOALLV ? alltoallv_count(j, me) : allgatherv_count(j);
        k->scount[j] = k->op == OP_ALLTOALLV ? alltoallv_count(me, j) : allgatherv_count(me);
      }
      k->recv_elems = gapped_displs(n, k->rcount, k->rdispl);
      send_elems = gapped_displs(n, k->scount, k->sdispl);
      k->nspan = n;
      for (int j = 0; j < n; ++j) k->soff[j] = (size_t)k->rdispl[j], k->slen[j] = (size_t)k->rcount[j];
      break;
    case OP_BCAST:
      k->recv_elems = kBlock;
      k->root = s % n;
      break;
    case OP_SEND:
      k->recv_elems = kBlock;
      k->slen[0] = kMsg;
      break;
  }
  k->cmp_elems = k->op == OP_REDUCE_SCATTER ? kBlock : k->recv_elems;

  /* The send data; an in-place call takes it from the receive buffer instead. */
  switch (k->op) {
    case OP_ALLREDUCE: send_elems = kBlock; break;
    case OP_REDUCE_SCATTER:
    case OP_ALLTOALL: send_elems = (size_t)n * kBlock; break;
    case OP_ALLGATHER: send_elems = kBlock; break;
    case OP_SEND: send_elems = kMsg; break;
    default: break;
  }
  k->send = alloc_elems(t, send_elems);
  for (size_t i = 0; i < send_elems; ++i) put(t, k->send, i, val(s, me, i));
  if (k->op == OP_ALLTOALLV || k->op == OP_ALLGATHERV || k->op == OP_GATHERV) {
    fill_sentinel(t, k->send, send_elems);
    for (int d = 0; d < n; ++d)
      for (int i = 0; i < k->scount[d]; ++i)
        put(t, k->send, (size_t)k->sdispl[d] + i, val(s, me, (size_t)(k->op == OP_ALLTOALLV ? d * 1000 : 0) + i));
  }

  k->recv = alloc_elems(t, k->recv_elems);
  fill_sentinel(t, k->recv, k->recv_elems);
  if (k->inplace) {
    switch (k->op) {
      case OP_ALLREDUCE:
      case OP_REDUCE_SCATTER:
      case OP_ALLTOALL: memcpy(k->recv, k->send, send_elems * es); break;
      case OP_ALLGATHER: memcpy(k->recv + (size_t)me * kBlock * es, k->send, kBlock * es); break;
      case OP_GATHERV:
        if (me != k->root) break;
        /* fall through */
      case OP_ALLGATHERV:
        memcpy(k->recv + (size_t)k->rdispl[me] * es, k->send + (size_t)k->sdispl[0] * es, (size_t)k->rcount[me] * es);
        break;
      case OP_ALLTOALLV: /* counts are symmetric, so what goes to j fits where j's block lands */
        for (int j = 0; j < n; ++j)
          memcpy(k->recv + (size_t)k->rdispl[j] * es, k->send + (size_t)k->sdispl[j] * es, (size_t)k->rcount[j] * es);
        break;
    }
  }
  if (k->op == OP_BCAST && me == k->root)
    for (size_t i = 0; i < kBlock; ++i) put(t, k->recv, i, val(s, k->root, i));
  k->pre = malloc(k->recv_elems * es);
  memcpy(k->pre, k->recv, k->recv_elems * es);

  /* The true result. */
  k->truth = malloc(k->recv_elems * es);
  memcpy(k->truth, k->pre, k->recv_elems * es);
  unsigned char *o = k->truth;
  switch (k->op) {
    case OP_ALLREDUCE:
      for (size_t i = 0; i < kBlock; ++i) {
        uint32_t v = 0;
        for (int r = 0; r < n; ++r) v += val(s, r, i);
        put(t, o, i, v);
      }
      break;
    case OP_REDUCE_SCATTER:
      k->full = alloc_elems(t, (size_t)n * kBlock);
      for (size_t i = 0; i < (size_t)n * kBlock; ++i) {
        uint32_t v = 0;
        for (int r = 0; r < n; ++r) v += val(s, r, i);
        put(t, k->full, i, v);
      }
      memcpy(o, k->full + (size_t)me * kBlock * es, kBlock * es);
      break;
    case OP_ALLGATHER:
      for (int j = 0; j < n; ++j)
        for (size_t i = 0; i < kBlock; ++i) put(t, o, (size_t)j * kBlock + i, val(s, j, i));
      break;
    case OP_ALLTOALL:
      for (int j = 0; j < n; ++j)
        for (size_t i = 0; i < kBlock; ++i) put(t, o, (size_t)j * kBlock + i, val(s, j, (size_t)me * kBlock + i));
      break;
    case OP_GATHERV:
      if (me != k->root) break;
      /* fall through */
    case OP_ALLTOALLV:
    case OP_ALLGATHERV:
      for (int j = 0; j < n; ++j)
        for (int i = 0; i < k->rcount[j]; ++i)
          put(t, o, (size_t)k->rdispl[j] + i, val(s, j, (size_t)(k->op == OP_ALLTOALLV ? me * 1000 : 0) + i));
      break;
    case OP_BCAST:
      for (size_t i = 0; i < kBlock; ++i) put(t, o, i, val(s, k->root, i));
      break;
    case OP_SEND:
      for (size_t i = 0; i < kMsg; ++i) put(t, o, i, val(s, (me + n - 1) % n, i));
      break;
  }
}

static void free_case(case_t *k) {
  free(k->send);
  free(k->recv);
  free(k->pre);
  free(k->truth);
  free(k->full);
}

/* ---- running a case --------------------------------------------------------------------------- */

static void complete(MPI_Comm comm, int style, MPI_Request *req) {
  MPI_Request two[2] = {MPI_REQUEST_NULL, *req}, three[3];
  MPI_Status sts[3];
  int flag = 0, index = -1, out = 0, indices[3];
  switch (style) {
    case S_WAIT: MPI_Wait(req, MPI_STATUS_IGNORE); break;
    case S_TEST:
      while (!flag) MPI_Test(req, &flag, &sts[0]);
      break;
    case S_WAITALL: /* with an untracked request and a null one beside it */
      three[1] = MPI_REQUEST_NULL;
      three[2] = *req;
      MPI_Ibarrier(comm, &three[0]);
      MPI_Waitall(3, three, sts);
      break;
    case S_TESTALL:
      while (!flag) MPI_Testall(2, two, &flag, MPI_STATUSES_IGNORE);
      break;
    case S_WAITANY: MPI_Waitany(2, two, &index, &sts[0]); break;
    case S_TESTANY:
      while (!flag) MPI_Testany(2, two, &index, &flag, MPI_STATUS_IGNORE);
      break;
    case S_WAITSOME: MPI_Waitsome(2, two, &out, indices, sts); break;
    case S_TESTSOME:
      while (out == 0) MPI_Testsome(2, two, &out, indices, MPI_STATUSES_IGNORE);
      break;
  }
  *req = MPI_REQUEST_NULL;
}

static void issue(const ctx_t *x, case_t *k) {
  MPI_Comm c = x->comm;
  MPI_Datatype t = k->t->type;
  MPI_Op sum = k->t->sum;
  int nb = k->style != S_BLOCKING, ip = k->inplace;
  MPI_Request req = MPI_REQUEST_NULL, *r = &req;
  const void *sb = ip ? MPI_IN_PLACE : (const void *)k->send;
  void *rb = k->recv;
  switch (k->op) {
    case OP_ALLREDUCE:
      nb ? MPI_Iallreduce(sb, rb, kBlock, t, sum, c, r) : MPI_Allreduce(sb, rb, kBlock, t, sum, c);
      break;
    case OP_REDUCE_SCATTER:
      nb ? MPI_Ireduce_scatter_block(sb, rb, kBlock, t, sum, c, r) : MPI_Reduce_scatter_block(sb, rb, kBlock, t, sum, c);
      break;
    case OP_ALLGATHER:
      nb ? MPI_Iallgather(sb, kBlock, t, rb, kBlock, t, c, r) : MPI_Allgather(sb, kBlock, t, rb, kBlock, t, c);
      break;
    case OP_ALLTOALL:
      nb ? MPI_Ialltoall(sb, kBlock, t, rb, kBlock, t, c, r) : MPI_Alltoall(sb, kBlock, t, rb, kBlock, t, c);
      break;
    case OP_ALLTOALLV:
      nb ? MPI_Ialltoallv(sb, k->scount, k->sdispl, t, rb, k->rcount, k->rdispl, t, c, r)
         : MPI_Alltoallv(sb, k->scount, k->sdispl, t, rb, k->rcount, k->rdispl, t, c);
      break;
    case OP_ALLGATHERV: {
      const void *own = ip ? MPI_IN_PLACE : (const void *)(k->send + (size_t)k->sdispl[0] * k->t->es);
      nb ? MPI_Iallgatherv(own, k->scount[0], t, rb, k->rcount, k->rdispl, t, c, r)
         : MPI_Allgatherv(own, k->scount[0], t, rb, k->rcount, k->rdispl, t, c);
      break;
    }
    case OP_BCAST:
      nb ? MPI_Ibcast(rb, kBlock, t, k->root, c, r) : MPI_Bcast(rb, kBlock, t, k->root, c);
      break;
    case OP_GATHERV: { /* blocking only (the interposer does not intercept MPI_Igatherv) */
      const int root = k->root, in_place = ip && x->me == root;
      const void *own = in_place ? MPI_IN_PLACE : (const void *)(k->send + (size_t)k->sdispl[0] * k->t->es);
      MPI_Gatherv(own, k->scount[0], t, rb, k->rcount, k->rdispl, t, root, c);
      break;
    }
    case OP_SEND: {
      MPI_Request sreq;
      MPI_Isend(k->send, kMsg, t, (x->me + 1) % x->n, 7, c, &sreq);
      if (nb) {
        MPI_Irecv(rb, kBlock, t, (x->me + x->n - 1) % x->n, 7, c, r);
        complete(c, k->style, r);
      } else {
        MPI_Recv(rb, kBlock, t, (x->me + x->n - 1) % x->n, 7, c, MPI_STATUS_IGNORE);
      }
      MPI_Wait(&sreq, MPI_STATUS_IGNORE);
      return;
    }
  }
  if (nb) complete(c, k->style, r);
}

/* ---- the model: what the interposer must have made of the true result -------------------------- */

static int applies(int op) {
  switch (cfg.mode) {
    case M_NONE: return 0;
    case M_WRONG_SHARD: return op == OP_REDUCE_SCATTER;
    case M_SWAP_BLOCKS:
    case M_DUP_BLOCK: return op != OP_REDUCE_SCATTER;
    default: return 1;
  }
}

static int is_blocks(int op) {
  return op == OP_ALLGATHER || op == OP_ALLTOALL || op == OP_ALLTOALLV || op == OP_ALLGATHERV || op == OP_GATHERV;
}

static int matching(const ctx_t *x, const case_t *k) {
  if (x->control || !applies(k->op)) return 0;
  if (cfg.op >= 0 ? cfg.op != k->op : k->op == OP_SEND) return 0;
  if (k->op == OP_BCAST && x->me == k->root) return 0;
  if (k->op == OP_GATHERV && x->me != k->root) return 0;
  if (cfg.mode == M_NEGZERO && k->t->es != 2 && k->t->es != 4) return 0;
  return 1;
}

/* logical[] = the output blocks of buf, concatenated; or the reverse. */
static void gather(const case_t *k, const unsigned char *buf, unsigned char *logical) {
  size_t es = k->t->es, at = 0;
  for (int j = 0; j < k->nspan; ++j) {
    memcpy(logical + at, buf + k->soff[j] * es, k->slen[j] * es);
    at += k->slen[j] * es;
  }
}

static void scatter(const case_t *k, unsigned char *buf, const unsigned char *logical) {
  size_t es = k->t->es, at = 0;
  for (int j = 0; j < k->nspan; ++j) {
    memcpy(buf + k->soff[j] * es, logical + at, k->slen[j] * es);
    at += k->slen[j] * es;
  }
}

/* Byte q of pair member a/b: the first blocks (ranks 0 and 1), or elements [0,64) and [64,128). */
static size_t pair(const case_t *k, size_t total, size_t *a, size_t *b) {
  size_t es = k->t->es;
  if (is_blocks(k->op)) {
    if (k->nspan < 2) return 0;
    *a = 0, *b = k->slen[0] * es;
    return (k->slen[0] < k->slen[1] ? k->slen[0] : k->slen[1]) * es;
  }
  *a = 0, *b = 64 * es;
  return total >= 128 * es ? 64 * es : 0;
}

static void model(ctx_t *x, const case_t *k, unsigned char *expect) {
  if (!matching(x, k)) return;
  long index = x->calls++;
  int selected = (cfg.rank < 0 || cfg.rank == g_world_rank) && (cfg.call < 0 || cfg.call == index);
  size_t es = k->t->es, total = 0;
  for (int j = 0; j < k->nspan; ++j) total += k->slen[j] * es;
  unsigned char *truth = malloc(total + 1), *pre = malloc(total + 1), *out = malloc(total + 1);
  gather(k, expect, truth);
  gather(k, k->pre, pre);
  memcpy(out, truth, total);

  if (cfg.mode == M_STALE) {
    stale_t *st = x->stale;
    while (st && !(st->op == k->op && st->bytes == total)) st = st->next;
    if (!st) {
      st = calloc(1, sizeof *st);
      *st = (stale_t){k->op, total, NULL, x->stale};
      x->stale = st;
    }
    if (selected && st->data && total) memcpy(out, st->data, total);
    free(st->data);
    st->data = malloc(total + 1);
    memcpy(st->data, truth, total);
  }
  if (selected && total) {
    size_t shift, a, b, m;
    switch (cfg.mode) {
      case M_ROTATE:
        shift = (cfg.bytes >= 0 ? (size_t)cfg.bytes : 64 * es) % total;
        for (size_t q = 0; q < total; ++q) out[q] = truth[(q + shift) % total];
        break;
      case M_OFFSET:
        shift = cfg.bytes >= 0 ? (size_t)cfg.bytes : is_blocks(k->op) ? k->slen[0] * es + es : total / es / 2 * es;
        if (shift && shift < total)
          for (size_t q = 0; q + shift < total; ++q) out[q] = truth[q + shift];
        break;
      case M_WRONG_SHARD:
        memcpy(out, k->full + (size_t)((x->me + 1) % x->n) * kBlock * es, total);
        break;
      case M_SWAP_BLOCKS:
        m = pair(k, total, &a, &b);
        for (size_t q = 0; q < m; ++q) out[a + q] = truth[b + q], out[b + q] = truth[a + q];
        break;
      case M_DUP_BLOCK:
        m = pair(k, total, &a, &b);
        for (size_t q = 0; q < m; ++q) out[b + q] = truth[a + q];
        break;
      case M_BITFLIP:
        a = cfg.bytes >= 0 ? (size_t)cfg.bytes : total / es / 2 * es;
        if (a < total) out[a] ^= 0x08;
        break;
      case M_NEGZERO:
        for (size_t e = 0; e < total / es; ++e) {
          int zero = 1;
          for (size_t q = 0; q < es; ++q) zero &= truth[e * es + q] == 0;
          if (!zero) continue;
          if (es == 4) {
            uint32_t v = UINT32_C(0x80000000);
            memcpy(out + e * 4, &v, 4);
          } else {
            uint16_t v = UINT16_C(0x8000);
            memcpy(out + e * 2, &v, 2);
          }
        }
        break;
      case M_TRUNCATE:
        a = 0;
        for (int j = 0; j < k->nspan; a += k->slen[j++] * es)
          for (size_t e = k->slen[j] - k->slen[j] / 2; e < k->slen[j]; ++e) memcpy(out + a + e * es, pre + a + e * es, es);
        break;
    }
  }
  scatter(k, expect, out);
  free(truth);
  free(pre);
  free(out);
}

static void run_case(ctx_t *x, int op, const dtype_t *t, int style, int inplace) {
  case_t k = {.op = op, .style = style, .inplace = inplace, .t = t, .seed = x->seed++};
  build(x, &k);
  issue(x, &k);
  size_t bytes = k.cmp_elems * t->es, es = t->es;
  unsigned char *expect = malloc(k.recv_elems * es);
  memcpy(expect, k.truth, k.recv_elems * es);
  model(x, &k, expect);
  x->checks++;
  if (memcmp(expect, k.truth, bytes) != 0) x->corrupt++;
  if (memcmp(expect, k.recv, bytes) != 0) {
    size_t e = 0;
    while (memcmp(expect + e * es, k.recv + e * es, es) == 0) ++e;
    if (x->failures++ < kMaxPrints) {
      uint32_t want = 0, got = 0, had = 0;
      memcpy(&want, expect + e * es, es);
      memcpy(&got, k.recv + e * es, es);
      memcpy(&had, k.truth + e * es, es);
      fprintf(stderr,
              "selftest: rank %d %s %s/%s/%s%s seed %d: element %zu is 0x%x, expected 0x%x (true result 0x%x)\n",
              g_world_rank, x->control ? "control" : "data", k_ops[op], t->name, k_styles[style],
              inplace ? "/in-place" : "", k.seed, e, got, want, had);
    }
  }
  free(expect);
  free_case(&k);
}

/* Every op with every datatype, completion style and placement, twice (so stale has a past). */
static void run_all(ctx_t *x) {
  static const dtype_t *const reduce_types[] = {&g_f32, &g_u16, NULL}, *const gather_types[] = {&g_f32, &g_u16, &g_byte, NULL},
                              *const move_types[] = {&g_f32, NULL}, *const send_types[] = {&g_f32, &g_byte, NULL};
  const dtype_t *const *types[OP_COUNT] = {reduce_types, reduce_types, gather_types, move_types, move_types,
                                           move_types,   move_types,   send_types,   move_types};
  for (int op = 0; op < OP_COUNT; ++op) {
    int placements = op == OP_BCAST || op == OP_SEND ? 1 : 2;
    /* gatherv: every rank is the root of two calls in a row (seeds s0 + 2r, s0 + 2r + 1, s0 even) */
    int styles = op == OP_GATHERV ? 1 : S_COUNT, reps = op == OP_GATHERV ? 2 * x->n : 2;
    for (const dtype_t *const *t = types[op]; *t; ++t)
      for (int style = 0; style < styles; ++style)
        for (int inplace = 0; inplace < placements; ++inplace)
          for (int rep = 0; rep < reps; ++rep) run_case(x, op, *t, style, inplace);
  }
}

/* Non-blocking calls from several threads at once, each on its own communicator. */
static void *thread_main(void *arg) {
  static const int ops[] = {OP_ALLREDUCE, OP_REDUCE_SCATTER, OP_ALLGATHER, OP_ALLTOALL, OP_BCAST, OP_SEND};
  ctx_t *x = arg;
  for (int rep = 0; rep < 20; ++rep)
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; ++i)
      run_case(x, ops[i], &g_f32, 1 + (int)(rep + i) % (S_COUNT - 1), ops[i] != OP_BCAST && ops[i] != OP_SEND && rep % 2);
  return NULL;
}

/* ---- main ------------------------------------------------------------------------------------- */

static void parse_cfg(void) {
  const char *spec = getenv("DTBENCH_PMPI_FAULT");
  if (!spec || !*spec) return;
  char *copy = strdup(spec), *save = NULL;
  for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
    char *eq = strchr(tok, '=');
    if (!eq) {
      for (int m = 0; m < M_COUNT; ++m)
        if (strcmp(tok, k_modes[m]) == 0) cfg.mode = m;
      continue;
    }
    *eq = '\0';
    if (strcmp(tok, "op") == 0)
      for (int o = 0; o < OP_COUNT; ++o)
        if (strcmp(eq + 1, k_ops[o]) == 0) cfg.op = o;
    if (strcmp(tok, "rank") == 0) cfg.rank = atoi(eq + 1);
    if (strcmp(tok, "call") == 0) cfg.call = atol(eq + 1);
    if (strcmp(tok, "bytes") == 0) cfg.bytes = atoll(eq + 1);
  }
  free(copy);
}

static ctx_t make_ctx(MPI_Comm parent, const char *name, int key, int control) {
  ctx_t x = {.control = control};
  MPI_Comm_split(parent, 0, key, &x.comm);
  MPI_Comm_set_name(x.comm, name);
  MPI_Comm_size(x.comm, &x.n);
  MPI_Comm_rank(x.comm, &x.me);
  return x;
}

static void free_ctx(ctx_t *x) {
  while (x->stale) {
    stale_t *s = x->stale;
    x->stale = s->next;
    free(s->data);
    free(s);
  }
  MPI_Comm_free(&x->comm);
}

int main(int argc, char **argv) {
  int provided, n;
  MPI_Init_thread(&argc, &argv, MPI_THREAD_MULTIPLE, &provided);
  MPI_Comm_rank(MPI_COMM_WORLD, &g_world_rank);
  MPI_Comm_size(MPI_COMM_WORLD, &n);
  if (n < 2 || n > kMaxRanks) {
    if (g_world_rank == 0) fprintf(stderr, "selftest: needs 2..%d ranks\n", kMaxRanks);
    MPI_Abort(MPI_COMM_WORLD, 2);
  }
  parse_cfg();
  g_f32 = (dtype_t){MPI_FLOAT, 4, "float", MPI_SUM};
  g_byte = (dtype_t){MPI_BYTE, 1, "byte", MPI_OP_NULL};
  g_u16 = (dtype_t){MPI_UINT16_T, 2, "u16", MPI_OP_NULL};
  MPI_Op_create(sum_u16, 1, &g_u16.sum);

  /* Ranks reversed, so that communicator ranks differ from MPI_COMM_WORLD ranks (rank= means the
   * latter; block 0 and 1 mean the former). */
  ctx_t data = make_ctx(MPI_COMM_WORLD, "selftest-data", n - 1 - g_world_rank, 0);
  ctx_t control = make_ctx(MPI_COMM_WORLD, "dtbench-control", g_world_rank, 1);
  ctx_t control2 = make_ctx(MPI_COMM_WORLD, "dtbench-control-ckpt", n - 1 - g_world_rank, 1);
  run_all(&data);
  run_all(&control);
  run_case(&control2, OP_ALLREDUCE, &g_f32, S_WAIT, 1);
  run_case(&control2, OP_SEND, &g_f32, S_BLOCKING, 0);

  ctx_t threads[2];
  int threaded = provided == MPI_THREAD_MULTIPLE && cfg.call < 0;
  if (threaded) {
    pthread_t tid[2];
    for (int i = 0; i < 2; ++i) {
      threads[i] = make_ctx(data.comm, i ? "selftest-thread-1" : "selftest-thread-0", i ? data.me : -data.me, 0);
      threads[i].seed = 100000 * (i + 1);
    }
    for (int i = 0; i < 2; ++i) pthread_create(&tid[i], NULL, thread_main, &threads[i]);
    for (int i = 0; i < 2; ++i) pthread_join(tid[i], NULL);
  }

  long mine[3] = {data.checks + control.checks + control2.checks, data.corrupt,
                  data.failures + control.failures + control2.failures};
  for (int i = 0; threaded && i < 2; ++i) {
    mine[0] += threads[i].checks, mine[1] += threads[i].corrupt, mine[2] += threads[i].failures;
    free_ctx(&threads[i]);
  }
  long sum[3];
  MPI_Allreduce(mine, sum, 3, MPI_LONG, MPI_SUM, control.comm);
  if (g_world_rank == 0) {
    if (sum[2])
      printf("selftest: FAILED %ld of %ld checks (mode %s)\n", sum[2], sum[0], k_modes[cfg.mode]);
    else
      printf("selftest: OK checks=%ld corrupt=%ld%s\n", sum[0], sum[1], threaded ? " threads=2" : "");
  }
  free_ctx(&data);
  free_ctx(&control);
  free_ctx(&control2);
  MPI_Op_free(&g_u16.sum);
  MPI_Finalize();
  return sum[2] ? 1 : 0;
}

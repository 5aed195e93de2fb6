/*
 * pmpi_fault: a PMPI interposer that makes MPI deliver wrong data, the way a bad link or a buggy
 * MPI library would. It proves that dtbench's validation catches corruption that happens beneath
 * it, not only faults that dtbench injects itself.
 *
 *   mpirun -x LD_PRELOAD=libdtbench_pmpi_fault.so -x DTBENCH_PMPI_FAULT=rotate,op=allreduce ...
 *
 * DTBENCH_PMPI_FAULT = MODE[,op=OP][,rank=R][,call=K][,bytes=B]   (read once, in MPI_Init*)
 *   op    allreduce | reduce_scatter (MPI_Reduce_scatter_block) | allgather | alltoall |
 *         alltoallv | allgatherv | gatherv (what the root of MPI_Gatherv receives) | bcast |
 *         send (what MPI_Recv / MPI_Irecv deliver) |
 *         any (default: every collective the mode applies to; not send)
 *   rank  only MPI_COMM_WORLD rank R corrupts what it receives (default -1: every rank)
 *   call  only the K-th (0-based, counted in issue order on the rank) matching call is corrupted
 *         (default -1: every one)
 *   bytes rotate/offset: the shift in bytes; bitflip: the byte offset of the flipped bit
 * A malformed spec exits 2 with: pmpi_fault: bad DTBENCH_PMPI_FAULT "SPEC": reason
 *
 * Every mode works on the output of a call on the calling rank: the blocks it receives, in
 * source-rank order (allgather, alltoall, alltoallv, allgatherv, gatherv), or one buffer (allreduce,
 * reduce_scatter: the own shard, bcast: non-root ranks only, send: the received message).
 * The blocks of the v-variants are taken as one sequence; the gaps between them are never touched.
 *   rotate       element i receives element i+64 (mod the output size)
 *   offset       element i receives element i+s and the last s stay: s = the block from rank 0
 *                plus 1 element for block outputs, half the count for one buffer
 *   wrong-shard  reduce_scatter only: rank r receives the shard of rank (r+1) mod n. Every rank
 *                runs every such call as an allreduce of all n shards (whatever rank= and call=
 *                say, so that the ranks stay in step) and copies out the shard it is to deliver
 *   swap-blocks  the blocks from ranks 0 and 1 swap their first min(count0, count1) elements; one
 *                buffer: elements [0,64) and [64,128) swap. Not reduce_scatter (see wrong-shard)
 *   dup-block    the block from rank 1 gets a copy of block 0 (first min(count0, count1)
 *                elements); one buffer: [64,128) := [0,64). Not reduce_scatter
 *   stale        the previous true output of the same (op, communicator, byte size) is delivered;
 *                the first call of each has nothing to replay and stays right
 *   bitflip      bit 3 of the first byte of the middle element (or of byte B) flips
 *   negzero      every all-zero element gets its sign bit set (+0 -> -0); calls whose element
 *                size is not 2 or 4 bytes do not match (nor count for call=)
 *   truncate     the last count/2 elements of each block (or message) keep what the buffer held
 *                before the call
 * Non-blocking calls are corrupted when MPI_Wait/Test/Waitall/Testall/Waitany/Testany/Waitsome/
 * Testsome completes them.
 *
 * Calls on communicators named "dtbench-control..." (dtbench's own verdict and timing traffic) and
 * on intercommunicators are never touched, nor are datatypes with holes (extent != size).
 * A corruption that changes at least one byte is reported on stderr (first 3 per rank):
 *   pmpi_fault: rank R corrupted OP (MODE, N bytes) call K        (N: bytes that differ)
 * and a rank that rank= selects but whose mode never changed anything says so at MPI_Finalize:
 *   pmpi_fault: rank R: MODE never applied
 */
#define _POSIX_C_SOURCE 200809L
#include <limits.h>
#include <mpi.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { OP_ALLREDUCE, OP_REDUCE_SCATTER, OP_ALLGATHER, OP_ALLTOALL, OP_ALLTOALLV, OP_ALLGATHERV, OP_BCAST,
       OP_SEND, OP_GATHERV, OP_COUNT, OP_ANY = -1 };
static const char *const k_op_names[OP_COUNT] = {"allreduce", "reduce_scatter", "allgather", "alltoall",
                                                 "alltoallv", "allgatherv",     "bcast",     "send",
                                                 "gatherv"};

enum { M_NONE, M_ROTATE, M_OFFSET, M_WRONG_SHARD, M_SWAP_BLOCKS, M_DUP_BLOCK, M_STALE, M_BITFLIP, M_NEGZERO,
       M_TRUNCATE, M_COUNT };
static const char *const k_mode_names[M_COUNT] = {"none",      "rotate", "offset",  "wrong-shard", "swap-blocks",
                                                  "dup-block", "stale",  "bitflip", "negzero",     "truncate"};

enum { kShiftElems = 64, kMaxReports = 3 };
static const char kControlPrefix[] = "dtbench-control";

static struct {
  int mode, op, rank;
  long call;
  long long bytes; /* -1: the mode's default */
} g_cfg = {M_NONE, OP_ANY, -1, -1, -1};
static int g_world_rank = -1;
static atomic_long g_calls;   /* matching calls issued on this rank: what call=K counts */
static atomic_int g_reports;  /* corruptions that changed data */

/* One received block, in bytes from the output's base. */
typedef struct {
  size_t off, len;
} span_t;

/* A call that may be corrupted, from issue to completion (tracked by request when non-blocking). */
typedef struct call {
  int op;
  MPI_Comm comm;
  MPI_Datatype type;
  size_t es; /* element size */
  long index;
  int selected; /* corrupt this one; otherwise it is only observed (stale) or rerouted (wrong-shard) */
  unsigned char *base;
  int nspan;
  span_t *span;          /* source-rank order; send: the capacity until the status gives the length */
  unsigned char *saved;  /* truncate: the output before the call, spans concatenated */
  unsigned char *full;   /* wrong-shard: the whole reduction, n shards */
  int own_shard, wrong_shard;
  MPI_Request req;
  int claimed; /* a completion call is working on it (see lookup) */
  struct call *next;
} call_t;

/* The last true output per (op, comm, size), for stale. */
typedef struct stale {
  int op;
  MPI_Comm comm;
  size_t bytes;
  unsigned char *data;
  struct stale *next;
} stale_t;

/* Guards g_pending and g_stale: dtbench completes requests from several threads. */
static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static call_t *g_pending; /* non-blocking calls in flight */
static stale_t *g_stale;

/* ---- configuration ---------------------------------------------------------------------------- */

static void bad_spec(const char *spec, const char *why, const char *what) {
  fprintf(stderr, "pmpi_fault: bad DTBENCH_PMPI_FAULT \"%s\": %s%s\n", spec, why, what);
  exit(2);
}

static int lookup_name(const char *const *names, int n, const char *s) {
  for (int i = 0; i < n; ++i)
    if (strcmp(names[i], s) == 0) return i;
  return -1;
}

static long long parse_int(const char *spec, const char *key, const char *v, long long min) {
  char *end;
  long long x = strtoll(v, &end, 10);
  if (!*v || *end || x < min || x > INT_MAX) {
    char why[64];
    snprintf(why, sizeof why, "invalid %s= value ", key);
    bad_spec(spec, why, v);
  }
  return x;
}

static void parse_config(void) {
  const char *spec = getenv("DTBENCH_PMPI_FAULT");
  if (!spec || !*spec) return;
  char *copy = strdup(spec);
  unsigned seen = 0;
  for (char *tok = copy, *next; tok; tok = next) {
    next = strchr(tok, ',');
    if (next) *next++ = '\0';
    if (!*tok) bad_spec(spec, "empty field", "");
    if (tok == copy) {
      g_cfg.mode = lookup_name(k_mode_names, M_COUNT, tok);
      if (g_cfg.mode <= M_NONE) bad_spec(spec, "unknown mode ", tok);
      continue;
    }
    char *eq = strchr(tok, '=');
    if (!eq) bad_spec(spec, "expected key=value, got ", tok);
    *eq = '\0';
    const char *v = eq + 1;
    static const char *const keys[] = {"op", "rank", "call", "bytes"};
    int k = lookup_name(keys, 4, tok);
    if (k < 0) bad_spec(spec, "unknown key ", tok);
    if (seen & (1u << k)) bad_spec(spec, "repeated key ", tok);
    seen |= 1u << k;
    switch (k) {
      case 0:
        if (strcmp(v, "any") == 0) break;
        g_cfg.op = lookup_name(k_op_names, OP_COUNT, v);
        if (g_cfg.op < 0) bad_spec(spec, "unknown op ", v);
        break;
      case 1: g_cfg.rank = (int)parse_int(spec, "rank", v, -1); break;
      case 2: g_cfg.call = (long)parse_int(spec, "call", v, -1); break;
      case 3: g_cfg.bytes = parse_int(spec, "bytes", v, 0); break;
    }
  }
  free(copy);
  if (g_cfg.bytes >= 0) {
    if (g_cfg.mode != M_ROTATE && g_cfg.mode != M_OFFSET && g_cfg.mode != M_BITFLIP)
      bad_spec(spec, "bytes= does not apply to mode ", k_mode_names[g_cfg.mode]);
    if (g_cfg.bytes == 0 && g_cfg.mode != M_BITFLIP) bad_spec(spec, "a shift of 0 bytes changes nothing", "");
  }
}

static int mode_applies(int op) {
  switch (g_cfg.mode) {
    case M_WRONG_SHARD: return op == OP_REDUCE_SCATTER;
    case M_SWAP_BLOCKS:
    case M_DUP_BLOCK: return op != OP_REDUCE_SCATTER;
    default: return 1;
  }
}

static int op_selected(int op) { return g_cfg.op == OP_ANY ? op != OP_SEND : g_cfg.op == op; }
static int rank_selected(void) { return g_cfg.rank < 0 || g_cfg.rank == g_world_rank; }
static int is_block_output(int op) {
  return op == OP_ALLGATHER || op == OP_ALLTOALL || op == OP_ALLTOALLV || op == OP_ALLGATHERV || op == OP_GATHERV;
}

/* ---- which calls are candidates --------------------------------------------------------------- */

static int is_control(MPI_Comm comm) {
  char name[MPI_MAX_OBJECT_NAME];
  int len = 0;
  if (PMPI_Comm_get_name(comm, name, &len) != MPI_SUCCESS) return 0;
  return strncmp(name, kControlPrefix, sizeof kControlPrefix - 1) == 0;
}

/* A record for a call this interposer has to act on, or NULL to pass it through untouched. */
static call_t *begin(int op, MPI_Comm comm, MPI_Datatype type) {
  if (g_cfg.mode == M_NONE || !mode_applies(op) || !op_selected(op)) return NULL;
  if (comm == MPI_COMM_NULL || is_control(comm)) return NULL;
  int inter = 0, size = 0;
  MPI_Aint lb = 0, extent = 0;
  if (op != OP_SEND && (PMPI_Comm_test_inter(comm, &inter) != MPI_SUCCESS || inter)) return NULL;
  if (PMPI_Type_size(type, &size) != MPI_SUCCESS || size <= 0) return NULL;
  if (PMPI_Type_get_extent(type, &lb, &extent) != MPI_SUCCESS || lb != 0 || extent != size) return NULL;
  if (g_cfg.mode == M_NEGZERO && size != 2 && size != 4) return NULL;

  long index = atomic_fetch_add(&g_calls, 1);
  int selected = rank_selected() && (g_cfg.call < 0 || g_cfg.call == index);
  /* wrong-shard replaces the collective itself, so every rank must take the same path whatever the
   * filters; stale must observe the calls before the selected one to have something to replay. */
  int observe = g_cfg.mode == M_STALE && rank_selected() && index < g_cfg.call;
  if (!selected && !observe && g_cfg.mode != M_WRONG_SHARD) return NULL;

  call_t *c = calloc(1, sizeof *c);
  c->op = op;
  c->comm = comm;
  c->type = type;
  c->es = (size_t)size;
  c->index = index;
  c->selected = selected;
  return c;
}

static void set_blocks(call_t *c, void *buf, int nblocks, int count) {
  c->base = buf;
  c->nspan = nblocks;
  c->span = calloc((size_t)nblocks, sizeof *c->span);
  for (int i = 0; i < nblocks; ++i) c->span[i] = (span_t){(size_t)i * (size_t)count * c->es, (size_t)count * c->es};
}

static void set_vblocks(call_t *c, void *buf, int nblocks, const int counts[], const int displs[]) {
  c->base = buf;
  c->nspan = nblocks;
  c->span = calloc((size_t)nblocks, sizeof *c->span);
  for (int i = 0; i < nblocks; ++i) c->span[i] = (span_t){(size_t)displs[i] * c->es, (size_t)counts[i] * c->es};
}

static int comm_size(MPI_Comm comm) {
  int n = 0;
  PMPI_Comm_size(comm, &n);
  return n;
}

static int comm_rank(MPI_Comm comm) {
  int r = 0;
  PMPI_Comm_rank(comm, &r);
  return r;
}

/* ---- the output as one byte sequence ---------------------------------------------------------- */

static size_t out_bytes(const call_t *c) {
  size_t t = 0;
  for (int i = 0; i < c->nspan; ++i) t += c->span[i].len;
  return t;
}

/* Counts the bytes that differ, then copies (src and dst may overlap). */
static size_t overwrite(unsigned char *dst, const unsigned char *src, size_t n) {
  size_t changed = 0;
  for (size_t i = 0; i < n; ++i) changed += dst[i] != src[i];
  memmove(dst, src, n);
  return changed;
}

/* Moves n bytes between buf and output bytes [at, at+n) of the concatenated spans; when writing,
 * returns how many bytes changed. */
static size_t transfer(call_t *c, size_t at, unsigned char *buf, size_t n, int to_output) {
  size_t changed = 0, start = 0;
  for (int i = 0; i < c->nspan && n; ++i) {
    size_t len = c->span[i].len;
    if (at < start + len) {
      size_t skip = at - start, k = len - skip < n ? len - skip : n;
      unsigned char *p = c->base + c->span[i].off + skip;
      if (to_output)
        changed += overwrite(p, buf, k);
      else
        memcpy(buf, p, k);
      buf += k, at += k, n -= k;
    }
    start += len;
  }
  return changed;
}

static unsigned char *read_out(call_t *c, size_t at, size_t n) {
  unsigned char *buf = malloc(n ? n : 1);
  transfer(c, at, buf, n, 0);
  return buf;
}

static size_t write_out(call_t *c, size_t at, const unsigned char *src, size_t n) {
  return transfer(c, at, (unsigned char *)src, n, 1);
}

/* ---- the modes -------------------------------------------------------------------------------- */

static size_t do_rotate(call_t *c) {
  size_t t = out_bytes(c);
  if (!t) return 0;
  size_t s = (g_cfg.bytes >= 0 ? (size_t)g_cfg.bytes : kShiftElems * c->es) % t;
  if (!s) return 0;
  unsigned char *old = read_out(c, 0, t);
  size_t changed = write_out(c, 0, old + s, t - s) + write_out(c, t - s, old, s);
  free(old);
  return changed;
}

static size_t do_offset(call_t *c) {
  size_t t = out_bytes(c), s;
  if (g_cfg.bytes >= 0)
    s = (size_t)g_cfg.bytes;
  else if (is_block_output(c->op))
    s = c->span[0].len + c->es;
  else
    s = t / c->es / 2 * c->es;
  if (!s || s >= t) return 0;
  unsigned char *tail = read_out(c, s, t - s);
  size_t changed = write_out(c, 0, tail, t - s);
  free(tail);
  return changed;
}

/* The two regions swap-blocks and dup-block act on: the first min(count0, count1) elements of the
 * blocks from ranks 0 and 1, or elements [0,64) and [64,128) of a single buffer. */
static size_t block_pair(const call_t *c, unsigned char **a, unsigned char **b) {
  if (is_block_output(c->op)) {
    if (c->nspan < 2) return 0;
    *a = c->base + c->span[0].off;
    *b = c->base + c->span[1].off;
    return c->span[0].len < c->span[1].len ? c->span[0].len : c->span[1].len;
  }
  size_t half = kShiftElems * c->es;
  if (c->span[0].len < 2 * half) return 0;
  *a = c->base + c->span[0].off;
  *b = *a + half;
  return half;
}

static size_t do_swap_blocks(call_t *c) {
  unsigned char *a, *b;
  size_t n = block_pair(c, &a, &b);
  if (!n) return 0;
  unsigned char *first = malloc(n);
  memcpy(first, a, n);
  size_t changed = overwrite(a, b, n) + overwrite(b, first, n);
  free(first);
  return changed;
}

static size_t do_dup_block(call_t *c) {
  unsigned char *a, *b;
  size_t n = block_pair(c, &a, &b);
  return n ? overwrite(b, a, n) : 0;
}

static size_t do_bitflip(call_t *c) {
  size_t t = out_bytes(c);
  size_t at = g_cfg.bytes >= 0 ? (size_t)g_cfg.bytes : t / c->es / 2 * c->es;
  if (at >= t) return 0;
  unsigned char byte;
  transfer(c, at, &byte, 1, 0);
  byte ^= 1u << 3;
  return write_out(c, at, &byte, 1);
}

static size_t do_negzero(call_t *c) {
  size_t changed = 0;
  for (int i = 0; i < c->nspan; ++i) {
    unsigned char *p = c->base + c->span[i].off;
    for (size_t j = 0; j + c->es <= c->span[i].len; j += c->es) {
      uint32_t v = 0;
      memcpy(&v, p + j, c->es);
      if (v) continue;
      /* The sign bit as a native integer, so the byte it lives in does not depend on endianness. */
      if (c->es == 4) {
        uint32_t neg = UINT32_C(0x80000000);
        memcpy(p + j, &neg, 4);
      } else {
        uint16_t neg = UINT16_C(0x8000);
        memcpy(p + j, &neg, 2);
      }
      ++changed;
    }
  }
  return changed;
}

static size_t do_truncate(call_t *c) {
  size_t changed = 0, start = 0;
  for (int i = 0; i < c->nspan; ++i) {
    size_t len = c->span[i].len, tail = len / c->es / 2 * c->es, from = len - tail;
    changed += overwrite(c->base + c->span[i].off + from, c->saved + start + from, tail);
    start += len;
  }
  return changed;
}

static size_t do_stale(call_t *c) {
  size_t t = out_bytes(c), changed = 0;
  if (!t) return 0;
  unsigned char *now = read_out(c, 0, t);
  pthread_mutex_lock(&g_mu);
  stale_t *s = g_stale;
  while (s && !(s->op == c->op && s->comm == c->comm && s->bytes == t)) s = s->next;
  if (!s) {
    s = calloc(1, sizeof *s);
    *s = (stale_t){c->op, c->comm, t, NULL, g_stale};
    g_stale = s;
  }
  if (s->data && c->selected) changed = write_out(c, 0, s->data, t);
  free(s->data);
  s->data = now;
  pthread_mutex_unlock(&g_mu);
  return changed;
}

/* The own shard first (what a correct reduce-scatter delivers), so that the count of changed bytes
 * is against the true result, and unselected ranks get exactly that. */
static size_t do_wrong_shard(call_t *c) {
  if (!c->full) return 0;
  size_t len = c->span[0].len;
  memcpy(c->base, c->full + (size_t)c->own_shard * len, len);
  return c->selected ? overwrite(c->base, c->full + (size_t)c->wrong_shard * len, len) : 0;
}

static size_t apply(call_t *c) {
  switch (g_cfg.mode) {
    case M_ROTATE: return do_rotate(c);
    case M_OFFSET: return do_offset(c);
    case M_WRONG_SHARD: return do_wrong_shard(c);
    case M_SWAP_BLOCKS: return do_swap_blocks(c);
    case M_DUP_BLOCK: return do_dup_block(c);
    case M_STALE: return do_stale(c);
    case M_BITFLIP: return do_bitflip(c);
    case M_NEGZERO: return do_negzero(c);
    case M_TRUNCATE: return do_truncate(c);
    default: return 0;
  }
}

/* ---- call lifecycle --------------------------------------------------------------------------- */

static void free_call(call_t *c) {
  free(c->span);
  free(c->saved);
  free(c->full);
  free(c);
}

/* Work that must happen before MPI writes the output. */
static void prepare(call_t *c) {
  if (g_cfg.mode == M_TRUNCATE) c->saved = read_out(c, 0, out_bytes(c));
}

/* Reroutes a reduce-scatter into an allreduce of all n shards, whose result holds the shard of
 * every rank. Returns the allreduce's count, or -1 when it does not fit an int (same on all ranks,
 * so they all fall back to the real reduce-scatter together). */
static int reroute_shards(call_t *c, int recvcount) {
  int n = comm_size(c->comm), me = comm_rank(c->comm);
  if ((long long)n * recvcount > INT_MAX) return -1;
  c->full = malloc((size_t)n * (size_t)recvcount * c->es + 1);
  c->own_shard = me;
  c->wrong_shard = (me + 1) % n;
  return n * recvcount;
}

/* After MPI completed the call: corrupt, report, forget. st is needed for receives only. */
static void complete(call_t *c, const MPI_Status *st) {
  if (c->op == OP_SEND) {
    int n = 0, cancelled = 0;
    PMPI_Test_cancelled(st, &cancelled);
    if (cancelled || PMPI_Get_count(st, c->type, &n) != MPI_SUCCESS || n == MPI_UNDEFINED) n = 0;
    c->span[0].len = (size_t)n * c->es;
  }
  size_t changed = apply(c);
  if (changed) {
    if (atomic_fetch_add(&g_reports, 1) < kMaxReports)
      fprintf(stderr, "pmpi_fault: rank %d corrupted %s (%s, %zu bytes) call %ld\n", g_world_rank,
              k_op_names[c->op], k_mode_names[g_cfg.mode], changed, c->index);
  }
  free_call(c);
}

static int finish_blocking(call_t *c, int rc, const MPI_Status *st) {
  if (rc == MPI_SUCCESS)
    complete(c, st);
  else
    free_call(c);
  return rc;
}

static int track(call_t *c, int rc, const MPI_Request *req) {
  if (rc != MPI_SUCCESS) {
    free_call(c);
    return rc;
  }
  c->req = *req;
  pthread_mutex_lock(&g_mu);
  c->next = g_pending;
  g_pending = c;
  pthread_mutex_unlock(&g_mu);
  return rc;
}

/* The records of reqs[0..n), looked up before MPI completes them (and sets them to
 * MPI_REQUEST_NULL); NULL when none of them is tracked. The records found are claimed until
 * settle() or release(): once MPI has completed a request, it may hand the same handle to a new
 * request of another thread before this one has settled the record, and that thread's lookup must
 * not find (and settle) the old record. */
static call_t **lookup(int n, const MPI_Request reqs[]) {
  if (g_cfg.mode == M_NONE || n <= 0) return NULL;
  call_t **found = NULL;
  pthread_mutex_lock(&g_mu);
  for (int i = 0; g_pending && i < n; ++i) {
    if (reqs[i] == MPI_REQUEST_NULL) continue;
    call_t *c = g_pending;
    while (c && (c->claimed || c->req != reqs[i])) c = c->next;
    if (!c) continue;
    if (!found) found = calloc((size_t)n, sizeof *found);
    c->claimed = 1;
    found[i] = c;
  }
  pthread_mutex_unlock(&g_mu);
  return found;
}

/* The request of *slot has completed (ok) or MPI dropped it: forget its record, after corrupting
 * the output when ok. */
static void settle(call_t **slot, int ok, const MPI_Status *st) {
  call_t *c = *slot;
  if (!c) return;
  *slot = NULL;
  pthread_mutex_lock(&g_mu);
  call_t **p = &g_pending;
  while (*p != c) p = &(*p)->next;
  *p = c->next;
  pthread_mutex_unlock(&g_mu);
  if (ok)
    complete(c, st);
  else
    free_call(c);
}

/* Unclaims the records whose requests are still in flight. */
static void release(call_t **found, int n) {
  pthread_mutex_lock(&g_mu);
  for (int i = 0; i < n; ++i)
    if (found[i]) found[i]->claimed = 0;
  pthread_mutex_unlock(&g_mu);
  free(found);
}

static MPI_Status *status_array(MPI_Status *user, int n) {
  return user == MPI_STATUSES_IGNORE ? calloc((size_t)n, sizeof(MPI_Status)) : user;
}

/* ---- environment ------------------------------------------------------------------------------ */

static pthread_once_t g_parsed = PTHREAD_ONCE_INIT;

static void after_init(int rc) {
  if (rc != MPI_SUCCESS || g_cfg.mode == M_NONE) return;
  int size;
  PMPI_Comm_rank(MPI_COMM_WORLD, &g_world_rank);
  PMPI_Comm_size(MPI_COMM_WORLD, &size);
  if (g_cfg.rank >= size) bad_spec(getenv("DTBENCH_PMPI_FAULT"), "rank= is not below the world size", "");
}

int MPI_Init(int *argc, char ***argv) {
  pthread_once(&g_parsed, parse_config);
  int rc = PMPI_Init(argc, argv);
  after_init(rc);
  return rc;
}

int MPI_Init_thread(int *argc, char ***argv, int required, int *provided) {
  pthread_once(&g_parsed, parse_config);
  int rc = PMPI_Init_thread(argc, argv, required, provided);
  after_init(rc);
  return rc;
}

int MPI_Finalize(void) {
  if (g_cfg.mode != M_NONE && rank_selected() && atomic_load(&g_reports) == 0)
    fprintf(stderr, "pmpi_fault: rank %d: %s never applied\n", g_world_rank, k_mode_names[g_cfg.mode]);
  pthread_mutex_lock(&g_mu);
  while (g_stale) {
    stale_t *s = g_stale;
    g_stale = s->next;
    free(s->data);
    free(s);
  }
  pthread_mutex_unlock(&g_mu);
  return PMPI_Finalize();
}

/* A freed handle can come back for a new communicator, which must not replay the old one's data. */
int MPI_Comm_free(MPI_Comm *comm) {
  MPI_Comm gone = *comm;
  pthread_mutex_lock(&g_mu);
  for (stale_t **p = &g_stale; *p;) {
    stale_t *s = *p;
    if (s->comm != gone) {
      p = &s->next;
      continue;
    }
    *p = s->next;
    free(s->data);
    free(s);
  }
  pthread_mutex_unlock(&g_mu);
  return PMPI_Comm_free(comm);
}

/* ---- collectives ------------------------------------------------------------------------------ */

int MPI_Allreduce(const void *sendbuf, void *recvbuf, int count, MPI_Datatype type, MPI_Op op, MPI_Comm comm) {
  call_t *c = begin(OP_ALLREDUCE, comm, type);
  if (!c) return PMPI_Allreduce(sendbuf, recvbuf, count, type, op, comm);
  set_blocks(c, recvbuf, 1, count);
  prepare(c);
  return finish_blocking(c, PMPI_Allreduce(sendbuf, recvbuf, count, type, op, comm), NULL);
}

int MPI_Iallreduce(const void *sendbuf, void *recvbuf, int count, MPI_Datatype type, MPI_Op op, MPI_Comm comm,
                   MPI_Request *req) {
  call_t *c = begin(OP_ALLREDUCE, comm, type);
  if (!c) return PMPI_Iallreduce(sendbuf, recvbuf, count, type, op, comm, req);
  set_blocks(c, recvbuf, 1, count);
  prepare(c);
  return track(c, PMPI_Iallreduce(sendbuf, recvbuf, count, type, op, comm, req), req);
}

int MPI_Reduce_scatter_block(const void *sendbuf, void *recvbuf, int recvcount, MPI_Datatype type, MPI_Op op,
                             MPI_Comm comm) {
  call_t *c = begin(OP_REDUCE_SCATTER, comm, type);
  if (!c) return PMPI_Reduce_scatter_block(sendbuf, recvbuf, recvcount, type, op, comm);
  set_blocks(c, recvbuf, 1, recvcount);
  prepare(c);
  int total = g_cfg.mode == M_WRONG_SHARD ? reroute_shards(c, recvcount) : -1;
  if (total >= 0) {
    const void *input = sendbuf == MPI_IN_PLACE ? recvbuf : sendbuf;
    return finish_blocking(c, PMPI_Allreduce(input, c->full, total, type, op, comm), NULL);
  }
  return finish_blocking(c, PMPI_Reduce_scatter_block(sendbuf, recvbuf, recvcount, type, op, comm), NULL);
}

int MPI_Ireduce_scatter_block(const void *sendbuf, void *recvbuf, int recvcount, MPI_Datatype type, MPI_Op op,
                              MPI_Comm comm, MPI_Request *req) {
  call_t *c = begin(OP_REDUCE_SCATTER, comm, type);
  if (!c) return PMPI_Ireduce_scatter_block(sendbuf, recvbuf, recvcount, type, op, comm, req);
  set_blocks(c, recvbuf, 1, recvcount);
  prepare(c);
  int total = g_cfg.mode == M_WRONG_SHARD ? reroute_shards(c, recvcount) : -1;
  if (total >= 0) {
    const void *input = sendbuf == MPI_IN_PLACE ? recvbuf : sendbuf;
    return track(c, PMPI_Iallreduce(input, c->full, total, type, op, comm, req), req);
  }
  return track(c, PMPI_Ireduce_scatter_block(sendbuf, recvbuf, recvcount, type, op, comm, req), req);
}

int MPI_Allgather(const void *sendbuf, int sendcount, MPI_Datatype sendtype, void *recvbuf, int recvcount,
                  MPI_Datatype recvtype, MPI_Comm comm) {
  call_t *c = begin(OP_ALLGATHER, comm, recvtype);
  if (!c) return PMPI_Allgather(sendbuf, sendcount, sendtype, recvbuf, recvcount, recvtype, comm);
  set_blocks(c, recvbuf, comm_size(comm), recvcount);
  prepare(c);
  return finish_blocking(c, PMPI_Allgather(sendbuf, sendcount, sendtype, recvbuf, recvcount, recvtype, comm),
                         NULL);
}

int MPI_Iallgather(const void *sendbuf, int sendcount, MPI_Datatype sendtype, void *recvbuf, int recvcount,
                   MPI_Datatype recvtype, MPI_Comm comm, MPI_Request *req) {
  call_t *c = begin(OP_ALLGATHER, comm, recvtype);
  if (!c) return PMPI_Iallgather(sendbuf, sendcount, sendtype, recvbuf, recvcount, recvtype, comm, req);
  set_blocks(c, recvbuf, comm_size(comm), recvcount);
  prepare(c);
  return track(c, PMPI_Iallgather(sendbuf, sendcount, sendtype, recvbuf, recvcount, recvtype, comm, req), req);
}

int MPI_Allgatherv(const void *sendbuf, int sendcount, MPI_Datatype sendtype, void *recvbuf, const int recvcounts[],
                   const int displs[], MPI_Datatype recvtype, MPI_Comm comm) {
  call_t *c = begin(OP_ALLGATHERV, comm, recvtype);
  if (!c) return PMPI_Allgatherv(sendbuf, sendcount, sendtype, recvbuf, recvcounts, displs, recvtype, comm);
  set_vblocks(c, recvbuf, comm_size(comm), recvcounts, displs);
  prepare(c);
  return finish_blocking(
      c, PMPI_Allgatherv(sendbuf, sendcount, sendtype, recvbuf, recvcounts, displs, recvtype, comm), NULL);
}

int MPI_Iallgatherv(const void *sendbuf, int sendcount, MPI_Datatype sendtype, void *recvbuf, const int recvcounts[],
                    const int displs[], MPI_Datatype recvtype, MPI_Comm comm, MPI_Request *req) {
  call_t *c = begin(OP_ALLGATHERV, comm, recvtype);
  if (!c) return PMPI_Iallgatherv(sendbuf, sendcount, sendtype, recvbuf, recvcounts, displs, recvtype, comm, req);
  set_vblocks(c, recvbuf, comm_size(comm), recvcounts, displs);
  prepare(c);
  return track(c, PMPI_Iallgatherv(sendbuf, sendcount, sendtype, recvbuf, recvcounts, displs, recvtype, comm, req),
               req);
}

int MPI_Alltoall(const void *sendbuf, int sendcount, MPI_Datatype sendtype, void *recvbuf, int recvcount,
                 MPI_Datatype recvtype, MPI_Comm comm) {
  call_t *c = begin(OP_ALLTOALL, comm, recvtype);
  if (!c) return PMPI_Alltoall(sendbuf, sendcount, sendtype, recvbuf, recvcount, recvtype, comm);
  set_blocks(c, recvbuf, comm_size(comm), recvcount);
  prepare(c);
  return finish_blocking(c, PMPI_Alltoall(sendbuf, sendcount, sendtype, recvbuf, recvcount, recvtype, comm),
                         NULL);
}

int MPI_Ialltoall(const void *sendbuf, int sendcount, MPI_Datatype sendtype, void *recvbuf, int recvcount,
                  MPI_Datatype recvtype, MPI_Comm comm, MPI_Request *req) {
  call_t *c = begin(OP_ALLTOALL, comm, recvtype);
  if (!c) return PMPI_Ialltoall(sendbuf, sendcount, sendtype, recvbuf, recvcount, recvtype, comm, req);
  set_blocks(c, recvbuf, comm_size(comm), recvcount);
  prepare(c);
  return track(c, PMPI_Ialltoall(sendbuf, sendcount, sendtype, recvbuf, recvcount, recvtype, comm, req), req);
}

int MPI_Alltoallv(const void *sendbuf, const int sendcounts[], const int sdispls[], MPI_Datatype sendtype,
                  void *recvbuf, const int recvcounts[], const int rdispls[], MPI_Datatype recvtype, MPI_Comm comm) {
  call_t *c = begin(OP_ALLTOALLV, comm, recvtype);
  if (!c)
    return PMPI_Alltoallv(sendbuf, sendcounts, sdispls, sendtype, recvbuf, recvcounts, rdispls, recvtype, comm);
  set_vblocks(c, recvbuf, comm_size(comm), recvcounts, rdispls);
  prepare(c);
  return finish_blocking(
      c, PMPI_Alltoallv(sendbuf, sendcounts, sdispls, sendtype, recvbuf, recvcounts, rdispls, recvtype, comm), NULL);
}

int MPI_Ialltoallv(const void *sendbuf, const int sendcounts[], const int sdispls[], MPI_Datatype sendtype,
                   void *recvbuf, const int recvcounts[], const int rdispls[], MPI_Datatype recvtype, MPI_Comm comm,
                   MPI_Request *req) {
  call_t *c = begin(OP_ALLTOALLV, comm, recvtype);
  if (!c)
    return PMPI_Ialltoallv(sendbuf, sendcounts, sdispls, sendtype, recvbuf, recvcounts, rdispls, recvtype, comm,
                           req);
  set_vblocks(c, recvbuf, comm_size(comm), recvcounts, rdispls);
  prepare(c);
  return track(
      c, PMPI_Ialltoallv(sendbuf, sendcounts, sdispls, sendtype, recvbuf, recvcounts, rdispls, recvtype, comm, req),
      req);
}

/* Only the root receives: other ranks are left alone and not counted. */
int MPI_Gatherv(const void *sendbuf, int sendcount, MPI_Datatype sendtype, void *recvbuf, const int recvcounts[],
                const int displs[], MPI_Datatype recvtype, int root, MPI_Comm comm) {
  call_t *c = g_cfg.mode != M_NONE && comm_rank(comm) == root ? begin(OP_GATHERV, comm, recvtype) : NULL;
  if (!c) return PMPI_Gatherv(sendbuf, sendcount, sendtype, recvbuf, recvcounts, displs, recvtype, root, comm);
  set_vblocks(c, recvbuf, comm_size(comm), recvcounts, displs);
  prepare(c);
  return finish_blocking(
      c, PMPI_Gatherv(sendbuf, sendcount, sendtype, recvbuf, recvcounts, displs, recvtype, root, comm), NULL);
}

/* The root's buffer is what it sends, not what it receives: it is left alone and not counted. */
int MPI_Bcast(void *buf, int count, MPI_Datatype type, int root, MPI_Comm comm) {
  call_t *c = g_cfg.mode != M_NONE && comm_rank(comm) != root ? begin(OP_BCAST, comm, type) : NULL;
  if (!c) return PMPI_Bcast(buf, count, type, root, comm);
  set_blocks(c, buf, 1, count);
  prepare(c);
  return finish_blocking(c, PMPI_Bcast(buf, count, type, root, comm), NULL);
}

int MPI_Ibcast(void *buf, int count, MPI_Datatype type, int root, MPI_Comm comm, MPI_Request *req) {
  call_t *c = g_cfg.mode != M_NONE && comm_rank(comm) != root ? begin(OP_BCAST, comm, type) : NULL;
  if (!c) return PMPI_Ibcast(buf, count, type, root, comm, req);
  set_blocks(c, buf, 1, count);
  prepare(c);
  return track(c, PMPI_Ibcast(buf, count, type, root, comm, req), req);
}

/* ---- point to point (op=send): what receives deliver ------------------------------------------ */

int MPI_Recv(void *buf, int count, MPI_Datatype type, int source, int tag, MPI_Comm comm, MPI_Status *status) {
  call_t *c = begin(OP_SEND, comm, type);
  if (!c) return PMPI_Recv(buf, count, type, source, tag, comm, status);
  set_blocks(c, buf, 1, count);
  prepare(c);
  MPI_Status own;
  MPI_Status *st = status == MPI_STATUS_IGNORE ? &own : status;
  return finish_blocking(c, PMPI_Recv(buf, count, type, source, tag, comm, st), st);
}

int MPI_Irecv(void *buf, int count, MPI_Datatype type, int source, int tag, MPI_Comm comm, MPI_Request *req) {
  call_t *c = begin(OP_SEND, comm, type);
  if (!c) return PMPI_Irecv(buf, count, type, source, tag, comm, req);
  set_blocks(c, buf, 1, count);
  prepare(c);
  return track(c, PMPI_Irecv(buf, count, type, source, tag, comm, req), req);
}

/* ---- completion ------------------------------------------------------------------------------- */

int MPI_Wait(MPI_Request *req, MPI_Status *status) {
  call_t **found = lookup(1, req);
  if (!found) return PMPI_Wait(req, status);
  MPI_Status own;
  MPI_Status *st = status == MPI_STATUS_IGNORE ? &own : status;
  int rc = PMPI_Wait(req, st);
  settle(&found[0], rc == MPI_SUCCESS, st);
  release(found, 1);
  return rc;
}

int MPI_Test(MPI_Request *req, int *flag, MPI_Status *status) {
  call_t **found = lookup(1, req);
  if (!found) return PMPI_Test(req, flag, status);
  MPI_Status own;
  MPI_Status *st = status == MPI_STATUS_IGNORE ? &own : status;
  int rc = PMPI_Test(req, flag, st);
  if (rc != MPI_SUCCESS || *flag) settle(&found[0], rc == MPI_SUCCESS, st);
  release(found, 1);
  return rc;
}

int MPI_Waitall(int n, MPI_Request reqs[], MPI_Status statuses[]) {
  call_t **found = lookup(n, reqs);
  if (!found) return PMPI_Waitall(n, reqs, statuses);
  MPI_Status *st = status_array(statuses, n);
  int rc = PMPI_Waitall(n, reqs, st);
  for (int i = 0; i < n; ++i) settle(&found[i], rc == MPI_SUCCESS, &st[i]);
  if (st != statuses) free(st);
  release(found, n);
  return rc;
}

int MPI_Testall(int n, MPI_Request reqs[], int *flag, MPI_Status statuses[]) {
  call_t **found = lookup(n, reqs);
  if (!found) return PMPI_Testall(n, reqs, flag, statuses);
  MPI_Status *st = status_array(statuses, n);
  int rc = PMPI_Testall(n, reqs, flag, st);
  if (rc != MPI_SUCCESS || *flag)
    for (int i = 0; i < n; ++i) settle(&found[i], rc == MPI_SUCCESS, &st[i]);
  if (st != statuses) free(st);
  release(found, n);
  return rc;
}

int MPI_Waitany(int n, MPI_Request reqs[], int *index, MPI_Status *status) {
  call_t **found = lookup(n, reqs);
  if (!found) return PMPI_Waitany(n, reqs, index, status);
  MPI_Status own;
  MPI_Status *st = status == MPI_STATUS_IGNORE ? &own : status;
  int rc = PMPI_Waitany(n, reqs, index, st);
  if (*index != MPI_UNDEFINED) settle(&found[*index], rc == MPI_SUCCESS, st);
  release(found, n);
  return rc;
}

int MPI_Testany(int n, MPI_Request reqs[], int *index, int *flag, MPI_Status *status) {
  call_t **found = lookup(n, reqs);
  if (!found) return PMPI_Testany(n, reqs, index, flag, status);
  MPI_Status own;
  MPI_Status *st = status == MPI_STATUS_IGNORE ? &own : status;
  int rc = PMPI_Testany(n, reqs, index, flag, st);
  if (*flag && *index != MPI_UNDEFINED) settle(&found[*index], rc == MPI_SUCCESS, st);
  release(found, n);
  return rc;
}

static void settle_some(call_t **found, int rc, int outcount, const int indices[], const MPI_Status st[]) {
  if (outcount == MPI_UNDEFINED) return;
  for (int k = 0; k < outcount; ++k) settle(&found[indices[k]], rc == MPI_SUCCESS, &st[k]);
}

int MPI_Waitsome(int n, MPI_Request reqs[], int *outcount, int indices[], MPI_Status statuses[]) {
  call_t **found = lookup(n, reqs);
  if (!found) return PMPI_Waitsome(n, reqs, outcount, indices, statuses);
  MPI_Status *st = status_array(statuses, n);
  int rc = PMPI_Waitsome(n, reqs, outcount, indices, st);
  settle_some(found, rc, *outcount, indices, st);
  if (st != statuses) free(st);
  release(found, n);
  return rc;
}

int MPI_Testsome(int n, MPI_Request reqs[], int *outcount, int indices[], MPI_Status statuses[]) {
  call_t **found = lookup(n, reqs);
  if (!found) return PMPI_Testsome(n, reqs, outcount, indices, statuses);
  MPI_Status *st = status_array(statuses, n);
  int rc = PMPI_Testsome(n, reqs, outcount, indices, st);
  settle_some(found, rc, *outcount, indices, st);
  if (st != statuses) free(st);
  release(found, n);
  return rc;
}

/* A freed request's handle can be reused by MPI: its record must not outlive it. */
int MPI_Request_free(MPI_Request *req) {
  call_t **found = lookup(1, req);
  int rc = PMPI_Request_free(req);
  if (found) {
    settle(&found[0], 0, NULL);
    release(found, 1);
  }
  return rc;
}

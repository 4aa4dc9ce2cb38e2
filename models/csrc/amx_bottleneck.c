/* The front of a ResNeXt bottleneck on AMX tiles in bf16: relu(bn1(conv1(x))) (a 1x1 conv) and then
 * relu(bn2(conv2(.))) (a grouped 3x3x3 conv, stride 1, padding 1, groups of 4 or 8 channels), with both
 * BatchNorms folded in by the caller. ResNeXt-101's layer1 and layer2 blocks (models/amx_bottleneck.py
 * builds and loads this file, and its docstring says what it measured).
 *
 * Why: oneDNN runs a grouped conv as a GEMM per group whose output tile is 16 channels wide, so a group
 * of 4 output channels filled a quarter of each tile; merged into groups of 32 channels (block-diagonal
 * weights) an eighth of each product was useful, a quarter for groups of 8. Here a tile row holds one
 * group's c channels at 32 / c consecutive positions of a frame row (K = 32), and the tile's 16 columns
 * are 16 / c consecutive outputs times the group's c channels. Each output reads 3 of the row's
 * positions, 3c of its 32 values: 37.5% of the products are useful for c = 4, 75% for c = 8.
 *
 * That needs each group's channels contiguous along a row ("group-major": group, row, column, channel).
 * conv1's epilogue writes its output in that form straight into a per-thread ring of three zero-padded
 * frames per group, which stays in L2 while the output frames that read it are computed: conv1's output
 * never exists in channels-last, and is never copied.
 *
 * Rows of conv2's tiles run over the padded width too (outputs past the frame's width are dropped), so a
 * tile's 16 rows are evenly strided across frame rows; positions that carry zero weights may read into the
 * next row or a slot's zeroed tail, never outside the ring.
 *
 * Layouts: x is (N, T, H, W, Cin) and y (N, T, H, W, C), bf16, channels-last NCTHW in memory. w1 holds
 * (Cin / 32) x (C / 16) tiles, w2 G x 9 tiles ((dt, dh) taps), each 16 rows of 32 bf16 in AMX's
 * pair-interleaved (VNNI) layout; b1, b2 are C floats. Threads: OpenMP, the runtime torch's own CPU ops
 * use (the library is loaded after torch), each thread on its own clips' frames.
 */
#include <immintrin.h>
#include <omp.h>
#include <stdint.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#define ARCH_REQ_XCOMP_PERM 0x1023
#define XFEATURE_XTILEDATA 18

typedef struct {
  uint8_t palette;
  uint8_t start_row;
  uint8_t reserved[14];
  uint16_t colsb[16];
  uint8_t rows[16];
} tilecfg;

/* Linux lends a process AMX's tile state only on request (0 on success); oneDNN asks too, once. */
int amx_request(void) { return (int)syscall(SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA); }

enum { BATCH_TILES = 4, TILE_ROWS = 16, TILE_ELEMS = 512, GROUP_FLOATS = BATCH_TILES * TILE_ROWS * 16 + 16 };

typedef struct {
  int N, T, H, W, C, c, G, S, R, Wp, Hp, rows, tiles;
  long plane, slot;
} geo;

static geo make_geo(int N, int T, int H, int W, int C, int c) {
  geo g;
  g.N = N; g.T = T; g.H = H; g.W = W; g.C = C; g.c = c; g.G = C / c; g.S = 16 / c;
  g.Wp = ((W + 2 + g.S - 1) / g.S) * g.S;  /* padded width: a multiple of the outputs per tile row */
  g.R = g.Wp / g.S;                          /* tile rows per frame row */
  g.Hp = H + 2;
  g.rows = H * g.R;
  g.tiles = (g.rows + TILE_ROWS - 1) / TILE_ROWS;
  g.plane = (long)g.Hp * g.Wp * c;
  /* reads of the last tile's rows (their 32 values) run past the plane by up to this much */
  long reach = ((long)g.tiles * TILE_ROWS - 1) * g.S * c + 2L * g.Wp * c + 32;
  g.slot = ((reach > g.plane ? reach : g.plane) + 32 + 31) / 32 * 32;
  return g;
}

/* Scratch for `nthreads` threads, in bytes: per thread a ring of 3 frames per group and a tile buffer. */
long scratch_bytes(int N, int T, int H, int W, int C, int c, int nthreads) {
  geo q = make_geo(N, T, H, W, C, c);
  return (long)nthreads * ((long)q.G * 3 * q.slot * 2 + (long)q.G * GROUP_FLOATS * 4 + 128);
}

static uint16_t *slot_of(uint16_t *ring, const geo *q, int group, int padded_frame) {
  return ring + ((long)group * 3 + padded_frame % 3) * q->slot;
}

/* conv1 of input frame f of clip n into every group's ring slot for padded frame f + 1 (the interior;
 * the borders stay zero). A frame's last 16 positions start at H * W - 16, overlapping the tile before:
 * those positions are written twice with the same values. */
static void conv1_frame(const uint16_t *x, const uint16_t *w1, const float *b1, uint16_t *ring, const geo *q,
                        int cin, int n, int f, float *buf) {
  int c = q->c, hw = q->H * q->W, ntiles = q->C / 16, ksteps = cin / 32;
  long rowlen = (long)q->Wp * c;
  if (f < 0 || f >= q->T) { /* the clip's padding frames: zeros */
    for (int g = 0; g < q->G; g++) {
      uint16_t *pl = slot_of(ring, q, g, f + 1);
      for (int h = 0; h < q->H; h++) memset(pl + (h + 1) * rowlen + c, 0, (long)q->W * c * 2);
    }
    return;
  }
  const uint16_t *frame = x + ((long)n * q->T + f) * hw * (long)cin;
  for (int start = 0; start < hw; start += TILE_ROWS) {
    int p0 = start + TILE_ROWS <= hw ? start : hw - TILE_ROWS;
    for (int nt0 = 0; nt0 < ntiles; nt0 += 4) {
      _tile_zero(0); _tile_zero(1); _tile_zero(2); _tile_zero(3);
      for (int k = 0; k < ksteps; k++) {
        _tile_loadd(4, frame + (long)p0 * cin + k * 32, cin * 2);
        const uint16_t *b = w1 + ((long)k * ntiles + nt0) * TILE_ELEMS;
        _tile_loadd(5, b, 64);
        _tile_dpbf16ps(0, 4, 5);
        _tile_loadd(6, b + TILE_ELEMS, 64);
        _tile_dpbf16ps(1, 4, 6);
        _tile_loadd(5, b + 2 * TILE_ELEMS, 64);
        _tile_dpbf16ps(2, 4, 5);
        _tile_loadd(6, b + 3 * TILE_ELEMS, 64);
        _tile_dpbf16ps(3, 4, 6);
      }
      _tile_stored(0, buf, 64);
      _tile_stored(1, buf + 256, 64);
      _tile_stored(2, buf + 512, 64);
      _tile_stored(3, buf + 768, 64);
      for (int j = 0; j < 4; j++) {
        int ch0 = (nt0 + j) * 16;
        __m512 bias16 = _mm512_loadu_ps(b1 + ch0);
        /* this tile's 16 channels are 16 / c groups: their slots for this frame */
        uint16_t *dst[4];
        for (int k = 0; k < 16 / c; k++) dst[k] = slot_of(ring, q, ch0 / c + k, f + 1);
        int h = p0 / q->W, w = p0 % q->W;
        for (int r = 0; r < TILE_ROWS; r++) {
          __m512 v = _mm512_add_ps(_mm512_loadu_ps(buf + j * 256 + r * 16), bias16);
          __m256i half = (__m256i)_mm512_cvtneps_pbh(_mm512_max_ps(v, _mm512_setzero_ps()));
          long at = (h + 1) * rowlen + (long)(w + 1) * c;
          if (c == 4) {
            *(uint64_t *)(dst[0] + at) = (uint64_t)_mm256_extract_epi64(half, 0);
            *(uint64_t *)(dst[1] + at) = (uint64_t)_mm256_extract_epi64(half, 1);
            *(uint64_t *)(dst[2] + at) = (uint64_t)_mm256_extract_epi64(half, 2);
            *(uint64_t *)(dst[3] + at) = (uint64_t)_mm256_extract_epi64(half, 3);
          } else {
            _mm_storeu_si128((__m128i *)(dst[0] + at), _mm256_castsi256_si128(half));
            _mm_storeu_si128((__m128i *)(dst[1] + at), _mm256_extracti128_si256(half, 1));
          }
          if (++w == q->W) { w = 0; h++; }
        }
      }
    }
  }
}

/* conv2 of output frame t of clip n (the ring holds padded frames t, t + 1, t + 2), every group, into y. */
static void conv2_frame(uint16_t *ring, const uint16_t *w2, const float *b2, uint16_t *y, const geo *q,
                        int n, int t, float *buf) {
  int c = q->c, S = q->S;
  long tstride = (long)TILE_ROWS * S * c;
  for (int tile0 = 0; tile0 < q->tiles; tile0 += BATCH_TILES) {
    int nt = q->tiles - tile0 < BATCH_TILES ? q->tiles - tile0 : BATCH_TILES;
    for (int g = 0; g < q->G; g++) {
      _tile_zero(0); _tile_zero(1); _tile_zero(2); _tile_zero(3);
      for (int dt = 0; dt < 3; dt++) {
        const uint16_t *pl = slot_of(ring, q, g, t + dt);
        for (int dh = 0; dh < 3; dh++) {
          _tile_loadd(6, w2 + (long)(g * 9 + dt * 3 + dh) * TILE_ELEMS, 64);
          const uint16_t *a = pl + (long)dh * q->Wp * c + (long)tile0 * tstride;
          _tile_loadd(4, a, S * c * 2);
          _tile_dpbf16ps(0, 4, 6);
          if (nt > 1) { _tile_loadd(5, a + tstride, S * c * 2); _tile_dpbf16ps(1, 5, 6); }
          if (nt > 2) { _tile_loadd(4, a + 2 * tstride, S * c * 2); _tile_dpbf16ps(2, 4, 6); }
          if (nt > 3) { _tile_loadd(5, a + 3 * tstride, S * c * 2); _tile_dpbf16ps(3, 5, 6); }
        }
      }
      float *gb = buf + (long)g * GROUP_FLOATS;  /* padded stride: no 4 KiB aliasing in the epilogue */
      _tile_stored(0, gb, 64);
      _tile_stored(1, gb + 256, 64);
      _tile_stored(2, gb + 512, 64);
      _tile_stored(3, gb + 768, 64);
    }
    /* Per output position, its C channels gathered from the groups' tiles: bias, ReLU, bf16, then 64-byte
     * stores of 32 channels. */
    for (int i = 0; i < nt * TILE_ROWS; i++) {
      int row = tile0 * TILE_ROWS + i;
      if (row >= q->rows) break;
      int h = row / q->R, r = row % q->R;
      for (int s = 0; s < S; s++) {
        int w = S * r + s;
        if (w >= q->W) break;
        uint16_t *out = y + ((((long)n * q->T + t) * q->H + h) * q->W + w) * q->C;
        for (int v = 0; v < q->C / 32; v++) {
          __m512 lo, hi;
          if (c == 4) {
            const float *p0 = buf + (long)(v * 8) * GROUP_FLOATS + i * 16 + s * 4;
            lo = _mm512_castps128_ps512(_mm_loadu_ps(p0));
            lo = _mm512_insertf32x4(lo, _mm_loadu_ps(p0 + GROUP_FLOATS), 1);
            lo = _mm512_insertf32x4(lo, _mm_loadu_ps(p0 + 2 * GROUP_FLOATS), 2);
            lo = _mm512_insertf32x4(lo, _mm_loadu_ps(p0 + 3 * GROUP_FLOATS), 3);
            hi = _mm512_castps128_ps512(_mm_loadu_ps(p0 + 4 * GROUP_FLOATS));
            hi = _mm512_insertf32x4(hi, _mm_loadu_ps(p0 + 5 * GROUP_FLOATS), 1);
            hi = _mm512_insertf32x4(hi, _mm_loadu_ps(p0 + 6 * GROUP_FLOATS), 2);
            hi = _mm512_insertf32x4(hi, _mm_loadu_ps(p0 + 7 * GROUP_FLOATS), 3);
          } else {
            const float *p0 = buf + (long)(v * 4) * GROUP_FLOATS + i * 16 + s * 8;
            lo = _mm512_castps256_ps512(_mm256_loadu_ps(p0));
            lo = _mm512_insertf32x8(lo, _mm256_loadu_ps(p0 + GROUP_FLOATS), 1);
            hi = _mm512_castps256_ps512(_mm256_loadu_ps(p0 + 2 * GROUP_FLOATS));
            hi = _mm512_insertf32x8(hi, _mm256_loadu_ps(p0 + 3 * GROUP_FLOATS), 1);
          }
          lo = _mm512_max_ps(_mm512_add_ps(lo, _mm512_loadu_ps(b2 + v * 32)), _mm512_setzero_ps());
          hi = _mm512_max_ps(_mm512_add_ps(hi, _mm512_loadu_ps(b2 + v * 32 + 16)), _mm512_setzero_ps());
          _mm512_storeu_si512((void *)(out + v * 32), (__m512i)_mm512_cvtne2ps_pbh(hi, lo));
        }
      }
    }
  }
}

/* y = relu(conv2(relu(conv1(x) + b1)) + b2) for every frame of every clip; `scratch`: scratch_bytes(...,
 * nthreads) bytes. The threads split the clips' frames into runs of consecutive frames; each run computes
 * conv1 of a frame once, just before the first output frame that reads it. */
void bottleneck_front(const uint16_t *x, const uint16_t *w1, const float *b1, const uint16_t *w2,
                      const float *b2, uint16_t *y, char *scratch, int N, int T, int H, int W, int cin, int C,
                      int c, int nthreads) {
  geo q = make_geo(N, T, H, W, C, c);
  long per_thread = scratch_bytes(N, T, H, W, C, c, 1);
  int units = N * T;
#pragma omp parallel num_threads(nthreads)
  {
    int tid = omp_get_thread_num(), nth = omp_get_num_threads();
    int u0 = (int)((long)units * tid / nth), u1 = (int)((long)units * (tid + 1) / nth);
    char *mine = (char *)(((uintptr_t)(scratch + per_thread * tid) + 63) & ~(uintptr_t)63);
    uint16_t *ring = (uint16_t *)mine;
    float *buf = (float *)(mine + (long)q.G * 3 * q.slot * 2);
    if (u0 < u1) {
      tilecfg cfg;
      memset(&cfg, 0, sizeof cfg);
      cfg.palette = 1;
      for (int i = 0; i < 8; i++) { cfg.colsb[i] = 64; cfg.rows[i] = 16; }
      /* Zero borders and tails, never written after: zero weights meet zeros there, not garbage (0 x NaN). */
      memset(ring, 0, (long)q.G * 3 * q.slot * 2);
      _tile_loadconfig(&cfg);
      for (int u = u0; u < u1; u++) {
        int n = u / T, t = u % T;
        if (u == u0 || t == 0) {
          conv1_frame(x, w1, b1, ring, &q, cin, n, t - 1, buf);
          conv1_frame(x, w1, b1, ring, &q, cin, n, t, buf);
        }
        conv1_frame(x, w1, b1, ring, &q, cin, n, t + 1, buf);
        conv2_frame(ring, w2, b2, y, &q, n, t, buf);
      }
      _tile_release();
    }
  }
}

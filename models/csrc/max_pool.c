/* A max pool of non-negative 16-bit floats (bf16 or fp16, read as int16: for values of one sign the bit
 * patterns sort as the values do) in one pass: each output row is the maximum of its window's input rows,
 * taken in a row buffer that stays in L1, then of each output's columns in that buffer.
 * models/nonneg_pool.py builds and loads this file, and says what it measured against the separable
 * torch passes it replaces (those wrote and read back the whole tensor once per axis).
 *
 * Layout: x is (N, T, H, W, C) and y (N, To, Ho, Wo, C), channels-last in memory; a 2D pool is T = 1 with
 * a temporal kernel of 1. Windows are centred (kernel = 2 * padding + 1 on H and W, and on T unless it is
 * 1), so each output's centre tap is inside the input; taps in the padding are left out of the maximum.
 * Threads: OpenMP, torch's own runtime (the library is loaded after torch), each on consecutive output
 * rows, so the input rows two outputs share are read from cache.
 */
#include <omp.h>
#include <stdint.h>
#include <string.h>

static inline void max_into(int16_t *restrict acc, const int16_t *restrict src, long n) {
  for (long i = 0; i < n; i++) acc[i] = acc[i] > src[i] ? acc[i] : src[i];
}

/* The int16 elements of scratch that pool_nonneg16 needs for `nthreads` threads. */
long pool_scratch_elements(int W, int C, int nthreads) { return (long)nthreads * (((long)W * C + 31) / 32 * 32); }

void pool_nonneg16(const int16_t *restrict x, int16_t *restrict y, int16_t *restrict scratch, int N, int T,
                   int H, int W, int C, int kt, int st, int pt, int k, int s, int p, int To, int Ho, int Wo,
                   int nthreads) {
  long line = (long)W * C, rows = (long)N * To * Ho;
#pragma omp parallel num_threads(nthreads)
  {
    int16_t *restrict acc = scratch + (long)omp_get_thread_num() * ((line + 31) / 32 * 32);
#pragma omp for schedule(static)
    for (long u = 0; u < rows; u++) {
      int ho = (int)(u % Ho), to = (int)(u / Ho % To), n = (int)(u / Ho / To);
      int first = 1;
      for (int dt = 0; dt < kt; dt++) {
        int ti = to * st - pt + dt;
        if (ti < 0 || ti >= T) continue;
        for (int dh = 0; dh < k; dh++) {
          int hi = ho * s - p + dh;
          if (hi < 0 || hi >= H) continue;
          const int16_t *src = x + (((long)n * T + ti) * H + hi) * line;
          if (first) memcpy(acc, src, line * sizeof *acc);
          else max_into(acc, src, line);
          first = 0;
        }
      }
      int16_t *out = y + u * Wo * (long)C;
      for (int wo = 0; wo < Wo; wo++) {
        int lo = wo * s - p > 0 ? wo * s - p : 0, hi = wo * s - p + k - 1 < W ? wo * s - p + k - 1 : W - 1;
        int16_t *restrict o = out + (long)wo * C;
        memcpy(o, acc + (long)wo * s * C, C * sizeof *o); /* the centre tap */
        for (int w = lo; w <= hi; w++) max_into(o, acc + (long)w * C, C);
      }
    }
  }
}

/* A transposing copy of a matrix of 16-bit values (bf16 or fp16, moved as bits): dst (C x R) = src (R x C)
 * transposed, both contiguous. models/gemm_layout.py builds and loads this file and says what it measured
 * against the compiled Inductor kernel it replaces.
 *
 * The matrix goes in tiles of 32 x 32 values: 32 rows of the source, one 512-bit register each, are
 * transposed in the registers and stored as 32 rows of the destination. The transpose swaps the
 * off-diagonal blocks of every 2b x 2b block, b = 16, 8, 4, 2, 1: rows i and i + b (i with bit b clear)
 * trade row i's values at columns with bit b set for row i + b's at the columns b lower. Each swap is two
 * two-source permutes (32-bit lanes where b >= 2 values, 16-bit lanes for b = 1). The edges, where R or C
 * is not a multiple of 32, are copied value by value. The tiles are written with streaming stores, which
 * write whole cache lines without reading them first: the destination (16 MB for a 2048 x 4096 gradient)
 * is read next by a GEMM from memory anyway, and a plain store would read every line of it before
 * writing it, half again the memory traffic.
 * Threads: OpenMP, torch's own runtime (the library is loaded after torch), each on whole bands of 32
 * source rows, so a thread writes 64-byte pieces of every destination row and the threads never share a
 * cache line of the destination except at the edges of their bands.
 */
#include <immintrin.h>
#include <omp.h>
#include <stdint.h>

/* Permute indices for the swap of block size b (in values): `low` makes the new row i, `high` the new
 * row i + b; an index >= the lane count selects from the second source (row i + b). */
static void swap_indices(int b, int lanes, int *low, int *high) {
  for (int k = 0; k < lanes; k++) {
    low[k] = (k & b) ? lanes + k - b : k;
    high[k] = (k & b) ? lanes + k : k + b;
  }
}

static inline void transpose_tile(__m512i r[32], const __m512i lo32[4], const __m512i hi32[4], __m512i lo16,
                                  __m512i hi16) {
  /* b = 16, 8, 4, 2 values: 8, 4, 2, 1 lanes of 32 bits */
  for (int s = 0; s < 4; s++) {
    int b = 16 >> s;
    for (int i = 0; i < 32; i++) {
      if (i & b) continue;
      __m512i a = r[i], c = r[i + b];
      r[i] = _mm512_permutex2var_epi32(a, lo32[s], c);
      r[i + b] = _mm512_permutex2var_epi32(a, hi32[s], c);
    }
  }
  for (int i = 0; i < 32; i += 2) { /* b = 1 value */
    __m512i a = r[i], c = r[i + 1];
    r[i] = _mm512_permutex2var_epi16(a, lo16, c);
    r[i + 1] = _mm512_permutex2var_epi16(a, hi16, c);
  }
}

void transpose16(const uint16_t *restrict src, uint16_t *restrict dst, long R, long C, int nthreads) {
  int lo[32], hi[32];
  __m512i lo32[4], hi32[4], lo16, hi16;
  for (int s = 0; s < 4; s++) {
    swap_indices(8 >> s, 16, lo, hi);
    lo32[s] = _mm512_loadu_si512(lo);
    hi32[s] = _mm512_loadu_si512(hi);
  }
  {
    int16_t l16[32], h16[32];
    swap_indices(1, 32, lo, hi);
    for (int k = 0; k < 32; k++) l16[k] = (int16_t)lo[k], h16[k] = (int16_t)hi[k];
    lo16 = _mm512_loadu_si512(l16);
    hi16 = _mm512_loadu_si512(h16);
  }
  long bands = R / 32, full_cols = C / 32 * 32;
  /* Streaming stores need 64-byte aligned destinations: every tile row's is where dst is and R is a
   * multiple of 32 values. */
  int stream = (uintptr_t)dst % 64 == 0 && R % 32 == 0;
#pragma omp parallel num_threads(nthreads)
  {
#pragma omp for schedule(static)
    for (long band = 0; band < bands; band++) {
      long r0 = band * 32;
      __m512i r[32];
      for (long c0 = 0; c0 < full_cols; c0 += 32) {
        for (int i = 0; i < 32; i++) r[i] = _mm512_loadu_si512(src + (r0 + i) * C + c0);
        transpose_tile(r, lo32, hi32, lo16, hi16);
        if (stream)
          for (int i = 0; i < 32; i++) _mm512_stream_si512((void *)(dst + (c0 + i) * R + r0), r[i]);
        else
          for (int i = 0; i < 32; i++) _mm512_storeu_si512(dst + (c0 + i) * R + r0, r[i]);
      }
      for (long i = r0; i < r0 + 32; i++) /* the last C % 32 columns of the band */
        for (long j = full_cols; j < C; j++) dst[j * R + i] = src[i * C + j];
    }
    _mm_sfence(); /* each thread's streamed stores are seen before the caller reads dst */
  }
  for (long i = bands * 32; i < R; i++) /* the last R % 32 rows */
    for (long j = 0; j < C; j++) dst[j * R + i] = src[i * C + j];
}

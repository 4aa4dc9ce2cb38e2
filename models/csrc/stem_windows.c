/* The input of a folded 3D stem (models/packed.py FoldedStem) made from raw clips in one pass: uint8
 * (N, T, H, W, C) clips minus a per-channel mean, rounded to bf16, zero-padded by pw columns on each side
 * of W, each output column's kw input columns side by side (kw * C values), then zero channels up to
 * `channels`: out is (N, T, H, W_out, channels) bf16, contiguous. models/packed.py builds and loads this
 * file and says what it measured against the torch ops it replaces.
 *
 * Each input row (one n, t, h) is normalised once into a padded row buffer of (W + 2 pw) x C bf16 values
 * on the stack; an output column's window is then kw * C consecutive values of that buffer. Built with
 * AVX-512BW (where the CPU has it), 16 values are normalised at a time and a window of up to 32 channels
 * is one masked load and one masked store (the zero channels come from the load's mask); else scalar.
 * The rounding is torch's float -> bf16: to nearest, ties to even (the values are finite: u8 - mean).
 * Threads: OpenMP, torch's own runtime (the library is loaded after torch), each on consecutive rows.
 */
#include <omp.h>
#include <stdint.h>
#include <string.h>
#ifdef __AVX512BW__
#include <immintrin.h>
#endif

static inline uint16_t to_bf16(float value) {
  uint32_t bits;
  memcpy(&bits, &value, sizeof bits);
  bits += 0x7FFFu + ((bits >> 16) & 1u);
  return (uint16_t)(bits >> 16);
}

/* The most values a padded row may hold (the stack buffer's size); for wider rows, or a window wider than
 * `channels` or past the padded row, the function returns -1 and writes nothing. */
#define ROW_LIMIT 16384

int stem_windows_u8(const uint8_t *restrict clips, const float *restrict mean, uint16_t *restrict out,
                    long rows, int W, int C, int kw, int sw, int pw, int w_out, int channels, int nthreads) {
  int wide = W + 2 * pw, span = kw * C;
  if ((long)wide * C > ROW_LIMIT || span > channels || (w_out - 1) * sw + kw > wide) return -1;
#ifdef __AVX512BW__
  /* The mean of each of 16 consecutive values, for the C (<= 16) phases a row's 16-value steps go through:
   * value i of step k is channel (16 k + i) % C. */
  int vector_means = C <= 16;
  __m512 means[16];
  for (int k = 0; k < (vector_means ? C : 0); k++) {
    float m[16];
    for (int i = 0; i < 16; i++) m[i] = mean[(16 * k + i) % C];
    means[k] = _mm512_loadu_ps(m);
  }
  const __m512i one = _mm512_set1_epi32(1), half = _mm512_set1_epi32(0x7FFF);
#endif
#pragma omp parallel num_threads(nthreads)
  {
    uint16_t row[ROW_LIMIT];
    memset(row, 0, sizeof(uint16_t) * (size_t)(pw * C)); /* the pad columns stay 0 (a bf16 +0.0) */
    memset(row + (long)(pw + W) * C, 0, sizeof(uint16_t) * (size_t)(pw * C));
#pragma omp for schedule(static)
    for (long r = 0; r < rows; r++) {
      const uint8_t *src = clips + r * W * C;
      uint16_t *inside = row + pw * C;
      uint16_t *dst = out + r * w_out * (long)channels;
      int done = 0, placed = 0;
#ifdef __AVX512BW__
      if (vector_means) {
        for (; done + 16 <= W * C; done += 16) {
          __m128i bytes = _mm_loadu_si128((const __m128i *)(src + done));
          __m512 value = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(bytes));
          __m512i bits = _mm512_castps_si512(_mm512_sub_ps(value, means[(done / 16) % C]));
          __m512i odd = _mm512_and_si512(_mm512_srli_epi32(bits, 16), one);
          bits = _mm512_srli_epi32(_mm512_add_epi32(bits, _mm512_add_epi32(half, odd)), 16);
          _mm256_storeu_si256((__m256i *)(inside + done), _mm512_cvtepi32_epi16(bits));
        }
      }
      if (channels <= 32) {
        __mmask32 take = (__mmask32)((1ull << span) - 1), put = (__mmask32)((1ull << channels) - 1);
        for (int x = done; x < W * C; x++) inside[x] = to_bf16((float)src[x] - mean[x % C]);
        for (int wo = 0; wo < w_out; wo++)
          _mm512_mask_storeu_epi16(dst + (long)wo * channels, put,
                                   _mm512_maskz_loadu_epi16(take, row + (long)wo * sw * C));
        placed = w_out;
        done = W * C;
      }
#endif
      for (int x = done; x < W * C; x++) inside[x] = to_bf16((float)src[x] - mean[x % C]);
      for (int wo = placed; wo < w_out; wo++) {
        uint16_t *window = dst + (long)wo * channels;
        memcpy(window, row + (long)wo * sw * C, sizeof(uint16_t) * (size_t)span);
        for (int k = span; k < channels; k++) window[k] = 0;
      }
    }
  }
  return 0;
}

// Big-endian (most significant bit first) bit access to byte buffers, as the XOR chunk format
// lays out its bits. Header-only so that the codec's loops inline it.
//
// Both the reader and the writer work from a bit position rather than from a stateful
// cursor: one unaligned 8-byte load (or load and store) per field, no per-field bookkeeping
// beyond adding the field's length to the position. The price is slack: every access may
// touch the 8 bytes from the position's byte on, so the caller keeps that much room past the
// last bit it uses and never calls these near the real end of a buffer.
#ifndef STRATA_STORAGE_BITSTREAM_H_
#define STRATA_STORAGE_BITSTREAM_H_

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>

namespace strata {

inline uint64_t LoadBigEndian64(const uint8_t* p) {
  uint64_t x;
  std::memcpy(&x, p, sizeof(x));
  if constexpr (std::endian::native == std::endian::little) x = __builtin_bswap64(x);
  return x;
}

inline void StoreBigEndian64(uint8_t* p, uint64_t x) {
  if constexpr (std::endian::native == std::endian::little) x = __builtin_bswap64(x);
  std::memcpy(p, &x, sizeof(x));
}

// The bits from bit position `pos` of `data` on, left-aligned: at least the top 57 bits are
// the stream's. REQUIRES: the 8 bytes from data + pos / 8 are readable.
inline uint64_t BitWindow(const uint8_t* data, uint64_t pos) {
  return LoadBigEndian64(data + (pos >> 3)) << (pos & 7);
}

// The 64 bits from bit position `pos` of `data` on. REQUIRES: the 12 bytes from
// data + pos / 8 are readable.
inline uint64_t BitWindow64(const uint8_t* data, uint64_t pos) {
  return (BitWindow(data, pos) >> 32 << 32) | BitWindow(data, pos + 32) >> 32;
}

// Writes the low `n` bits of `v` at bit position `pos` of `buf`, most significant first.
// REQUIRES: 1 <= n <= 57, v < 2^n; every bit of `buf` at or after `pos` is zero, and the 8
// bytes from buf + pos / 8 are writable. The bits after the field stay zero.
inline void PutBits(uint8_t* buf, uint64_t pos, uint64_t v, int n) {
  uint8_t* p = buf + (pos >> 3);
  const int shift = 64 - static_cast<int>(pos & 7) - n;
  StoreBigEndian64(p, LoadBigEndian64(p) | v << shift);
}

// PutBits for any 1 <= n <= 64.
inline void PutBitsWide(uint8_t* buf, uint64_t pos, uint64_t v, int n) {
  if (n > 32) {
    PutBits(buf, pos, v >> 32, n - 32);
    PutBits(buf, pos + (n - 32), v & 0xffffffff, 32);
  } else {
    PutBits(buf, pos, v, n);
  }
}

}  // namespace strata

#endif  // STRATA_STORAGE_BITSTREAM_H_

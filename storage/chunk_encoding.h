// The encoding byte that every stored chunk carries in front of its bytes.
//
// The numbers are Prometheus' (tsdb/chunkenc): a chunk written with one of them has exactly
// the bytes Prometheus would write for that encoding, so it can be streamed to Prometheus
// (remote read) as it is. Numbers are never reused; new encodings take new numbers.
#ifndef STRATA_STORAGE_CHUNK_ENCODING_H_
#define STRATA_STORAGE_CHUNK_ENCODING_H_

#include <cstdint>
#include <optional>
#include <string_view>

namespace strata {

enum class ChunkEncoding : uint8_t {
  kNone = 0,  // no chunk; never stored
  kXor = 1,   // Gorilla float chunk, docs/format/chunks.md
  // 2 and 3 are Prometheus' native histogram and float histogram chunks. They stay reserved
  // for those so that our numbers keep matching theirs.
  kHistogram = 2,
  kFloatHistogram = 3,
};

inline std::string_view ChunkEncodingName(ChunkEncoding e) {
  switch (e) {
    case ChunkEncoding::kNone:
      return "none";
    case ChunkEncoding::kXor:
      return "XOR";
    case ChunkEncoding::kHistogram:
      return "histogram";
    case ChunkEncoding::kFloatHistogram:
      return "floathistogram";
  }
  return "unknown";
}

// The encoding a stored byte names, if this build can decode it.
inline std::optional<ChunkEncoding> DecodableChunkEncoding(uint8_t b) {
  if (b == static_cast<uint8_t>(ChunkEncoding::kXor)) return ChunkEncoding::kXor;
  return std::nullopt;
}

}  // namespace strata

#endif  // STRATA_STORAGE_CHUNK_ENCODING_H_

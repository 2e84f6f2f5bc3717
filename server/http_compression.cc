#include "server/http_compression.h"

#include <zlib.h>

#include <algorithm>
#include <charconv>

#include "absl/status/status.h"
#include "src/strings.h"

namespace strata {
namespace {

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? char(c - 'A' + 'a') : c; };
           return lower(x) == lower(y);
         });
}

// zlib counts in uInt; feed it at most this much at a time.
constexpr size_t kZlibChunk = 1u << 30;

}  // namespace

bool AcceptsGzip(std::string_view accept_encoding) {
  bool gzip = false, gzip_seen = false, star = false;
  while (!accept_encoding.empty()) {
    size_t comma = accept_encoding.find(',');
    std::string_view item = accept_encoding.substr(0, comma);
    accept_encoding =
        comma == std::string_view::npos ? std::string_view() : accept_encoding.substr(comma + 1);
    size_t semi = item.find(';');
    std::string_view coding = Trim(item.substr(0, semi));
    bool acceptable = true;
    while (semi != std::string_view::npos) {
      item = item.substr(semi + 1);
      semi = item.find(';');
      std::string_view param = Trim(item.substr(0, semi));
      if (param.size() >= 2 && (param[0] == 'q' || param[0] == 'Q') && param[1] == '=') {
        double q = 1;
        std::string_view num = Trim(param.substr(2));
        auto [ptr, ec] = std::from_chars(num.data(), num.data() + num.size(), q);
        acceptable = ec != std::errc() || q > 0;
      }
    }
    if (EqualsIgnoreCase(coding, "gzip") || EqualsIgnoreCase(coding, "x-gzip")) {
      gzip_seen = true;
      gzip = acceptable;
    } else if (coding == "*") {
      star = acceptable;
    }
  }
  return gzip_seen ? gzip : star;
}

absl::StatusOr<std::string> GzipCompress(std::string_view data, int level) {
  z_stream zs{};
  // 15 window bits + 16: write a gzip header and trailer instead of zlib's.
  if (deflateInit2(&zs, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
    return absl::InternalError("gzip: deflateInit2 failed");
  }
  std::string out;
  out.resize(deflateBound(&zs, static_cast<uLong>(std::min(data.size(), kZlibChunk))) + 64);
  size_t in_pos = 0;
  int rc = Z_OK;
  do {
    size_t in_len = std::min(data.size() - in_pos, kZlibChunk);
    zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data() + in_pos));
    zs.avail_in = static_cast<uInt>(in_len);
    in_pos += in_len;
    int flush = in_pos == data.size() ? Z_FINISH : Z_NO_FLUSH;
    do {
      if (zs.total_out == out.size()) out.resize(out.size() * 2);
      zs.next_out = reinterpret_cast<Bytef*>(out.data() + zs.total_out);
      zs.avail_out = static_cast<uInt>(std::min(out.size() - zs.total_out, kZlibChunk));
      rc = deflate(&zs, flush);
      if (rc == Z_STREAM_ERROR) {
        deflateEnd(&zs);
        return absl::InternalError("gzip: deflate failed");
      }
    } while (zs.avail_out == 0 || (flush == Z_FINISH && rc != Z_STREAM_END));
  } while (in_pos < data.size());
  out.resize(zs.total_out);
  deflateEnd(&zs);
  return out;
}

absl::StatusOr<std::string> GzipDecompress(std::string_view data, size_t max_size) {
  z_stream zs{};
  // 15 window bits + 32: detect gzip or zlib headers.
  if (inflateInit2(&zs, 15 + 32) != Z_OK) return absl::InternalError("gzip: inflateInit2 failed");
  std::string out;
  out.resize(std::min<size_t>(std::max<size_t>(data.size() * 4, 1024), max_size + 1));
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  zs.avail_in = static_cast<uInt>(std::min(data.size(), kZlibChunk));
  int rc;
  while (true) {
    if (zs.total_out == out.size()) {
      if (out.size() > max_size) break;
      out.resize(std::min(out.size() * 2, max_size + 1));
    }
    zs.next_out = reinterpret_cast<Bytef*>(out.data() + zs.total_out);
    zs.avail_out = static_cast<uInt>(std::min(out.size() - zs.total_out, kZlibChunk));
    rc = inflate(&zs, Z_NO_FLUSH);
    if (rc == Z_STREAM_END) break;
    if (rc != Z_OK && !(rc == Z_BUF_ERROR && zs.avail_out == 0)) {
      inflateEnd(&zs);
      return absl::InvalidArgumentError("gzip: malformed or truncated stream");
    }
  }
  size_t total = zs.total_out;
  inflateEnd(&zs);
  if (total > max_size) {
    return absl::ResourceExhaustedError(
        fmt::format("gzip: decompressed size exceeds the limit of {} bytes", max_size));
  }
  out.resize(total);
  return out;
}

}  // namespace strata

// Content-encoding helpers for the HTTP server (zlib's gzip format).
#ifndef STRATA_SERVER_HTTP_COMPRESSION_H_
#define STRATA_SERVER_HTTP_COMPRESSION_H_

#include <cstddef>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace strata {

// True when an Accept-Encoding header value accepts gzip: a "gzip" or "*" coding whose
// q-value is not zero ("gzip, deflate", "br;q=1, gzip;q=0.5"; not "gzip;q=0", not "").
bool AcceptsGzip(std::string_view accept_encoding);

// A gzip member (RFC 1952) holding `data`. `level` is zlib's 1..9 (6 is its default; the
// server uses a fast level because it compresses on the I/O threads).
absl::StatusOr<std::string> GzipCompress(std::string_view data, int level = 1);

// Inflates a gzip (or zlib) stream. Errors: InvalidArgument when it is malformed,
// ResourceExhausted when it inflates past `max_size` bytes.
absl::StatusOr<std::string> GzipDecompress(std::string_view data, size_t max_size);

}  // namespace strata

#endif  // STRATA_SERVER_HTTP_COMPRESSION_H_

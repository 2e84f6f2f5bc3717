// Fuzz target for the PromQL parser and printer.
//
// Property: no input crashes, hangs or trips a sanitizer; and every input that parses
// prints to text that parses again and prints identically (print is a fixed point).
//
// With clang and -DSTRATA_FUZZ=ON this is a libFuzzer target (scripts/fuzz-parser.sh runs
// it for a bounded time on a corpus seeded from the upstream test scripts). Otherwise it is
// linked with fuzz_replay_main.cc into a ctest that replays those seeds and deterministic
// mutations of them.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "query/parser.h"
#include "query/printer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // Long inputs add nothing the nesting bound does not already cover.
  if (size > 4096) return 0;
  std::string_view query(reinterpret_cast<const char*>(data), size);
  const auto options = strata::promql::ParserOptions::AllFeatures();
  auto expr = strata::promql::ParseExpr(query, options);
  if (!expr.ok()) return 0;
  const std::string printed = strata::promql::ToString(**expr);
  auto again = strata::promql::ParseExpr(printed, options);
  if (!again.ok()) {
    std::fprintf(stderr,
                 "printed form does not parse\n  input:   %.*s\n  printed: %s\n  error:   %s\n",
                 static_cast<int>(query.size()), query.data(), printed.c_str(),
                 std::string(again.status().message()).c_str());
    std::abort();
  }
  const std::string reprinted = strata::promql::ToString(**again);
  if (reprinted != printed) {
    std::fprintf(stderr,
                 "printing is not stable\n  input:     %.*s\n  printed:   %s\n  reprinted: %s\n",
                 static_cast<int>(query.size()), query.data(), printed.c_str(), reprinted.c_str());
    std::abort();
  }
  return 0;
}

// String helpers every module uses.
//
// Debian's Abseil is built with its own absl::string_view, which does not convert from
// std::string_view. So: build messages with fmt::format (not absl::StrCat) and key hash
// maps by std::string with the transparent hash below, so that std::string_view lookups
// need no copy.
#ifndef STRATA_SRC_STRINGS_H_
#define STRATA_SRC_STRINGS_H_

#include <cstddef>
#include <string>
#include <string_view>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/hash/hash.h"
#include "absl/strings/string_view.h"
#include "fmt/format.h"

namespace strata {

inline absl::string_view ToAbsl(std::string_view s) { return {s.data(), s.size()}; }

struct StringViewHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return absl::Hash<absl::string_view>{}(ToAbsl(s)); }
};

struct StringViewEq {
  using is_transparent = void;
  bool operator()(std::string_view a, std::string_view b) const { return a == b; }
};

template <typename V>
using StringMap = absl::flat_hash_map<std::string, V, StringViewHash, StringViewEq>;
using StringSet = absl::flat_hash_set<std::string, StringViewHash, StringViewEq>;

}  // namespace strata

#endif  // STRATA_SRC_STRINGS_H_

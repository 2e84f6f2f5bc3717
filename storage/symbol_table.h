// The head's symbol table: every label name and value string the head holds, stored once
// and named by a dense 32-bit id. Series keep ids instead of strings; the head's postings
// are keyed by views of the interned strings.
//
// Strings are never removed: a string lives as long as the table, so views returned by
// Lookup() and Intern() stay valid until it is destroyed.
#ifndef STRATA_STORAGE_SYMBOL_TABLE_H_
#define STRATA_STORAGE_SYMBOL_TABLE_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "src/strings.h"

namespace strata {

class SymbolTable {
 public:
  SymbolTable();
  ~SymbolTable();
  SymbolTable(const SymbolTable&) = delete;
  SymbolTable& operator=(const SymbolTable&) = delete;

  // The id of `s`, adding it if new. Thread-safe.
  uint32_t Intern(std::string_view s);
  // The id of `s` if it is in the table. Thread-safe.
  std::optional<uint32_t> Find(std::string_view s) const;
  // The string of an id returned by Intern(). Thread-safe and lock-free; the id must have
  // reached the caller through some synchronization (as it does through the head's locks).
  std::string_view Lookup(uint32_t id) const {
    std::string_view* const* dir = dir_.load(std::memory_order_acquire);
    return dir[id >> kPageBits][id & (kPageSize - 1)];
  }
  size_t size() const;
  // Heap bytes held: the strings, the id pages and the lookup map.
  size_t MemoryBytes() const;

 private:
  static constexpr int kPageBits = 12;
  static constexpr uint32_t kPageSize = 1u << kPageBits;
  static constexpr size_t kArenaBlock = 64 << 10;

  std::string_view Store(std::string_view s);  // REQUIRES: mu_ held

  mutable std::mutex mu_;
  absl::flat_hash_map<std::string_view, uint32_t, StringViewHash, StringViewEq> ids_;
  std::vector<std::unique_ptr<char[]>> blocks_;  // string bytes, kArenaBlock each
  std::vector<std::unique_ptr<char[]>> large_;   // strings over kArenaBlock / 4
  size_t block_used_ = kArenaBlock;              // bytes used in blocks_.back()
  size_t large_bytes_ = 0;
  uint32_t next_id_ = 0;
  // id -> string: a directory of pages of kPageSize views. Readers load dir_ without a lock,
  // so a grown directory replaces it and the old one is kept (in dirs_) until the end.
  std::vector<std::unique_ptr<std::string_view[]>> pages_;
  std::vector<std::unique_ptr<std::string_view*[]>> dirs_;  // dirs_.back() is current
  size_t dir_capacity_ = 0;
  std::atomic<std::string_view* const*> dir_{nullptr};
};

}  // namespace strata

#endif  // STRATA_STORAGE_SYMBOL_TABLE_H_

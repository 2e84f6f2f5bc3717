#include "storage/symbol_table.h"

#include <algorithm>
#include <cstring>
#include <stdexcept>

namespace strata {

SymbolTable::SymbolTable() = default;
SymbolTable::~SymbolTable() = default;

std::string_view SymbolTable::Store(std::string_view s) {
  if (s.empty()) return {};
  char* p;
  if (s.size() > kArenaBlock / 4) {
    large_.push_back(std::unique_ptr<char[]>(new char[s.size()]));
    p = large_.back().get();
    large_bytes_ += s.size();
  } else {
    if (kArenaBlock - block_used_ < s.size()) {
      blocks_.push_back(std::unique_ptr<char[]>(new char[kArenaBlock]));
      block_used_ = 0;
    }
    p = blocks_.back().get() + block_used_;
    block_used_ += s.size();
  }
  std::memcpy(p, s.data(), s.size());
  return {p, s.size()};
}

uint32_t SymbolTable::Intern(std::string_view s) {
  std::lock_guard<std::mutex> lock(mu_);
  if (auto it = ids_.find(s); it != ids_.end()) return it->second;
  const uint32_t id = next_id_;
  if (id == UINT32_MAX) throw std::length_error("symbol table full");
  const size_t page = id >> kPageBits;
  if (page == pages_.size()) {
    pages_.push_back(std::unique_ptr<std::string_view[]>(new std::string_view[kPageSize]));
    if (pages_.size() > dir_capacity_) {
      // Readers may still hold the old directory; it stays allocated in dirs_.
      dir_capacity_ = std::max<size_t>(16, dir_capacity_ * 2);
      dirs_.push_back(std::unique_ptr<std::string_view*[]>(new std::string_view*[dir_capacity_]));
    }
    std::string_view** dir = dirs_.back().get();
    for (size_t i = 0; i < pages_.size(); ++i) dir[i] = pages_[i].get();
    dir_.store(dir, std::memory_order_release);
  }
  std::string_view stored = Store(s);
  pages_[page][id & (kPageSize - 1)] = stored;
  ids_.emplace(stored, id);
  ++next_id_;
  return id;
}

std::optional<uint32_t> SymbolTable::Find(std::string_view s) const {
  std::lock_guard<std::mutex> lock(mu_);
  if (auto it = ids_.find(s); it != ids_.end()) return it->second;
  return std::nullopt;
}

size_t SymbolTable::size() const {
  std::lock_guard<std::mutex> lock(mu_);
  return next_id_;
}

size_t SymbolTable::MemoryBytes() const {
  std::lock_guard<std::mutex> lock(mu_);
  size_t dirs = 0;
  for (size_t c = 16; c <= dir_capacity_ && dir_capacity_ > 0; c *= 2) dirs += c;
  return blocks_.size() * kArenaBlock + large_bytes_ +
         pages_.size() * kPageSize * sizeof(std::string_view) + dirs * sizeof(void*) +
         ids_.capacity() * (sizeof(std::string_view) + sizeof(uint32_t) + 1);
}

}  // namespace strata

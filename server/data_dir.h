// The server's data directory: created on start, and locked so that a second server on the
// same directory fails at once with a clear message.
#ifndef STRATA_SERVER_DATA_DIR_H_
#define STRATA_SERVER_DATA_DIR_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"

namespace strata {

// Holds an exclusive lock (flock) on <dir>/lock for as long as it lives. The lock dies with
// the process, so a crashed server never leaves a stale lock behind.
class DataDirLock {
 public:
  // Creates `dir` (and parents) when missing, then takes the lock. Errors: the directory
  // cannot be created or written, or another process holds the lock (its pid is named).
  static absl::StatusOr<std::unique_ptr<DataDirLock>> Acquire(const std::string& dir);
  ~DataDirLock();
  DataDirLock(const DataDirLock&) = delete;
  DataDirLock& operator=(const DataDirLock&) = delete;

  const std::string& dir() const { return dir_; }

 private:
  DataDirLock(std::string dir, int fd) : dir_(std::move(dir)), fd_(fd) {}
  std::string dir_;
  int fd_;
};

}  // namespace strata

#endif  // STRATA_SERVER_DATA_DIR_H_

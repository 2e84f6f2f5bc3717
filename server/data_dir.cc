#include "server/data_dir.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <system_error>

#include "src/strings.h"

namespace strata {

absl::StatusOr<std::unique_ptr<DataDirLock>> DataDirLock::Acquire(const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) {
    return absl::FailedPreconditionError(
        fmt::format("cannot create data directory \"{}\": {}", dir, ec.message()));
  }
  std::string path = (std::filesystem::path(dir) / "lock").string();
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) {
    return absl::FailedPreconditionError(
        fmt::format("cannot open lock file \"{}\": {}", path, std::strerror(errno)));
  }
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    int err = errno;
    char buf[32] = {};
    ssize_t n = ::pread(fd, buf, sizeof(buf) - 1, 0);
    std::string holder = n > 0 ? std::string(buf, static_cast<size_t>(n)) : "";
    while (!holder.empty() && (holder.back() == '\n' || holder.back() == ' ')) holder.pop_back();
    ::close(fd);
    if (err == EWOULDBLOCK) {
      return absl::FailedPreconditionError(fmt::format(
          "data directory \"{}\" is in use by another Strata process{}; stop it or choose "
          "another --storage.tsdb.path",
          dir, holder.empty() ? "" : fmt::format(" (pid {})", holder)));
    }
    return absl::FailedPreconditionError(
        fmt::format("cannot lock \"{}\": {}", path, std::strerror(err)));
  }
  std::string pid = fmt::format("{}\n", ::getpid());
  if (::ftruncate(fd, 0) != 0 || ::pwrite(fd, pid.data(), pid.size(), 0) < 0) {
    int err = errno;
    ::close(fd);
    return absl::FailedPreconditionError(
        fmt::format("cannot write lock file \"{}\": {}", path, std::strerror(err)));
  }
  return std::unique_ptr<DataDirLock>(new DataDirLock(dir, fd));
}

DataDirLock::~DataDirLock() { ::close(fd_); }

}  // namespace strata

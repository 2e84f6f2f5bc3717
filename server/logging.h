// Structured logs on stderr, one line per event, in logfmt or JSON (--log.format), in the
// shape Prometheus 3 prints:
//   time=2026-11-22T03:12:00.123Z level=INFO msg="Server is ready" address=0.0.0.0:9090
//   {"time":"2026-11-22T03:12:00.123Z","level":"INFO","msg":"Server is ready","address":"..."}
// Any spdlog call becomes such a line; LogEvent adds key/value fields.
#ifndef STRATA_SERVER_LOGGING_H_
#define STRATA_SERVER_LOGGING_H_

#include <initializer_list>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "spdlog/common.h"

namespace strata {

enum class LogFormat { kLogfmt, kJson };

// Installs the default spdlog logger writing to stderr. `level` is debug, info, warn or
// error; `format` is logfmt or json. Errors name the bad value.
absl::Status SetupLogging(std::string_view level, std::string_view format);

// The line for one event, as the installed formatter writes it (without the newline).
// Exposed for tests.
std::string FormatLogLine(LogFormat format, spdlog::log_clock::time_point time,
                          spdlog::level::level_enum level, std::string_view payload);

struct LogField {
  std::string_view key;
  std::string value;
};

// Logs `msg` with fields at `level` through the default logger.
void LogEvent(spdlog::level::level_enum level, std::string_view msg,
              std::initializer_list<LogField> fields);

}  // namespace strata

#endif  // STRATA_SERVER_LOGGING_H_

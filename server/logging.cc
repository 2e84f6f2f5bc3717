#include "server/logging.h"

#include <chrono>
#include <ctime>
#include <memory>

#include "server/api_json.h"
#include "spdlog/pattern_formatter.h"
#include "spdlog/sinks/stdout_sinks.h"
#include "spdlog/spdlog.h"
#include "src/strings.h"

namespace strata {
namespace {

// LogEvent packs fields into the payload: msg, then for each field kFieldSep key kKeySep
// value. The formatter unpacks them; plain spdlog calls have no separators.
constexpr char kFieldSep = '\x1f';
constexpr char kKeySep = '\x1e';

std::string_view LevelName(spdlog::level::level_enum level) {
  switch (level) {
    case spdlog::level::trace:
    case spdlog::level::debug:
      return "DEBUG";
    case spdlog::level::info:
      return "INFO";
    case spdlog::level::warn:
      return "WARN";
    case spdlog::level::err:
    case spdlog::level::critical:
      return "ERROR";
    default:
      return "INFO";
  }
}

std::string FormatTime(spdlog::log_clock::time_point time) {
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(time.time_since_epoch()).count();
  std::time_t secs = static_cast<std::time_t>(ms / 1000 - (ms % 1000 < 0 ? 1 : 0));
  int millis = static_cast<int>(((ms % 1000) + 1000) % 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z", tm.tm_year + 1900, tm.tm_mon + 1,
                     tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, millis);
}

void AppendLogfmtValue(std::string_view v, std::string* out) {
  bool quote = v.empty();
  for (char c : v) {
    if (c == ' ' || c == '=' || c == '"' || c == '\\' || static_cast<unsigned char>(c) < 0x20 ||
        c == 0x7f) {
      quote = true;
      break;
    }
  }
  if (!quote) {
    out->append(v);
    return;
  }
  // JSON string escaping is a valid logfmt quoting.
  AppendJsonString(v, out);
}

class StructuredFormatter : public spdlog::formatter {
 public:
  explicit StructuredFormatter(LogFormat format) : format_(format) {}

  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    std::string line = FormatLogLine(format_, msg.time, msg.level,
                                     std::string_view(msg.payload.data(), msg.payload.size()));
    line.push_back('\n');
    dest.append(line.data(), line.data() + line.size());
  }

  std::unique_ptr<spdlog::formatter> clone() const override {
    return std::make_unique<StructuredFormatter>(format_);
  }

 private:
  LogFormat format_;
};

}  // namespace

std::string FormatLogLine(LogFormat format, spdlog::log_clock::time_point time,
                          spdlog::level::level_enum level, std::string_view payload) {
  size_t sep = payload.find(kFieldSep);
  std::string_view msg = payload.substr(0, sep);
  std::string out;
  out.reserve(payload.size() + 64);
  if (format == LogFormat::kJson) {
    out.append("{\"time\":\"");
    out.append(FormatTime(time));
    out.append("\",\"level\":\"");
    out.append(LevelName(level));
    out.append("\",\"msg\":");
    AppendJsonString(msg, &out);
  } else {
    out.append("time=");
    out.append(FormatTime(time));
    out.append(" level=");
    out.append(LevelName(level));
    out.append(" msg=");
    AppendLogfmtValue(msg, &out);
  }
  while (sep != std::string_view::npos) {
    payload = payload.substr(sep + 1);
    sep = payload.find(kFieldSep);
    std::string_view field = payload.substr(0, sep);
    size_t k = field.find(kKeySep);
    std::string_view key = field.substr(0, k);
    std::string_view value = k == std::string_view::npos ? std::string_view() : field.substr(k + 1);
    if (format == LogFormat::kJson) {
      out.push_back(',');
      AppendJsonString(key, &out);
      out.push_back(':');
      AppendJsonString(value, &out);
    } else {
      out.push_back(' ');
      out.append(key);
      out.push_back('=');
      AppendLogfmtValue(value, &out);
    }
  }
  if (format == LogFormat::kJson) out.push_back('}');
  return out;
}

absl::Status SetupLogging(std::string_view level, std::string_view format) {
  spdlog::level::level_enum lvl;
  if (level == "debug") {
    lvl = spdlog::level::debug;
  } else if (level == "info") {
    lvl = spdlog::level::info;
  } else if (level == "warn") {
    lvl = spdlog::level::warn;
  } else if (level == "error") {
    lvl = spdlog::level::err;
  } else {
    return absl::InvalidArgumentError(
        fmt::format("unrecognized log level \"{}\": want one of debug, info, warn, error", level));
  }
  LogFormat fmt_kind;
  if (format == "logfmt") {
    fmt_kind = LogFormat::kLogfmt;
  } else if (format == "json") {
    fmt_kind = LogFormat::kJson;
  } else {
    return absl::InvalidArgumentError(
        fmt::format("unrecognized log format \"{}\": want logfmt or json", format));
  }
  auto sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
  auto logger = std::make_shared<spdlog::logger>("strata", std::move(sink));
  logger->set_formatter(std::make_unique<StructuredFormatter>(fmt_kind));
  logger->set_level(lvl);
  logger->flush_on(spdlog::level::info);
  spdlog::set_default_logger(std::move(logger));
  return absl::OkStatus();
}

void LogEvent(spdlog::level::level_enum level, std::string_view msg,
              std::initializer_list<LogField> fields) {
  auto logger = spdlog::default_logger_raw();
  if (!logger->should_log(level)) return;
  std::string payload(msg);
  for (const LogField& f : fields) {
    payload.push_back(kFieldSep);
    payload.append(f.key);
    payload.push_back(kKeySep);
    payload.append(f.value);
  }
  logger->log(level, "{}", payload);
}

}  // namespace strata

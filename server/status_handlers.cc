#include "server/status_handlers.h"

#include <ctime>
#include <memory>
#include <thread>

#include "server/api_json.h"
#include "src/strings.h"
#include "src/time.h"

namespace strata {
namespace {

std::string Rfc3339(Timestamp ms) {
  std::time_t secs = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z", tm.tm_year + 1900, tm.tm_mon + 1,
                     tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms % 1000));
}

std::string SizeText(int64_t bytes) {
  static constexpr std::string_view kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  size_t unit = 0;
  while (unit + 1 < std::size(kUnits) && bytes != 0 && bytes % 1024 == 0) {
    bytes /= 1024;
    ++unit;
  }
  return fmt::format("{}{}", bytes, kUnits[unit]);
}

// Prometheus' "storageRetention": "15d", "512MiB", or "15d or 512MiB".
std::string RetentionText(const ServerConfig& c) {
  if (c.retention_time_ms > 0 && c.retention_size_bytes > 0) {
    return FormatDuration(c.retention_time_ms) + " or " + SizeText(c.retention_size_bytes);
  }
  if (c.retention_size_bytes > 0) return SizeText(c.retention_size_bytes);
  return FormatDuration(c.retention_time_ms);
}

std::string Success(const std::function<void(JsonWriter&)>& data) {
  std::string body;
  JsonWriter w(&body);
  BeginApiSuccess(w);
  data(w);
  EndApiSuccess(w);
  return body;
}

// A handler that always answers the same JSON.
HttpHandler Fixed(std::string body) {
  auto shared = std::make_shared<const std::string>(std::move(body));
  return
      [shared](const HttpRequest&, HttpResponder r) { r.Send(HttpResponse::Json(200, *shared)); };
}

}  // namespace

void RegisterStatusHandlers(Router& router, StatusInfo info) {
  const ServerConfig& c = info.config;
  router.Handle("GET", "/api/v1/status/buildinfo", Fixed(Success([](JsonWriter& w) {
                  w.BeginObject()
                      .Key("version")
                      .String(kPrometheusCompatibleVersion)
                      .Key("revision")
                      .String(fmt::format("strata-{}", kStrataVersion))
                      .Key("branch")
                      .String("strata")
                      .Key("buildUser")
                      .String("strata")
                      .Key("buildDate")
                      .String("")
                      .Key("goVersion")
                      .String("none (Strata is C++)")
                      .EndObject();
                })));

  router.Handle("GET", "/api/v1/status/flags", Fixed(Success([&c](JsonWriter& w) {
                  w.BeginObject();
                  for (const auto& [name, value] : FlagValues(c)) w.Key(name).String(value);
                  w.EndObject();
                })));

  // Go-runtime fields keep their names and neutral values, for clients that parse them.
  auto shared = std::make_shared<const StatusInfo>(std::move(info));
  router.Handle("GET", "/api/v1/status/runtimeinfo", [shared](const HttpRequest&, HttpResponder r) {
    const StatusInfo& s = *shared;
    std::string start = Rfc3339(s.start_time_ms);
    r.Send(HttpResponse::Json(200, Success([&](JsonWriter& w) {
                                w.BeginObject()
                                    .Key("startTime")
                                    .String(start)
                                    .Key("CWD")
                                    .String(s.cwd)
                                    .Key("reloadConfigSuccess")
                                    .Bool(true)
                                    .Key("lastConfigTime")
                                    .String(start)
                                    .Key("corruptionCount")
                                    .Int(0)
                                    .Key("goroutineCount")
                                    .Int(0)
                                    .Key("GOMAXPROCS")
                                    .Int(static_cast<int64_t>(std::thread::hardware_concurrency()))
                                    .Key("GOMEMLIMIT")
                                    .Int(INT64_MAX)
                                    .Key("GOGC")
                                    .String("")
                                    .Key("GODEBUG")
                                    .String("")
                                    .Key("storageRetention")
                                    .String(RetentionText(s.config))
                                    .EndObject();
                              })));
  });

  router.Handle("GET", "/api/v1/targets", Fixed(Success([](JsonWriter& w) {
                  w.BeginObject()
                      .Key("activeTargets")
                      .BeginArray()
                      .EndArray()
                      .Key("droppedTargets")
                      .BeginArray()
                      .EndArray()
                      .Key("droppedTargetCounts")
                      .BeginObject()
                      .EndObject()
                      .EndObject();
                })));
  router.HandleGetPost("/api/v1/rules", Fixed(Success([](JsonWriter& w) {
                         w.BeginObject().Key("groups").BeginArray().EndArray().EndObject();
                       })));
  router.Handle("GET", "/api/v1/alerts", Fixed(Success([](JsonWriter& w) {
                  w.BeginObject().Key("alerts").BeginArray().EndArray().EndObject();
                })));
  router.Handle("GET", "/api/v1/alertmanagers", Fixed(Success([](JsonWriter& w) {
                  w.BeginObject()
                      .Key("activeAlertmanagers")
                      .BeginArray()
                      .EndArray()
                      .Key("droppedAlertmanagers")
                      .BeginArray()
                      .EndArray()
                      .EndObject();
                })));
}

}  // namespace strata

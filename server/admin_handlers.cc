#include "server/admin_handlers.h"

#include <ctime>
#include <exception>
#include <limits>
#include <random>

#include "query/parser.h"
#include "server/api_json.h"
#include "server/api_params.h"
#include "src/strings.h"
#include "src/time.h"

namespace strata {
namespace {

std::string_view StatusText(const absl::Status& st) {
  return std::string_view(st.message().data(), st.message().size());
}

HttpResponse Error(ApiErrorType type, std::string_view message) {
  return HttpResponse::Json(ApiErrorHttpCode(type), ApiErrorBody(type, message));
}

HttpResponse BadParam(std::string_view name, std::string_view cause) {
  return Error(ApiErrorType::kBadData, fmt::format("invalid parameter \"{}\": {}", name, cause));
}

using AdminFunc = std::function<HttpResponse(const ApiParams&, Storage&)>;

// The checks every admin endpoint makes first, in Prometheus' order: enabled, storage
// ready, form parsed.
HttpHandler Admin(ApiContext* ctx, bool enabled, AdminFunc fn) {
  return [ctx, enabled, fn = std::move(fn)](const HttpRequest& req, HttpResponder responder) {
    if (!enabled) {
      responder.Send(Error(ApiErrorType::kUnavailable, "admin APIs disabled"));
      return;
    }
    Storage* storage = ctx->storage.load(std::memory_order_acquire);
    if (storage == nullptr) {
      responder.Send(Error(ApiErrorType::kUnavailable, "TSDB not ready"));
      return;
    }
    absl::StatusOr<ApiParams> params = ApiParams::FromRequest(req);
    if (!params.ok()) {
      responder.Send(Error(ApiErrorType::kBadData, StatusText(params.status())));
      return;
    }
    try {
      responder.Send(fn(*params, *storage));
    } catch (const std::exception& e) {
      responder.Send(Error(ApiErrorType::kInternal, fmt::format("internal error: {}", e.what())));
    }
  };
}

// Prometheus' parseTimeParam for the admin API: absent means `fallback`; a bad value reads
// `invalid parameter "start": invalid time value for 'start': cannot parse "x" to a valid
// timestamp` (Prometheus 3; 2.x wrote "Invalid").
absl::StatusOr<Timestamp> AdminTime(const ApiParams& params, std::string_view name,
                                    Timestamp fallback) {
  std::string_view text = params.Get(name);
  if (text.empty()) return fallback;
  absl::StatusOr<Timestamp> t = ParseApiTime(text);
  if (!t.ok()) {
    return absl::InvalidArgumentError(
        fmt::format("invalid parameter \"{}\": invalid time value "
                    "for '{}': {}",
                    name, name, StatusText(t.status())));
  }
  return *t;
}

HttpResponse DeleteSeries(const ApiParams& params, Storage& storage) {
  std::vector<std::string_view> selectors = params.GetAll("match[]");
  if (selectors.empty()) return Error(ApiErrorType::kBadData, "no match[] parameter provided");
  absl::StatusOr<Timestamp> start =
      AdminTime(params, "start", std::numeric_limits<Timestamp>::min());
  if (!start.ok()) return Error(ApiErrorType::kBadData, StatusText(start.status()));
  absl::StatusOr<Timestamp> end = AdminTime(params, "end", std::numeric_limits<Timestamp>::max());
  if (!end.ok()) return Error(ApiErrorType::kBadData, StatusText(end.status()));
  // Each selector is parsed and deleted in turn, as Prometheus does.
  for (std::string_view selector : selectors) {
    absl::StatusOr<std::vector<LabelMatcher>> matchers =
        ParseSeriesSelector(selector, promql::ParserOptions());
    if (!matchers.ok()) return BadParam("match[]", StatusText(matchers.status()));
    absl::Status st = storage.DeleteSeries(*matchers, *start, *end);
    if (!st.ok()) return Error(ApiErrorType::kInternal, StatusText(st));
  }
  return HttpResponse::Empty(204);
}

HttpResponse CleanTombstones(const ApiParams&, Storage& storage) {
  absl::Status st = storage.CleanTombstones();
  if (!st.ok()) return Error(ApiErrorType::kInternal, StatusText(st));
  return HttpResponse::Empty(204);
}

// Go's strconv.ParseBool.
std::optional<bool> ParseBool(std::string_view s) {
  for (std::string_view t : {"1", "t", "T", "TRUE", "true", "True"}) {
    if (s == t) return true;
  }
  for (std::string_view f : {"0", "f", "F", "FALSE", "false", "False"}) {
    if (s == f) return false;
  }
  return std::nullopt;
}

HttpResponse Snapshot(const ApiParams& params, Storage& storage) {
  bool skip_head = false;
  if (std::string_view v = params.Get("skip_head"); !v.empty()) {
    std::optional<bool> b = ParseBool(v);
    if (!b) {
      return BadParam("skip_head",
                      fmt::format("unable to parse boolean: strconv.ParseBool: parsing \"{}\": "
                                  "invalid syntax",
                                  v));
    }
    skip_head = *b;
  }
  static std::mutex rng_mu;
  static std::mt19937_64 rng{std::random_device{}()};
  uint64_t random;
  {
    std::lock_guard<std::mutex> lock(rng_mu);
    random = rng() >> 1;  // 63 bits, as Go's rand.Int63
  }
  std::string name = SnapshotName(NowMillis(), random);
  std::string dir = storage.dir();
  if (!dir.empty() && dir.back() != '/') dir.push_back('/');
  dir += "snapshots/" + name;
  absl::Status st = storage.Snapshot(dir, !skip_head);
  if (!st.ok()) {
    return Error(ApiErrorType::kInternal, fmt::format("create snapshot: {}", StatusText(st)));
  }
  std::string body;
  JsonWriter w(&body);
  BeginApiSuccess(w);
  w.BeginObject().Key("name").String(name).EndObject();
  EndApiSuccess(w, {}, {});
  return HttpResponse::Json(200, std::move(body));
}

}  // namespace

std::string SnapshotName(int64_t now_ms, uint64_t random) {
  std::time_t secs = static_cast<std::time_t>(now_ms / 1000);
  if (now_ms % 1000 < 0) --secs;
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[32];
  size_t n = std::strftime(buf, sizeof(buf), "%Y%m%dT%H%M%SZ", &tm);
  return fmt::format("{}-{:016x}", std::string_view(buf, n), random);
}

void RegisterAdminHandlers(Router& router, ApiContext* ctx, bool enabled) {
  auto add = [&](std::string_view path, AdminFunc fn) {
    HttpHandler h = RunOnPool(ctx->query_pool, Admin(ctx, enabled, std::move(fn)));
    router.Handle("POST", path, h);
    router.Handle("PUT", path, h);
  };
  add("/api/v1/admin/tsdb/delete_series", DeleteSeries);
  add("/api/v1/admin/tsdb/clean_tombstones", CleanTombstones);
  add("/api/v1/admin/tsdb/snapshot", Snapshot);
}

}  // namespace strata

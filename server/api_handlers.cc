#include "server/api_handlers.h"

#include <algorithm>
#include <charconv>
#include <chrono>
#include <exception>
#include <memory>
#include <optional>
#include <set>
#include <span>
#include <string_view>
#include <utility>

#include "absl/time/time.h"
#include "query/parser.h"
#include "query/printer.h"
#include "server/api_json.h"
#include "server/api_params.h"
#include "server/http_compression.h"
#include "src/labels.h"
#include "src/matcher.h"
#include "src/status.h"
#include "src/strings.h"
#include "src/text_format.h"
#include "src/time.h"

namespace strata {

void MetadataStore::Add(std::string_view metric, Entry entry) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = metrics_.find(metric);
  if (it == metrics_.end()) {
    if (metrics_.size() >= kMaxMetrics) return;
    it = metrics_.emplace(std::string(metric), std::vector<Entry>{}).first;
  }
  if (std::find(it->second.begin(), it->second.end(), entry) == it->second.end()) {
    it->second.push_back(std::move(entry));
  }
}

std::map<std::string, std::vector<MetadataStore::Entry>> MetadataStore::Get(
    std::string_view metric, int64_t limit, int64_t limit_per_metric) const {
  std::map<std::string, std::vector<Entry>> out;
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& [name, entries] : metrics_) {
    if (!metric.empty() && name != metric) continue;
    if (limit > 0 && static_cast<int64_t>(out.size()) >= limit) break;
    std::vector<Entry>& dst = out[name];
    for (const Entry& e : entries) {
      if (limit_per_metric > 0 && static_cast<int64_t>(dst.size()) >= limit_per_metric) break;
      dst.push_back(e);
    }
  }
  return out;
}

namespace {

// absl's string_view is its own type in Debian's Abseil: view the message as std's.
std::string_view StatusText(const absl::Status& st) {
  return std::string_view(st.message().data(), st.message().size());
}

using MatcherSet = std::vector<LabelMatcher>;

constexpr std::string_view kTruncatedWarning = "results truncated due to limit";

HttpResponse ErrorResponse(const absl::Status& st) {
  ApiErrorType type = ApiErrorTypeFromStatus(st);
  return HttpResponse::Json(ApiErrorHttpCode(type), ApiErrorBody(type, StatusText(st)));
}

HttpResponse BadData(std::string_view message) {
  return HttpResponse::Json(400, ApiErrorBody(ApiErrorType::kBadData, message));
}

// The success envelope around whatever `data` writes.
template <typename WriteData>
HttpResponse Success(WriteData&& data, std::span<const std::string> warnings = {},
                     std::span<const std::string> infos = {}) {
  std::string body;
  JsonWriter w(&body);
  BeginApiSuccess(w);
  data(w);
  EndApiSuccess(w, warnings, infos);
  return HttpResponse::Json(200, std::move(body));
}

// A handler body that answers with a response or an error status (mapped to the Prometheus
// error type). Exceptions (allocation failure) become 500 rather than a dropped connection.
using ApiFunc =
    std::function<absl::StatusOr<HttpResponse>(const HttpRequest&, const ApiParams&, Storage&)>;

HttpHandler Api(ApiContext* ctx, ApiFunc fn) {
  return [ctx, fn = std::move(fn)](const HttpRequest& req, HttpResponder responder) {
    Storage* storage = ctx->storage.load(std::memory_order_acquire);
    if (storage == nullptr) {
      responder.Send(
          HttpResponse::Json(503, ApiErrorBody(ApiErrorType::kUnavailable, "TSDB not ready")));
      return;
    }
    // The client left while the request waited for a worker: do not start it.
    if (req.ClientGone()) {
      if (ctx->queries_canceled != nullptr) ctx->queries_canceled->Inc();
      responder.Send(HttpResponse::Json(
          499, ApiErrorBody(ApiErrorType::kCanceled,
                            "query was canceled: the client went away while it was queued")));
      return;
    }
    absl::StatusOr<ApiParams> params = ApiParams::FromRequest(req);
    if (!params.ok()) {
      responder.Send(BadData(StatusText(params.status())));
      return;
    }
    try {
      absl::StatusOr<HttpResponse> resp = fn(req, *params, *storage);
      if (!resp.ok() && absl::IsCancelled(resp.status()) && ctx->queries_canceled != nullptr) {
        ctx->queries_canceled->Inc();
      }
      responder.Send(resp.ok() ? std::move(*resp) : ErrorResponse(resp.status()));
    } catch (const std::exception& e) {
      responder.Send(HttpResponse::Json(
          500, ApiErrorBody(ApiErrorType::kInternal, fmt::format("internal error: {}", e.what()))));
    }
  };
}

// A statement of Prometheus' parseLimitParam: absent or empty is 0 (no limit).
absl::StatusOr<int64_t> LimitParam(const ApiParams& params, std::string_view name) {
  std::string_view s = params.Get(name);
  if (s.empty()) return 0;
  int64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size()) {
    return InvalidParamError(name, absl::InvalidArgumentError(fmt::format(
                                       "strconv.Atoi: parsing \"{}\": invalid syntax", s)));
  }
  if (v < 0) {
    return InvalidParamError(name, absl::InvalidArgumentError("limit must be non-negative"));
  }
  return v;
}

// Parses every match[] value as a series selector. Each set must have a matcher that does
// not match the empty string, as Prometheus requires. `name_param`: errors read `invalid
// parameter "match[]": ...` (the series endpoint); the label endpoints give the bare cause,
// as Prometheus does.
absl::StatusOr<std::vector<MatcherSet>> MatchParams(const ApiParams& params,
                                                    const promql::ParserOptions& options,
                                                    bool name_param) {
  auto fail = [&](const absl::Status& st) {
    return name_param ? InvalidParamError("match[]", st) : st;
  };
  std::vector<MatcherSet> sets;
  for (std::string_view m : params.GetAll("match[]")) {
    absl::StatusOr<MatcherSet> parsed = ParseSeriesSelector(m, options);
    if (!parsed.ok()) return fail(parsed.status());
    MatcherSet set = *std::move(parsed);
    bool has_non_empty = std::any_of(set.begin(), set.end(),
                                     [](const LabelMatcher& lm) { return !lm.MatchesEmpty(); });
    if (!has_non_empty) {
      return fail(
          absl::InvalidArgumentError("match[] must contain at least one non-empty matcher"));
    }
    sets.push_back(std::move(set));
  }
  return sets;
}

// The engine options of one request: the server's, with a shorter timeout when the
// `timeout` parameter asks for one, another lookback when `lookback_delta` is given, and
// the request's client_gone flag as the cancel signal.
absl::StatusOr<promql::EngineOptions> QueryOptions(const ApiContext& ctx, const HttpRequest& req,
                                                   const ApiParams& params) {
  promql::EngineOptions options = ctx.engine_options;
  // The evaluation stops when the client goes away.
  options.canceled = req.client_gone.get();
  options.poll_canceled = req.poll_client_gone;
  if (!params.Get("timeout").empty()) {
    STRATA_ASSIGN_OR_RETURN(int64_t timeout_ms, DurationParam(params, "timeout"));
    absl::Duration timeout = absl::Milliseconds(timeout_ms);
    if (timeout < options.timeout) options.timeout = timeout;
  }
  if (std::string_view text = params.Get("lookback_delta"); !text.empty()) {
    absl::StatusOr<int64_t> lookback_ms = ParseApiDuration(text);
    if (!lookback_ms.ok()) {
      // Prometheus 3 names no parameter here.
      return absl::InvalidArgumentError(fmt::format("error parsing lookback delta duration: {}",
                                                    StatusText(lookback_ms.status())));
    }
    if (*lookback_ms > 0) options.lookback_ms = *lookback_ms;
  }
  return options;
}

// What `stats` asks for: Prometheus adds its query statistics to `data` when the parameter
// is not empty. Strata times the evaluation as a whole: its parts that Prometheus times
// apart (preparation, queue, sort) are within it or do not exist, and read 0.
struct QueryStats {
  double eval_seconds = 0;
  int64_t samples = 0;  // samples read from storage
  int64_t peak_samples = 0;
};

void WriteQueryData(JsonWriter& w, const promql::QueryValue& value,
                    const QueryStats* stats = nullptr) {
  w.BeginObject();
  w.Key("resultType").String(promql::ValueTypeApiName(value.type));
  w.Key("result");
  switch (value.type) {
    // Prometheus prints scalars and strings with their own MarshalJSON, not with the
    // encoder of vector and matrix samples: other number formats.
    case promql::ValueType::kScalar:
      w.ScalarPair(value.scalar_t, value.scalar_v);
      break;
    case promql::ValueType::kString:
      w.BeginArray().GoSeconds(value.scalar_t).String(value.str).EndArray();
      break;
    case promql::ValueType::kVector:
      w.BeginArray();
      for (const promql::VectorElement& e : value.vector) {
        w.BeginObject();
        w.Key("metric").LabelSet(e.labels);
        w.Key("value").SamplePair(e.t, e.v);
        w.EndObject();
      }
      w.EndArray();
      break;
    case promql::ValueType::kMatrix:
      w.BeginArray();
      for (const promql::Series& s : value.matrix) {
        w.BeginObject();
        w.Key("metric").LabelSet(s.labels);
        w.Key("values").BeginArray();
        for (const Sample& p : s.samples) w.SamplePair(p.t, p.v);
        w.EndArray();
        w.EndObject();
      }
      w.EndArray();
      break;
    case promql::ValueType::kNone:
      w.BeginArray().EndArray();
      break;
  }
  if (stats != nullptr) {
    w.Key("stats").BeginObject();
    w.Key("timings").BeginObject();
    w.Key("evalTotalTime").Double(stats->eval_seconds);
    w.Key("resultSortTime").Double(0);
    w.Key("queryPreparationTime").Double(0);
    w.Key("innerEvalTime").Double(stats->eval_seconds);
    w.Key("execQueueTime").Double(0);
    w.Key("execTotalTime").Double(stats->eval_seconds);
    w.EndObject();
    w.Key("samples").BeginObject();
    w.Key("totalQueryableSamples").Int(stats->samples);
    w.Key("peakSamples").Int(stats->peak_samples);
    w.EndObject();
    w.EndObject();
  }
  w.EndObject();
}

absl::StatusOr<promql::ExprPtr> ParseQueryParam(const ApiParams& params,
                                                const promql::ParserOptions& options) {
  absl::StatusOr<promql::ExprPtr> expr = promql::ParseExpr(params.Get("query"), options);
  if (!expr.ok()) return InvalidParamError("query", expr.status());
  return expr;
}

// The `limit` parameter of query and query_range (Prometheus 3): at most that many series,
// with a warning when some were left out.
absl::StatusOr<HttpResponse> QueryResponse(promql::QueryResult result, const ApiParams& params,
                                           std::chrono::steady_clock::time_point started) {
  STRATA_ASSIGN_OR_RETURN(int64_t limit, LimitParam(params, "limit"));
  size_t max = static_cast<size_t>(limit);
  bool truncated = false;
  if (limit > 0 && result.value.type == promql::ValueType::kVector &&
      result.value.vector.size() > max) {
    result.value.vector.resize(max);
    truncated = true;
  }
  if (limit > 0 && result.value.type == promql::ValueType::kMatrix &&
      result.value.matrix.size() > max) {
    result.value.matrix.resize(max);
    truncated = true;
  }
  if (truncated) result.warnings.emplace_back(kTruncatedWarning);
  std::optional<QueryStats> stats;
  if (!params.Get("stats").empty()) {
    stats = QueryStats{
        .eval_seconds =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count(),
        .samples = result.samples_decoded,
        .peak_samples = result.peak_samples};
  }
  return Success([&](JsonWriter& w) { WriteQueryData(w, result.value, stats ? &*stats : nullptr); },
                 result.warnings, result.infos);
}

void Inc(Counter* c, double v) {
  if (c != nullptr && v > 0) c->Add(v);
}

// Evaluation time and samples read of a query that succeeded.
void CountQuery(Histogram* duration, Counter* samples,
                std::chrono::steady_clock::time_point started, const promql::QueryResult& r) {
  if (duration != nullptr) {
    duration->Observe(
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
  }
  Inc(samples, static_cast<double>(r.samples_decoded));
}

absl::StatusOr<HttpResponse> InstantQuery(const ApiContext& ctx, const HttpRequest& req,
                                          const ApiParams& params, Storage& storage) {
  // Prometheus checks `limit` first: a request wrong in several ways is told about it.
  STRATA_RETURN_IF_ERROR(LimitParam(params, "limit").status());
  STRATA_ASSIGN_OR_RETURN(Timestamp t, TimeParam(params, "time", NowMillis()));
  STRATA_ASSIGN_OR_RETURN(promql::EngineOptions options, QueryOptions(ctx, req, params));
  STRATA_ASSIGN_OR_RETURN(promql::ExprPtr expr, ParseQueryParam(params, options.parser_options()));
  promql::Engine engine(options);
  const auto started = std::chrono::steady_clock::now();
  STRATA_ASSIGN_OR_RETURN(promql::QueryResult result,
                          engine.InstantQuery(storage, *expr, params.Get("query"), t));
  CountQuery(ctx.metrics.instant_query_duration, ctx.metrics.query_samples, started, result);
  return QueryResponse(std::move(result), params, started);
}

absl::StatusOr<HttpResponse> RangeQuery(const ApiContext& ctx, const HttpRequest& req,
                                        const ApiParams& params, Storage& storage) {
  STRATA_RETURN_IF_ERROR(LimitParam(params, "limit").status());
  STRATA_ASSIGN_OR_RETURN(RangeParams range, ParseRangeParams(params));
  STRATA_ASSIGN_OR_RETURN(promql::EngineOptions options, QueryOptions(ctx, req, params));
  STRATA_ASSIGN_OR_RETURN(promql::ExprPtr expr, ParseQueryParam(params, options.parser_options()));
  promql::Engine engine(options);
  const auto started = std::chrono::steady_clock::now();
  STRATA_ASSIGN_OR_RETURN(promql::QueryResult result,
                          engine.RangeQuery(storage, *expr, params.Get("query"), range.start,
                                            range.end, range.step_ms));
  CountQuery(ctx.metrics.range_query_duration, ctx.metrics.query_samples, started, result);
  return QueryResponse(std::move(result), params, started);
}

// Prometheus maps querier errors of the label and series endpoints to "execution".
absl::Status Execution(const absl::Status& st) {
  if (st.ok() || absl::IsDeadlineExceeded(st) || absl::IsCancelled(st)) return st;
  return absl::FailedPreconditionError(st.message());
}

absl::StatusOr<HttpResponse> SeriesQuery(const ApiContext& ctx, const ApiParams& params,
                                         Storage& storage) {
  if (!params.Has("match[]")) return absl::InvalidArgumentError("no match[] parameter provided");
  STRATA_ASSIGN_OR_RETURN(int64_t limit, LimitParam(params, "limit"));
  STRATA_ASSIGN_OR_RETURN(Timestamp start, TimeParam(params, "start", kMinTime));
  STRATA_ASSIGN_OR_RETURN(Timestamp end, TimeParam(params, "end", kMaxTime));
  STRATA_ASSIGN_OR_RETURN(std::vector<MatcherSet> sets,
                          MatchParams(params, ctx.engine_options.parser_options(), true));
  absl::StatusOr<std::unique_ptr<Querier>> querier = storage.MakeQuerier(start, end);
  if (!querier.ok()) return Execution(querier.status());
  SelectHints hints;
  hints.mint = start;
  hints.maxt = end;
  hints.series_only = true;
  // Several match[] sets may select the same series: merge into one sorted, unique list.
  std::vector<Labels> series;
  std::vector<std::string> warnings;
  for (const MatcherSet& set : sets) {
    absl::StatusOr<std::unique_ptr<SeriesSet>> ss = (*querier)->Select(set, hints);
    if (!ss.ok()) return Execution(ss.status());
    while ((*ss)->Next()) series.push_back((*ss)->labels());
    if (absl::Status st = (*ss)->status(); !st.ok()) return Execution(st);
    for (std::string& w : (*ss)->warnings()) warnings.push_back(std::move(w));
  }
  if (sets.size() > 1) {
    std::sort(series.begin(), series.end(),
              [](const Labels& a, const Labels& b) { return Compare(a, b) < 0; });
    series.erase(std::unique(series.begin(), series.end(),
                             [](const Labels& a, const Labels& b) { return Compare(a, b) == 0; }),
                 series.end());
  }
  if (limit > 0 && static_cast<int64_t>(series.size()) > limit) {
    series.resize(static_cast<size_t>(limit));
    warnings.emplace_back(kTruncatedWarning);
  }
  return Success(
      [&](JsonWriter& w) {
        w.BeginArray();
        for (const Labels& l : series) w.LabelSet(l);
        w.EndArray();
      },
      warnings);
}

HttpResponse StringList(std::vector<std::string> values, int64_t limit) {
  std::vector<std::string> warnings;
  if (limit > 0 && static_cast<int64_t>(values.size()) > limit) {
    values.resize(static_cast<size_t>(limit));
    warnings.emplace_back(kTruncatedWarning);
  }
  return Success(
      [&](JsonWriter& w) {
        w.BeginArray();
        for (const std::string& v : values) w.String(v);
        w.EndArray();
      },
      warnings);
}

// Merges sorted, unique lists into one.
void MergeSorted(std::vector<std::string>* into, std::vector<std::string> more) {
  if (into->empty()) {
    *into = std::move(more);
    return;
  }
  std::vector<std::string> merged;
  merged.reserve(into->size() + more.size());
  std::set_union(std::make_move_iterator(into->begin()), std::make_move_iterator(into->end()),
                 std::make_move_iterator(more.begin()), std::make_move_iterator(more.end()),
                 std::back_inserter(merged));
  *into = std::move(merged);
}

// Labels and label values share their parameters: optional match[], start, end, limit.
// `name` empty: label names; otherwise the values of that label.
absl::StatusOr<HttpResponse> LabelQuery(const ApiContext& ctx, const ApiParams& params,
                                        Storage& storage, std::optional<std::string_view> name) {
  STRATA_ASSIGN_OR_RETURN(int64_t limit, LimitParam(params, "limit"));
  STRATA_ASSIGN_OR_RETURN(Timestamp start, TimeParam(params, "start", kMinTime));
  STRATA_ASSIGN_OR_RETURN(Timestamp end, TimeParam(params, "end", kMaxTime));
  STRATA_ASSIGN_OR_RETURN(std::vector<MatcherSet> sets,
                          MatchParams(params, ctx.engine_options.parser_options(), false));
  absl::StatusOr<std::unique_ptr<Querier>> querier = storage.MakeQuerier(start, end);
  if (!querier.ok()) return Execution(querier.status());
  if (sets.empty()) sets.emplace_back();
  std::vector<std::string> values;
  for (const MatcherSet& set : sets) {
    absl::StatusOr<std::vector<std::string>> got =
        name ? (*querier)->LabelValues(*name, set) : (*querier)->LabelNames(set);
    if (!got.ok()) return Execution(got.status());
    MergeSorted(&values, std::move(*got));
  }
  return StringList(std::move(values), limit);
}

absl::StatusOr<HttpResponse> FormatQuery(const ApiContext& ctx, const ApiParams& params) {
  STRATA_ASSIGN_OR_RETURN(promql::ExprPtr expr,
                          ParseQueryParam(params, ctx.engine_options.parser_options()));
  std::string text = promql::Pretty(*expr);
  return Success([&](JsonWriter& w) { w.String(text); });
}

absl::StatusOr<HttpResponse> Metadata(const ApiContext& ctx, const ApiParams& params) {
  STRATA_ASSIGN_OR_RETURN(int64_t limit, LimitParam(params, "limit"));
  STRATA_ASSIGN_OR_RETURN(int64_t per_metric, LimitParam(params, "limit_per_metric"));
  auto metrics = ctx.metadata.Get(params.Get("metric"), limit, per_metric);
  return Success([&](JsonWriter& w) {
    w.BeginObject();
    for (const auto& [metric, entries] : metrics) {
      w.Key(metric).BeginArray();
      for (const MetadataStore::Entry& e : entries) {
        w.BeginObject();
        w.Key("type").String(e.type);
        w.Key("help").String(e.help);
        w.Key("unit").String(e.unit);
        w.EndObject();
      }
      w.EndArray();
    }
    w.EndObject();
  });
}

// Exemplars are not stored; the query and times are still checked as Prometheus checks them.
absl::StatusOr<HttpResponse> QueryExemplars(const ApiContext& ctx, const ApiParams& params) {
  STRATA_RETURN_IF_ERROR(TimeParam(params, "start", kMinTime).status());
  STRATA_RETURN_IF_ERROR(TimeParam(params, "end", kMaxTime).status());
  STRATA_RETURN_IF_ERROR(ParseQueryParam(params, ctx.engine_options.parser_options()).status());
  return Success([](JsonWriter& w) { w.BeginArray().EndArray(); });
}

// ---- TSDB status ----

// The largest `limit` /api/v1/status/tsdb accepts, as in Prometheus 3.
constexpr int64_t kMaxTsdbStatusLimit = 10000;

absl::StatusOr<HttpResponse> TsdbStatus(const ApiParams& params, Storage& storage) {
  int64_t limit = 10;
  if (std::string_view s = params.Get("limit"); !s.empty()) {
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), limit);
    if (ec != std::errc() || p != s.data() + s.size() || limit < 1) {
      return absl::InvalidArgumentError("limit must be a positive number");
    }
    if (limit > kMaxTsdbStatusLimit) {
      return absl::InvalidArgumentError(
          fmt::format("limit must not exceed {}", kMaxTsdbStatusLimit));
    }
  }
  HeadStats stats = storage.head().Stats(kMetricName, static_cast<size_t>(limit));
  auto list = [](JsonWriter& w, std::string_view key,
                 const std::vector<HeadCardinalityStat>& entries) {
    w.Key(key).BeginArray();
    for (const HeadCardinalityStat& e : entries) {
      w.BeginObject().Key("name").String(e.name).Key("value").Uint(e.value).EndObject();
    }
    w.EndArray();
  };
  return Success([&](JsonWriter& w) {
    w.BeginObject();
    w.Key("headStats").BeginObject();
    w.Key("numSeries").Int(stats.num_series);
    w.Key("numLabelPairs").Int(stats.num_label_pairs);
    w.Key("chunkCount").Int(stats.chunk_count);
    w.Key("minTime").Int(stats.min_time);
    w.Key("maxTime").Int(stats.max_time);
    w.EndObject();
    list(w, "seriesCountByMetricName", stats.series_count_by_metric_name);
    list(w, "labelValueCountByLabelName", stats.label_value_count_by_label_name);
    list(w, "memoryInBytesByLabelName", stats.memory_in_bytes_by_label_name);
    list(w, "seriesCountByLabelValuePair", stats.series_count_by_label_value_pair);
    w.EndObject();
  });
}

// ---- Remote write ----

HttpResponse TextResponse(int status, std::string text) {
  if (!text.empty() && text.back() != '\n') text.push_back('\n');
  return HttpResponse::Text(status, std::move(text));
}

// What was rejected, for the 400 answer: "3 samples rejected: 2 out of order, 1 duplicate".
// `decoder` (null for other sources) adds the series rejected for their labels.
std::string RejectMessage(const AppendResult& r, const WriteRequestDecoder* decoder) {
  std::vector<std::string> parts;
  if (r.rejected() > 0) {
    std::vector<std::string> why;
    if (r.out_of_order > 0) why.push_back(fmt::format("{} out of order", r.out_of_order));
    if (r.duplicate > 0) {
      why.push_back(fmt::format("{} duplicate (same timestamp, different value)", r.duplicate));
    }
    if (r.too_old > 0) why.push_back(fmt::format("{} too old", r.too_old));
    std::string joined;
    for (const std::string& w : why) joined += (joined.empty() ? "" : ", ") + w;
    parts.push_back(fmt::format("{} samples rejected: {}", r.rejected(), joined));
  }
  if (decoder != nullptr && decoder->invalid_series() > 0) {
    parts.push_back(fmt::format("{} series with invalid labels ({} samples) rejected, first: {}",
                                decoder->invalid_series(), decoder->invalid_samples(),
                                decoder->first_error()));
  }
  std::string out;
  for (const std::string& p : parts) out += (out.empty() ? "" : "; ") + p;
  return out;
}

void RemoteWrite(ApiContext* ctx, const HttpRequest& req, HttpResponder responder) {
  Storage* storage = ctx->storage.load(std::memory_order_acquire);
  if (storage == nullptr) {
    responder.Send(TextResponse(503, "TSDB not ready"));
    return;
  }
  if (absl::Status st =
          CheckRemoteWriteHeaders(req.Header("Content-Type"), req.Header("Content-Encoding"));
      !st.ok()) {
    responder.Send(TextResponse(415, std::string(StatusText(st))));
    return;
  }
  // One decoder and buffer per pool thread, reused across requests.
  thread_local std::string scratch;
  thread_local WriteRequestDecoder decoder;
  // Series whose label bytes were seen before are found in the cache: the decoder skips
  // their validation and the head its lookup by labels. `known` holds them in series order.
  thread_local std::vector<SeriesPtr> known;
  thread_local std::vector<SeriesPtr> found;
  known.clear();
  struct ReleaseKnown {  // no series stays pinned by a thread between requests
    ~ReleaseKnown() {
      known.clear();
      found.clear();
    }
  } release_known;
  SeriesRefCache& cache = ctx->series_refs;
  cache.BindTo(storage->head().instance_id());
  RemoteWriteDecodeResult decoded =
      DecodeRemoteWriteBody(req.body, ctx->remote_write_limits, &scratch, &decoder,
                            [&](std::span<const std::string_view> raw, std::span<uint8_t> hit) {
                              found.assign(raw.size(), nullptr);
                              cache.FindAll(raw, found);
                              for (size_t i = 0; i < raw.size(); ++i) {
                                if (found[i] == nullptr) continue;
                                hit[i] = 1;
                                known.push_back(std::move(found[i]));
                              }
                            });
  if (!decoded.status.ok()) {
    responder.Send(TextResponse(decoded.http_status, std::string(StatusText(decoded.status))));
    return;
  }
  {
    Inc(ctx->metrics.remote_write_samples, static_cast<double>(decoder.total_samples()));
    Inc(ctx->metrics.remote_write_invalid_samples, static_cast<double>(decoder.invalid_samples()));
    Inc(ctx->metrics.remote_write_exemplars_dropped,
        static_cast<double>(decoder.total_exemplars()));
    Inc(ctx->metrics.remote_write_histograms_dropped,
        static_cast<double>(decoder.total_histograms()));
  }
  for (const RemoteWriteMetadata& m : decoder.metadata()) {
    if (m.metric_family_name.empty()) continue;
    ctx->metadata.Add(m.metric_family_name, {std::string(MetricTypeName(m.type)),
                                             std::string(m.help), std::string(m.unit)});
  }
  // The batch is reused too: refilling its label sets and sample vectors in place saves two
  // allocations and two frees per series, a fifth of the handler's cost with one sample per
  // series (what Prometheus sends). Entries past `used` keep their memory for later requests;
  // an unusually large request's batch is released afterwards.
  thread_local std::vector<SeriesBatch> batch;
  // Per batch entry, the label bytes to remember with the series the head looks up (new
  // series, and cached ones head GC had removed); empty when the label fields came apart.
  thread_local std::vector<std::string_view> to_cache;
  thread_local std::vector<SeriesPtr> looked_up;
  size_t used = 0, next_known = 0;
  to_cache.clear();
  struct ReleaseBatch {
    const size_t& used;
    ~ReleaseBatch() {
      for (size_t i = 0; i < used; ++i) batch[i].series = nullptr;
      if (batch.size() > 20'000) std::vector<SeriesBatch>().swap(batch);
    }
  } release_batch{used};
  for (size_t i = 0; i < decoder.series_count(); ++i) {
    RemoteWriteSeries s = decoder.series(i);
    SeriesPtr series;
    if (s.known) series = std::move(known[next_known++]);
    if (!s.ok() || s.samples.empty()) continue;
    if (used == batch.size()) batch.emplace_back();
    SeriesBatch& b = batch[used++];
    // Set either way: an entry must never keep a series from an earlier request.
    b.series = std::move(series);
    if (b.series != nullptr) {
      if (!b.labels.empty()) b.labels.AssignSortedViews({});
    } else {
      b.labels.AssignSortedViews(s.labels);
    }
    to_cache.push_back(s.raw_labels);
    b.samples.assign(s.samples.begin(), s.samples.end());
  }
  AppendResult result;
  if (used > 0) {
    absl::StatusOr<AppendResult> appended =
        storage->Append(std::span<const SeriesBatch>(batch.data(), used), &looked_up);
    if (!appended.ok()) {
      // Retryable: the sender backs off and sends the whole request again.
      int code = absl::IsResourceExhausted(appended.status()) ? 429 : 500;
      if (absl::IsUnavailable(appended.status())) code = 503;
      responder.Send(TextResponse(
          code, fmt::format("storage failed to append: {}", StatusText(appended.status()))));
      return;
    }
    result = *appended;
    for (size_t i = 0; i < used; ++i) {
      if (looked_up[i] != nullptr && !to_cache[i].empty()) {
        cache.Insert(to_cache[i], std::move(looked_up[i]));
      }
    }
    looked_up.clear();
  }
  if (result.rejected() > 0 || decoder.invalid_series() > 0) {
    responder.Send(TextResponse(400, RejectMessage(result, &decoder)));
    return;
  }
  responder.Send(HttpResponse::Empty(204));
}

// ---- Text import ----

// The HTTP status and Prometheus error type of a failed append: retryable (5xx, 429) like
// remote write's, since the body was valid.
HttpResponse AppendFailure(const absl::Status& st) {
  std::string message = fmt::format("storage failed to append: {}", StatusText(st));
  if (absl::IsResourceExhausted(st)) {
    return HttpResponse::Json(429, ApiErrorBody(ApiErrorType::kUnavailable, message));
  }
  ApiErrorType type =
      absl::IsUnavailable(st) ? ApiErrorType::kUnavailable : ApiErrorType::kInternal;
  return HttpResponse::Json(ApiErrorHttpCode(type), ApiErrorBody(type, message));
}

// The options of one import: `timestamp` (milliseconds) for lines without one, else the
// request time; every `extra_label=name=value`. Only URL parameters: the body is the data,
// whatever Content-Type a client (curl -d) gives it.
absl::StatusOr<TextFormatOptions> ImportOptions(const HttpRequest& req,
                                                const RemoteWriteLimits& limits) {
  STRATA_ASSIGN_OR_RETURN(ApiParams params, ApiParams::Parse(req.query, "", ""));
  TextFormatOptions options;
  options.default_timestamp = NowMillis();
  if (std::string_view ts = params.Get("timestamp"); !ts.empty()) {
    auto [p, ec] = std::from_chars(ts.data(), ts.data() + ts.size(), options.default_timestamp);
    if (ec != std::errc() || p != ts.data() + ts.size()) {
      return absl::InvalidArgumentError(fmt::format(
          "invalid parameter \"timestamp\": cannot parse \"{}\" as Unix milliseconds", ts));
    }
  }
  for (std::string_view extra : params.GetAll("extra_label")) {
    size_t eq = extra.find('=');
    if (eq == std::string_view::npos || eq == 0) {
      return absl::InvalidArgumentError(
          fmt::format("invalid parameter \"extra_label\": expected name=value, got \"{}\"", extra));
    }
    options.extra_labels.emplace_back(std::string(extra.substr(0, eq)),
                                      std::string(extra.substr(eq + 1)));
  }
  options.max_labels_per_series = limits.max_labels_per_series;
  options.max_label_name_bytes = limits.max_label_name_bytes;
  options.max_label_value_bytes = limits.max_label_value_bytes;
  return options;
}

// POST /api/v1/import/prometheus. The body is parsed and checked whole before anything is
// appended, so a body with any syntax or label error stores nothing (400 naming the line).
// A valid body is appended in one batch and acknowledged (204) once it is in the WAL;
// samples the storage refuses (older than a series' stored samples, too old) are counted
// in a 400 while the rest is kept, as remote write does.
void ImportPrometheusText(ApiContext* ctx, const HttpRequest& req, HttpResponder responder) {
  auto bad = [&](int code, ApiErrorType type, std::string_view message) {
    responder.Send(HttpResponse::Json(code, ApiErrorBody(type, message)));
  };
  Storage* storage = ctx->storage.load(std::memory_order_acquire);
  if (storage == nullptr) return bad(503, ApiErrorType::kUnavailable, "TSDB not ready");
  absl::StatusOr<TextFormatOptions> options = ImportOptions(req, ctx->remote_write_limits);
  if (!options.ok()) return bad(400, ApiErrorType::kBadData, StatusText(options.status()));

  std::string inflated;
  std::string_view body = req.body;
  std::string_view encoding = req.Header("Content-Encoding");
  if (encoding == "gzip" || encoding == "x-gzip") {
    absl::StatusOr<std::string> got =
        GzipDecompress(req.body, ctx->remote_write_limits.max_decoded_bytes);
    if (!got.ok()) {
      if (absl::IsResourceExhausted(got.status())) {
        return bad(413, ApiErrorType::kBadData, StatusText(got.status()));
      }
      return bad(400, ApiErrorType::kBadData,
                 fmt::format("cannot decompress the gzip body: {}", StatusText(got.status())));
    }
    inflated = std::move(*got);
    body = inflated;
  } else if (!encoding.empty() && encoding != "identity") {
    responder.Send(HttpResponse::Json(
        415, ApiErrorBody(ApiErrorType::kBadData,
                          fmt::format("unsupported Content-Encoding \"{}\": send the body "
                                      "uncompressed or with Content-Encoding: gzip",
                                      encoding))));
    return;
  }

  absl::StatusOr<TextParseResult> parsed = ParseTextFormat(body, *options);
  if (!parsed.ok()) {
    return bad(400, ApiErrorType::kBadData,
               fmt::format("cannot import: {}", StatusText(parsed.status())));
  }
  for (TextMetadata& m : parsed->metadata) {
    ctx->metadata.Add(m.metric, {std::move(m.type), std::move(m.help), ""});
  }
  std::vector<SeriesBatch> batch;
  batch.reserve(parsed->series.size());
  for (TextSeries& s : parsed->series) {
    batch.push_back(SeriesBatch{std::move(s.labels), std::move(s.samples)});
  }
  if (batch.empty()) return responder.Send(HttpResponse::Empty(204));
  double samples = 0;
  for (const SeriesBatch& b : batch) samples += static_cast<double>(b.samples.size());
  Inc(ctx->metrics.import_samples, samples);
  absl::StatusOr<AppendResult> appended = storage->Append(batch);
  if (!appended.ok()) return responder.Send(AppendFailure(appended.status()));
  if (appended->rejected() > 0) {
    return bad(400, ApiErrorType::kBadData, RejectMessage(*appended, nullptr));
  }
  responder.Send(HttpResponse::Empty(204));
}

// Runs `handler` on the write pool; a full pool answers 429 so that senders back off.
HttpHandler OnWritePool(ApiContext* ctx,
                        void (*handler)(ApiContext*, const HttpRequest&, HttpResponder)) {
  return [ctx, handler](const HttpRequest& req, HttpResponder responder) {
    // The request stays valid until the response is sent (HttpServer's contract).
    auto r = std::make_shared<HttpResponder>(std::move(responder));
    bool accepted = ctx->write_pool->TrySubmit(
        [ctx, handler, &req, r]() mutable { handler(ctx, req, std::move(*r)); });
    if (!accepted && !r->sent()) {
      r->Send(TextResponse(429, "too many write requests in flight; retry later"));
    }
  };
}

}  // namespace

void RegisterApiMetrics(MetricsRegistry* registry, ApiContext* ctx) {
  ApiContext::Metrics& m = ctx->metrics;
  m.remote_write_samples = registry->GetCounter("strata_remote_write_samples_received_total",
                                                "Samples in decoded remote-write requests.");
  m.remote_write_invalid_samples = registry->GetCounter(
      "strata_remote_write_invalid_samples_total",
      "Remote-write samples refused because their series' labels are invalid.");
  auto* dropped = registry->CounterFamily(
      "strata_remote_write_dropped_total",
      "Remote-write exemplars and native histogram samples received and not stored (not "
      "supported yet).",
      {"kind"});
  m.remote_write_exemplars_dropped = dropped->With({"exemplar"});
  m.remote_write_histograms_dropped = dropped->With({"native_histogram"});
  m.import_samples = registry->GetCounter("strata_import_samples_received_total",
                                          "Samples in accepted /api/v1/import/prometheus bodies.");
  auto* duration = registry->HistogramFamily("strata_query_duration_seconds",
                                             "Evaluation time of PromQL queries that succeeded.",
                                             DefaultLatencyBounds(), {"type"});
  m.instant_query_duration = duration->With({"instant"});
  m.range_query_duration = duration->With({"range"});
  m.query_samples = registry->GetCounter("strata_query_samples_total",
                                         "Samples read from storage by PromQL queries.");
}

void RegisterApiHandlers(Router& router, ApiContext* ctx) {
  auto on_pool = [ctx](ApiFunc fn) {
    return RunOnPool(ctx->query_pool, Api(ctx, std::move(fn)), ctx->query_inline);
  };
  router.HandleGetPost("/api/v1/query",
                       on_pool([ctx](const HttpRequest& req, const ApiParams& p, Storage& s) {
                         return InstantQuery(*ctx, req, p, s);
                       }));
  router.HandleGetPost("/api/v1/query_range",
                       on_pool([ctx](const HttpRequest& req, const ApiParams& p, Storage& s) {
                         return RangeQuery(*ctx, req, p, s);
                       }));
  router.HandleGetPost("/api/v1/series",
                       on_pool([ctx](const HttpRequest&, const ApiParams& p, Storage& s) {
                         return SeriesQuery(*ctx, p, s);
                       }));
  router.HandleGetPost("/api/v1/labels",
                       on_pool([ctx](const HttpRequest&, const ApiParams& p, Storage& s) {
                         return LabelQuery(*ctx, p, s, std::nullopt);
                       }));
  router.HandleGetPost("/api/v1/label/:name/values",
                       on_pool([ctx](const HttpRequest& req, const ApiParams& p,
                                     Storage& s) -> absl::StatusOr<HttpResponse> {
                         // Prometheus 3 clients write UTF-8 names as U__<escaped> in the path.
                         std::string name = UnescapeValueEncodedName(req.PathParam("name"));
                         if (name.empty() || !IsValidUtf8(name)) {
                           return absl::InvalidArgumentError(
                               fmt::format("invalid label name: {}", QuoteString(name)));
                         }
                         return LabelQuery(*ctx, p, s, name);
                       }));
  router.HandleGetPost("/api/v1/format_query",
                       on_pool([ctx](const HttpRequest&, const ApiParams& p, Storage&) {
                         return FormatQuery(*ctx, p);
                       }));
  router.Handle(
      "GET", "/api/v1/status/tsdb",
      on_pool([](const HttpRequest&, const ApiParams& p, Storage& s) { return TsdbStatus(p, s); }));
  router.HandleGetPost("/api/v1/metadata", Api(ctx, [ctx](const HttpRequest&, const ApiParams& p,
                                                          Storage&) { return Metadata(*ctx, p); }));
  router.HandleGetPost("/api/v1/query_exemplars",
                       on_pool([ctx](const HttpRequest&, const ApiParams& p, Storage&) {
                         return QueryExemplars(*ctx, p);
                       }));
  router.Handle("POST", "/api/v1/write", OnWritePool(ctx, RemoteWrite));
  router.Handle("POST", "/api/v1/import/prometheus", OnWritePool(ctx, ImportPrometheusText));
}

}  // namespace strata

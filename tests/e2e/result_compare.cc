#include "tests/e2e/result_compare.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <set>

#include "fmt/format.h"
#include "fmt/ranges.h"
#include "simdjson.h"

namespace strata::e2e {
namespace {

using simdjson::dom::element;

bool Number(element e, double* out) {
  if (e.is_double()) return e.get_double().get(*out) == simdjson::SUCCESS;
  if (e.is_int64()) {
    int64_t i = 0;
    if (e.get_int64().get(i) != simdjson::SUCCESS) return false;
    *out = static_cast<double>(i);
    return true;
  }
  if (e.is_uint64()) {
    uint64_t u = 0;
    if (e.get_uint64().get(u) != simdjson::SUCCESS) return false;
    *out = static_cast<double>(u);
    return true;
  }
  return false;
}

bool Labels(element e, std::map<std::string, std::string>* out, std::string* error) {
  simdjson::dom::object obj;
  if (e.get_object().get(obj) != simdjson::SUCCESS) {
    *error = "labels are not an object";
    return false;
  }
  for (auto field : obj) {
    std::string_view v;
    if (field.value.get_string().get(v) != simdjson::SUCCESS) {
      *error = fmt::format("label {} is not a string", std::string_view(field.key));
      return false;
    }
    (*out)[std::string(field.key)] = std::string(v);
  }
  return true;
}

// [ts, "value"]: the timestamp a number of seconds, the value a string.
bool Pair(element e, Sample* out, std::string* error) {
  simdjson::dom::array arr;
  if (e.get_array().get(arr) != simdjson::SUCCESS || arr.size() != 2) {
    *error = "a sample is not a two-element array";
    return false;
  }
  double ts = 0;
  if (!Number(arr.at(0).value_unsafe(), &ts)) {
    *error = "a sample timestamp is not a number";
    return false;
  }
  out->t_ms = std::llround(ts * 1000);
  std::string_view v;
  if (arr.at(1).get_string().get(v) != simdjson::SUCCESS) {
    *error = "a sample value is not a string";
    return false;
  }
  out->text = std::string(v);
  out->v = std::strtod(out->text.c_str(), nullptr);
  return true;
}

bool ValuesEqual(const Sample& a, const Sample& b, const CompareOptions& o) {
  if (o.exact) return a.text == b.text;
  if (std::isnan(a.v) || std::isnan(b.v)) return std::isnan(a.v) && std::isnan(b.v);
  if (a.v == b.v) return true;
  if (std::isinf(a.v) || std::isinf(b.v)) return false;
  if (std::fabs(a.v - b.v) <= o.abs_tol) return true;
  return std::fabs(a.v - b.v) <= o.rel_tol * std::max(std::fabs(a.v), std::fabs(b.v));
}

std::string SamplesText(const std::vector<Sample>& s, size_t max = 6) {
  std::string out;
  for (size_t i = 0; i < s.size() && i < max; ++i) {
    out += fmt::format("{}[{:.3f},\"{}\"]", i ? "," : "", s[i].t_ms / 1000.0, s[i].text);
  }
  if (s.size() > max) out += fmt::format(",... ({} samples)", s.size());
  return out;
}

bool ParseDoc(simdjson::dom::parser& parser, std::string_view body, element* doc,
              std::string* error) {
  if (parser.parse(body.data(), body.size()).get(*doc) != simdjson::SUCCESS) {
    *error = fmt::format("not JSON: {}", Abbreviate(body, 300));
    return false;
  }
  std::string_view status;
  if ((*doc)["status"].get_string().get(status) != simdjson::SUCCESS || status != "success") {
    *error = fmt::format("not a success: {}", Abbreviate(body, 300));
    return false;
  }
  return true;
}

}  // namespace

std::string Series::Key() const {
  std::string out;
  auto name = labels.find("__name__");
  if (name != labels.end()) out = name->second;
  out += "{";
  bool first = true;
  for (const auto& [k, v] : labels) {
    if (k == "__name__") continue;
    out += fmt::format("{}{}=\"{}\"", first ? "" : ", ", k, v);
    first = false;
  }
  return out + "}";
}

std::string Abbreviate(std::string_view s, size_t n) {
  if (s.size() <= n) return std::string(s);
  return fmt::format("{}... ({} bytes)", s.substr(0, n), s.size());
}

bool ParseQueryResponse(std::string_view body, QueryResult* out, std::string* error) {
  simdjson::dom::parser parser;
  element doc;
  if (!ParseDoc(parser, body, &doc, error)) return false;
  std::string_view type;
  if (doc["data"]["resultType"].get_string().get(type) != simdjson::SUCCESS) {
    *error = "no data.resultType";
    return false;
  }
  out->result_type = std::string(type);
  element result;
  if (doc["data"]["result"].get(result) != simdjson::SUCCESS) {
    *error = "no data.result";
    return false;
  }
  out->series.clear();
  if (type == "scalar" || type == "string") {
    Series s;
    s.samples.emplace_back();
    return Pair(result, &s.samples.back(), error) && (out->series.push_back(std::move(s)), true);
  }
  simdjson::dom::array arr;
  if (result.get_array().get(arr) != simdjson::SUCCESS) {
    *error = "data.result is not an array";
    return false;
  }
  for (element item : arr) {
    Series s;
    element metric;
    if (item["metric"].get(metric) != simdjson::SUCCESS) {
      *error = "a result has no metric";
      return false;
    }
    if (!Labels(metric, &s.labels, error)) return false;
    if (type == "vector") {
      s.samples.emplace_back();
      element value;
      if (item["value"].get(value) != simdjson::SUCCESS) {
        *error = "a vector element has no value";
        return false;
      }
      if (!Pair(value, &s.samples.back(), error)) return false;
    } else if (type == "matrix") {
      simdjson::dom::array values;
      if (item["values"].get_array().get(values) != simdjson::SUCCESS) {
        *error = "a matrix element has no values array";
        return false;
      }
      for (element v : values) {
        s.samples.emplace_back();
        if (!Pair(v, &s.samples.back(), error)) return false;
      }
    } else {
      *error = fmt::format("unknown resultType {}", type);
      return false;
    }
    out->series.push_back(std::move(s));
  }
  return true;
}

bool ParseVmExport(std::string_view body, std::vector<Series>* out, std::string* error) {
  simdjson::dom::parser parser;
  size_t pos = 0;
  while (pos < body.size()) {
    size_t nl = body.find('\n', pos);
    if (nl == std::string_view::npos) nl = body.size();
    std::string_view line = body.substr(pos, nl - pos);
    pos = nl + 1;
    if (line.empty()) continue;
    element doc;
    if (parser.parse(line.data(), line.size()).get(doc) != simdjson::SUCCESS) {
      *error = fmt::format("export line is not JSON: {}", Abbreviate(line, 200));
      return false;
    }
    Series s;
    element metric;
    simdjson::dom::array values, timestamps;
    if (doc["metric"].get(metric) != simdjson::SUCCESS || !Labels(metric, &s.labels, error) ||
        doc["values"].get_array().get(values) != simdjson::SUCCESS ||
        doc["timestamps"].get_array().get(timestamps) != simdjson::SUCCESS ||
        values.size() != timestamps.size()) {
      if (error->empty()) *error = fmt::format("bad export line: {}", Abbreviate(line, 200));
      return false;
    }
    for (size_t i = 0; i < values.size(); ++i) {
      Sample smp;
      double ts = 0;
      if (!Number(values.at(i).value_unsafe(), &smp.v) ||
          !Number(timestamps.at(i).value_unsafe(), &ts)) {
        *error = fmt::format("bad export sample: {}", Abbreviate(line, 200));
        return false;
      }
      smp.t_ms = static_cast<int64_t>(ts);
      smp.text = fmt::format("{}", smp.v);
      s.samples.push_back(std::move(smp));
    }
    out->push_back(std::move(s));
  }
  return true;
}

std::string CompareSeries(const std::vector<Series>& ours, const std::vector<Series>& theirs,
                          const CompareOptions& options) {
  std::string diff;
  int reported = 0;
  auto add = [&](std::string line) {
    if (++reported <= 8) diff += line + "\n";
  };
  if (options.ordered) {
    std::vector<std::string> a, b;
    for (const Series& s : ours) a.push_back(s.Key());
    for (const Series& s : theirs) b.push_back(s.Key());
    if (a != b) {
      add(fmt::format("series order differs: ours [{}] theirs [{}]", fmt::join(a, "; "),
                      fmt::join(b, "; ")));
    }
  }
  std::map<std::string, const Series*> a, b;
  for (const Series& s : ours) {
    if (!a.emplace(s.Key(), &s).second) add("ours has the series twice: " + s.Key());
  }
  for (const Series& s : theirs) {
    if (!b.emplace(s.Key(), &s).second) add("theirs has the series twice: " + s.Key());
  }
  for (const auto& [key, s] : a) {
    auto it = b.find(key);
    if (it == b.end()) {
      add(fmt::format("only ours has {} {}", key, SamplesText(s->samples)));
      continue;
    }
    const std::vector<Sample>& x = s->samples;
    const std::vector<Sample>& y = it->second->samples;
    size_t n = std::max(x.size(), y.size());
    for (size_t i = 0; i < n; ++i) {
      if (i >= x.size() || i >= y.size() || x[i].t_ms != y[i].t_ms ||
          !ValuesEqual(x[i], y[i], options)) {
        std::vector<Sample> xs(x.begin() + std::min(i, x.size()), x.end());
        std::vector<Sample> ys(y.begin() + std::min(i, y.size()), y.end());
        add(fmt::format("{} differs from sample {} on: ours {} theirs {}", key, i,
                        SamplesText(xs, 4), SamplesText(ys, 4)));
        break;
      }
    }
  }
  for (const auto& [key, s] : b) {
    if (!a.contains(key)) add(fmt::format("only theirs has {} {}", key, SamplesText(s->samples)));
  }
  if (reported > 8) diff += fmt::format("... {} differences in all\n", reported);
  return diff;
}

std::string CompareQueryResponses(std::string_view ours, std::string_view theirs,
                                  const CompareOptions& options) {
  QueryResult a, b;
  std::string error;
  if (!ParseQueryResponse(ours, &a, &error)) return "ours: " + error;
  if (!ParseQueryResponse(theirs, &b, &error)) return "theirs: " + error;
  if (a.result_type != b.result_type) {
    return fmt::format("resultType: ours {} theirs {}", a.result_type, b.result_type);
  }
  return CompareSeries(a.series, b.series, options);
}

std::string CompareSeriesResponses(std::string_view ours, std::string_view theirs) {
  auto decode = [](std::string_view body, std::vector<Series>* out) -> std::string {
    simdjson::dom::parser parser;
    element doc;
    std::string error;
    if (!ParseDoc(parser, body, &doc, &error)) return error;
    simdjson::dom::array arr;
    if (doc["data"].get_array().get(arr) != simdjson::SUCCESS) return "data is not an array";
    for (element e : arr) {
      Series s;
      if (!Labels(e, &s.labels, &error)) return error;
      out->push_back(std::move(s));
    }
    return "";
  };
  std::vector<Series> a, b;
  if (std::string e = decode(ours, &a); !e.empty()) return "ours: " + e;
  if (std::string e = decode(theirs, &b); !e.empty()) return "theirs: " + e;
  return CompareSeries(a, b, CompareOptions{.exact = true});
}

std::string CompareStringListResponses(std::string_view ours, std::string_view theirs) {
  auto decode = [](std::string_view body, std::vector<std::string>* out) -> std::string {
    simdjson::dom::parser parser;
    element doc;
    std::string error;
    if (!ParseDoc(parser, body, &doc, &error)) return error;
    simdjson::dom::array arr;
    if (doc["data"].get_array().get(arr) != simdjson::SUCCESS) return "data is not an array";
    for (element e : arr) {
      std::string_view s;
      if (e.get_string().get(s) != simdjson::SUCCESS) return "an element is not a string";
      out->emplace_back(s);
    }
    return "";
  };
  std::vector<std::string> a, b;
  if (std::string e = decode(ours, &a); !e.empty()) return "ours: " + e;
  if (std::string e = decode(theirs, &b); !e.empty()) return "theirs: " + e;
  if (a == b) return "";
  std::vector<std::string> only_a, only_b;
  std::set<std::string> sa(a.begin(), a.end()), sb(b.begin(), b.end());
  for (const std::string& s : sa) {
    if (!sb.contains(s)) only_a.push_back(s);
  }
  for (const std::string& s : sb) {
    if (!sa.contains(s)) only_b.push_back(s);
  }
  return fmt::format(
      "lists differ (ours {} entries, theirs {}); only ours: [{}]; only theirs: [{}]{}", a.size(),
      b.size(), fmt::join(only_a, ", "), fmt::join(only_b, ", "),
      only_a.empty() && only_b.empty() ? " (order differs)" : "");
}

}  // namespace strata::e2e

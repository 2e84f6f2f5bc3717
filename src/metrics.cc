#include "src/metrics.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "src/strings.h"

namespace strata {
namespace {

enum Kind { kCounter = 0, kGauge = 1, kHistogram = 2, kCallback = 3, kCallbackCounter = 4 };

const char* KindName(int kind) {
  switch (kind) {
    case kCounter:
    case kCallbackCounter:
      return "counter";
    case kHistogram:
      return "histogram";
    default:
      return "gauge";
  }
}

// Formats like Go's strconv.FormatFloat(v, 'g', -1, 64), which the text format uses.
std::string FormatSampleValue(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  char buf[64];
  auto res = std::to_chars(buf, buf + sizeof(buf), v, std::chars_format::scientific);
  std::string_view sci(buf, res.ptr - buf);
  size_t e = sci.find('e');
  std::string_view mant = sci.substr(0, e);
  int exp = std::atoi(std::string(sci.substr(e + 1)).c_str());
  bool neg = !mant.empty() && mant[0] == '-';
  if (neg) mant.remove_prefix(1);
  std::string digits;
  for (char c : mant) {
    if (c != '.') digits.push_back(c);
  }
  std::string out = neg ? "-" : "";
  if (exp < -4 || exp >= 6) {  // Go's rule for the shortest 'g' form
    // Exponent form: d.ddde±XX.
    out += digits[0];
    if (digits.size() > 1) {
      out += '.';
      out += digits.substr(1);
    }
    out += fmt::format("e{}{:02d}", exp < 0 ? '-' : '+', std::abs(exp));
    return out;
  }
  if (exp < 0) {
    out += "0.";
    out.append(static_cast<size_t>(-exp - 1), '0');
    out += digits;
    return out;
  }
  if (static_cast<size_t>(exp) + 1 >= digits.size()) {
    out += digits;
    out.append(static_cast<size_t>(exp) + 1 - digits.size(), '0');
    return out;
  }
  out += digits.substr(0, exp + 1);
  out += '.';
  out += digits.substr(exp + 1);
  return out;
}

// Escapes a HELP text: backslash and newline.
std::string EscapeHelp(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

// Escapes a label value for the text format: backslash, double quote and newline.
std::string EscapeLabelValue(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

}  // namespace

Histogram::Histogram(std::vector<double> bounds)
    : bounds_(std::move(bounds)),
      buckets_(std::make_unique<std::atomic<uint64_t>[]>(bounds_.size() + 1)) {
  std::sort(bounds_.begin(), bounds_.end());
  for (size_t i = 0; i <= bounds_.size(); ++i) buckets_[i].store(0);
}

void Histogram::Observe(double v) {
  size_t i = std::lower_bound(bounds_.begin(), bounds_.end(), v) - bounds_.begin();
  buckets_[i].fetch_add(1, std::memory_order_relaxed);
  sum_.fetch_add(v, std::memory_order_relaxed);
  count_.fetch_add(1, std::memory_order_relaxed);
}

std::vector<uint64_t> Histogram::CumulativeCounts() const {
  std::vector<uint64_t> out(bounds_.size() + 1);
  uint64_t total = 0;
  for (size_t i = 0; i <= bounds_.size(); ++i) {
    total += buckets_[i].load(std::memory_order_relaxed);
    out[i] = total;
  }
  return out;
}

std::vector<double> DefaultLatencyBounds() {
  return {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60};
}

template <typename T>
T* MetricFamily<T>::With(const std::vector<std::string>& label_values) {
  if (label_values.size() != num_labels_) {
    std::fprintf(stderr, "metrics: %zu label values given for %zu label names\n",
                 label_values.size(), num_labels_);
    std::abort();
  }
  std::lock_guard lock(mu_);
  auto it = children_.find(label_values);
  if (it != children_.end()) return it->second.get();
  std::unique_ptr<T> child;
  if constexpr (std::is_same_v<T, Histogram>) {
    child = std::make_unique<Histogram>(bounds_);
  } else {
    child = std::make_unique<T>();
  }
  T* raw = child.get();
  children_.emplace(label_values, std::move(child));
  return raw;
}

template <typename T>
T* MetricFamily<T>::With(std::initializer_list<std::string_view> label_values) {
  std::vector<std::string> v;
  v.reserve(label_values.size());
  for (auto s : label_values) v.emplace_back(s);
  return With(v);
}

template class MetricFamily<Counter>;
template class MetricFamily<Gauge>;
template class MetricFamily<Histogram>;

struct MetricsRegistry::Family {
  std::string name;
  std::string help;
  int kind;
  std::vector<std::string> label_names;
  std::unique_ptr<MetricFamily<Counter>> counters;
  std::unique_ptr<MetricFamily<Gauge>> gauges;
  std::unique_ptr<MetricFamily<Histogram>> histograms;
  std::function<double()> callback;
};

MetricsRegistry::MetricsRegistry() = default;
MetricsRegistry::~MetricsRegistry() = default;

MetricsRegistry::Family* MetricsRegistry::Register(std::string name, std::string help, int kind,
                                                   std::vector<std::string> label_names,
                                                   std::vector<double> bounds) {
  std::lock_guard lock(mu_);
  auto it = families_.find(name);
  if (it != families_.end()) {
    if (it->second->kind != kind || it->second->label_names != label_names) {
      std::fprintf(stderr, "metrics: %s registered twice with different type or labels\n",
                   name.c_str());
      std::abort();
    }
    return it->second.get();
  }
  auto f = std::make_unique<Family>();
  f->name = name;
  f->help = std::move(help);
  f->kind = kind;
  f->label_names = std::move(label_names);
  size_t n = f->label_names.size();
  if (kind == kCounter) f->counters.reset(new MetricFamily<Counter>(n));
  if (kind == kGauge) f->gauges.reset(new MetricFamily<Gauge>(n));
  if (kind == kHistogram) f->histograms.reset(new MetricFamily<Histogram>(n, std::move(bounds)));
  Family* raw = f.get();
  families_.emplace(std::move(name), std::move(f));
  return raw;
}

MetricFamily<Counter>* MetricsRegistry::CounterFamily(std::string name, std::string help,
                                                      std::vector<std::string> label_names) {
  return Register(std::move(name), std::move(help), kCounter, std::move(label_names), {})
      ->counters.get();
}

MetricFamily<Gauge>* MetricsRegistry::GaugeFamily(std::string name, std::string help,
                                                  std::vector<std::string> label_names) {
  return Register(std::move(name), std::move(help), kGauge, std::move(label_names), {})
      ->gauges.get();
}

MetricFamily<Histogram>* MetricsRegistry::HistogramFamily(std::string name, std::string help,
                                                          std::vector<double> bounds,
                                                          std::vector<std::string> label_names) {
  return Register(std::move(name), std::move(help), kHistogram, std::move(label_names),
                  std::move(bounds))
      ->histograms.get();
}

Counter* MetricsRegistry::GetCounter(std::string name, std::string help) {
  return CounterFamily(std::move(name), std::move(help))->With(std::vector<std::string>{});
}

Gauge* MetricsRegistry::GetGauge(std::string name, std::string help) {
  return GaugeFamily(std::move(name), std::move(help))->With(std::vector<std::string>{});
}

Histogram* MetricsRegistry::GetHistogram(std::string name, std::string help,
                                         std::vector<double> bounds) {
  return HistogramFamily(std::move(name), std::move(help), std::move(bounds))
      ->With(std::vector<std::string>{});
}

void MetricsRegistry::AddCallbackGauge(std::string name, std::string help,
                                       std::function<double()> fn) {
  Family* f = Register(std::move(name), std::move(help), kCallback, {}, {});
  std::lock_guard lock(mu_);
  f->callback = std::move(fn);
}

void MetricsRegistry::AddCallbackCounter(std::string name, std::string help,
                                         std::function<double()> fn) {
  Family* f = Register(std::move(name), std::move(help), kCallbackCounter, {}, {});
  std::lock_guard lock(mu_);
  f->callback = std::move(fn);
}

void MetricsRegistry::RemoveCallback(std::string_view name) {
  std::lock_guard lock(mu_);
  auto it = families_.find(name);
  if (it != families_.end() &&
      (it->second->kind == kCallback || it->second->kind == kCallbackCounter)) {
    families_.erase(it);
  }
}

template <typename Emit>
void MetricsRegistry::ForEachSample(const Family& f, Emit&& emit) {
  auto histogram = [&](const std::vector<std::string>& values, const Histogram& h) {
    auto counts = h.CumulativeCounts();
    for (size_t i = 0; i < h.bounds().size(); ++i) {
      emit("_bucket", values, "le", FormatSampleValue(h.bounds()[i]),
           static_cast<double>(counts[i]));
    }
    emit("_bucket", values, "le", "+Inf", static_cast<double>(counts.back()));
    emit("_sum", values, "", "", h.Sum());
    emit("_count", values, "", "", static_cast<double>(counts.back()));
  };
  const std::vector<std::string> none;
  if (f.kind == kCallback || f.kind == kCallbackCounter) {
    emit("", none, "", "", f.callback ? f.callback() : 0);
  } else if (f.kind == kCounter) {
    std::lock_guard child_lock(f.counters->mu_);
    for (const auto& [values, c] : f.counters->children_) emit("", values, "", "", c->Value());
  } else if (f.kind == kGauge) {
    std::lock_guard child_lock(f.gauges->mu_);
    for (const auto& [values, g] : f.gauges->children_) emit("", values, "", "", g->Value());
  } else {
    std::lock_guard child_lock(f.histograms->mu_);
    for (const auto& [values, h] : f.histograms->children_) histogram(values, *h);
  }
}

std::string MetricsRegistry::ExpositionText() const {
  std::string out;
  std::lock_guard lock(mu_);
  for (const auto& entry : families_) {
    const std::string& name = entry.first;
    const Family* f = entry.second.get();
    out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, EscapeHelp(f->help), name,
                       KindName(f->kind));
    ForEachSample(*f, [&](std::string_view suffix, const std::vector<std::string>& values,
                          std::string_view extra_name, std::string_view extra_value, double v) {
      out += name;
      out += suffix;
      std::string labels;
      for (size_t i = 0; i < values.size(); ++i) {
        if (values[i].empty()) continue;
        if (!labels.empty()) labels += ',';
        labels += fmt::format("{}=\"{}\"", f->label_names[i], EscapeLabelValue(values[i]));
      }
      if (!extra_name.empty()) {
        if (!labels.empty()) labels += ',';
        labels += fmt::format("{}=\"{}\"", extra_name, extra_value);
      }
      if (!labels.empty()) out += "{" + labels + "}";
      out += ' ';
      out += FormatSampleValue(v);
      out += '\n';
    });
  }
  return out;
}

std::vector<GatheredSample> MetricsRegistry::Gather() const {
  std::vector<GatheredSample> out;
  std::lock_guard lock(mu_);
  for (const auto& entry : families_) {
    const std::string& name = entry.first;
    const Family* f = entry.second.get();
    ForEachSample(*f, [&](std::string_view suffix, const std::vector<std::string>& values,
                          std::string_view extra_name, std::string_view extra_value, double v) {
      LabelsBuilder b;
      b.Set(kMetricName, name + std::string(suffix));
      for (size_t i = 0; i < values.size(); ++i) b.Set(f->label_names[i], values[i]);
      if (!extra_name.empty()) b.Set(extra_name, extra_value);
      out.push_back({b.Build(), v});
    });
  }
  return out;
}

MetricsRegistry& DefaultRegistry() {
  static MetricsRegistry* registry = new MetricsRegistry();
  return *registry;
}

}  // namespace strata

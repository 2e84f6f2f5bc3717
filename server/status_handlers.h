// The /api/v1 endpoints that need neither storage nor the query engine: build and runtime
// information, flags, and the scrape-target, rule and alert lists, which are empty because
// Strata neither scrapes targets nor evaluates rules (Grafana asks for them regardless).
#ifndef STRATA_SERVER_STATUS_HANDLERS_H_
#define STRATA_SERVER_STATUS_HANDLERS_H_

#include <string>

#include "server/flags.h"
#include "server/http_server.h"
#include "src/sample.h"

namespace strata {

// The Prometheus version /api/v1/status/buildinfo reports. Grafana reads it to pick its
// code paths: from 2.53 on it uses the fast label endpoints with match[]; a buildinfo
// without "features" identifies plain Prometheus (not Mimir or Cortex).
inline constexpr std::string_view kPrometheusCompatibleVersion = "3.0.0";

struct StatusInfo {
  ServerConfig config;
  Timestamp start_time_ms = 0;
  std::string cwd;
};

// GET /api/v1/status/buildinfo, /api/v1/status/runtimeinfo, /api/v1/status/flags,
// /api/v1/targets, /api/v1/rules, /api/v1/alerts and /api/v1/alertmanagers, answered as
// Prometheus 3 answers them. The rules endpoint takes its GET/POST filters (type,
// rule_name[], ...) and still answers an empty group list.
void RegisterStatusHandlers(Router& router, StatusInfo info);

}  // namespace strata

#endif  // STRATA_SERVER_STATUS_HANDLERS_H_

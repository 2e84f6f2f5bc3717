// The TSDB admin endpoints of the Prometheus API, behind --web.enable-admin-api:
//   POST/PUT /api/v1/admin/tsdb/delete_series    match[] (repeated), start, end -> 204
//   POST/PUT /api/v1/admin/tsdb/clean_tombstones -> 204
//   POST/PUT /api/v1/admin/tsdb/snapshot         skip_head -> {"name": "<snapshot>"}
// Snapshots go to <data dir>/snapshots/<UTC time YYYYMMDDTHHMMSSZ>-<16 hex digits>.
// Disabled, each answers as Prometheus does: errorType "unavailable", "admin APIs disabled".
#ifndef STRATA_SERVER_ADMIN_HANDLERS_H_
#define STRATA_SERVER_ADMIN_HANDLERS_H_

#include <string>

#include "server/api_handlers.h"
#include "server/http_server.h"

namespace strata {

// A snapshot directory name for the given time (ms since the epoch) and random number:
// "20240102T030405Z-00000000deadbeef".
std::string SnapshotName(int64_t now_ms, uint64_t random);

// REQUIRES: `ctx` and its query pool outlive the server.
void RegisterAdminHandlers(Router& router, ApiContext* ctx, bool enabled);

}  // namespace strata

#endif  // STRATA_SERVER_ADMIN_HANDLERS_H_

// HTTP handlers run on a WorkPool (src/work_pool.h): the pool that evaluates queries
// (--query.max-concurrency threads), so that slow queries never occupy the HTTP I/O threads.
#ifndef STRATA_SERVER_WORK_POOL_H_
#define STRATA_SERVER_WORK_POOL_H_

#include "server/http_server.h"
#include "src/work_pool.h"

namespace strata {

// Wraps `handler` so that it runs on `pool` instead of the I/O thread. When the pool refuses
// the work, the client gets 503 with the Prometheus error shape (errorType "unavailable").
// REQUIRES: `pool` outlives the server.
HttpHandler RunOnPool(WorkPool* pool, HttpHandler handler);

}  // namespace strata

#endif  // STRATA_SERVER_WORK_POOL_H_

#!/usr/bin/env python3
"""Disk per sample of whole servers on the storage benchmarks' node-exporter-like day.

The data is compacted_bench's BM_OnDisk day (bench/node_exporter_data.h; noisy or
realistic, 10 hosts by default), written as Prometheus text by node_exporter_text and fed
to each server through its text import (/api/v1/import/prometheus, which Strata and
VictoriaMetrics both take), file by file. The day is placed two days before today (UTC) so
that it lies inside every retention.

  Strata: import, SIGTERM, start again and wait for the first compaction after the start
          (the one that compacts whatever the stop left), SIGTERM.
  VictoriaMetrics: import, /internal/force_flush, /internal/force_merge of the day's month,
          wait until no merge is running, SIGTERM.

The figure is the data directory's bytes (sum of file sizes, and allocated blocks) after
the last stop, divided by the samples sent. Before that stop, a dashboard's queries over
the stored day (DAY_QUERIES, instant at its end and range over it at a 5 min step) are
timed as the macro benchmark times its queries (one warm-up, then the median of --reps). Prometheus 2.42 takes no text import and no
samples that old over remote write into a fresh head in the same way, so it is left out;
its XOR chunks are what BM_OnDisk reports as xor_disk_bytes_per_sample.

  bench/macro/disk.py [--hosts N] [--variants noisy,realistic] [--systems ...]
"""

import argparse
import datetime
import http.client
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import macro  # noqa: E402  (Server, start_system, dir_size, loadavg)


# Grafana-style panels over the day (bench/node_exporter_data.h names its series).
DAY_QUERIES = [
    ("cpu busy by host", 'sum by (instance) (rate(node_cpu_seconds_total{mode!="idle"}[5m]))'),
    ("cpu user avg", 'avg(rate(node_cpu_seconds_total{mode="user"}[5m]))'),
    ("p99 latency", "histogram_quantile(0.99, sum by (le, handler) "
                    "(rate(promhttp_request_duration_seconds_bucket[5m])))"),
    ("network top 5", "topk(5, rate(node_network_total[5m]))"),
    ("memory max 1h", "max by (instance) (max_over_time(node_memory_bytes[1h]))"),
    ("load regex host", 'max(node_load{n="0", instance=~"host-[0-4].*"})'),
]


def post_file(server, path, file_path):
    with open(file_path, "rb") as f:
        body = f.read()
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=600)
    try:
        conn.request("POST", path, body=body, headers={"Content-Type": "text/plain"})
        r = conn.getresponse()
        answer = r.read()
        if r.status // 100 != 2:
            raise RuntimeError(f"{server.name}: POST {path} of {file_path} answered {r.status}: "
                               f"{answer[:300]!r}")
    finally:
        conn.close()


def metric(server, name, labels_with=""):
    """Sum of the samples of one metric in the server's /metrics (0 when absent), of those
    whose label set contains `labels_with` when given."""
    status, body = server.get("/metrics")
    if status != 200:
        raise RuntimeError(f"{server.name}: /metrics answered {status}")
    total = 0.0
    pattern = re.compile(rb"^" + re.escape(name.encode()) + rb"(\{[^}]*\})? (\S+)")
    for line in body.splitlines():
        m = pattern.match(line)
        if m and labels_with.encode() in (m.group(1) or b""):
            total += float(m.group(2))
    return total


def wait_for(what, cond, timeout):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if cond():
            return
        time.sleep(1)
    raise RuntimeError(f"timed out after {timeout} s waiting for {what}")


def feed(server, files):
    start = time.time()
    for i, f in enumerate(files):
        post_file(server, "/api/v1/import/prometheus", f)
        print(f"    {server.name}: file {i + 1}/{len(files)} imported", flush=True)
    return time.time() - start


def time_queries(server, day_start_ms, reps):
    """The day's dashboard queries: latency (ms) and answer size per query and kind."""
    t_start = day_start_ms / 1000 + 3600
    t_end = day_start_ms / 1000 + 24 * 3600 - 900
    return macro.query_latencies(server, t_end, t_start, reps, 300, DAY_QUERIES)


def run_strata(bins, work, files, flush_interval_s, day_start_ms, reps):
    args = ("--self-scrape.interval=0",)
    s = macro.start_system("strata", bins, work, strata_args=args)
    s.wait_ready()
    seconds = feed(s, files)
    if s.stop() != 0:
        raise RuntimeError("strata did not stop cleanly after the import")
    s = macro.Server("strata", s.proc.args, s.port, "/-/ready", s.data_dir,
                     os.path.join(work, "strata", "server2.log"))
    s.wait_ready()
    # The first compaction after a start takes everything the stop left; it runs after
    # the first flush of the flush loop, so it is over once the loop's second flush is.
    print(f"    strata: restarted, waiting for the compaction after its first flush "
          f"(~{2 * flush_interval_s} s)", flush=True)
    wait_for("strata's first compaction after the restart",
             lambda: metric(s, "strata_flush_duration_seconds_count") >= 2,
             flush_interval_s * 3 + 600)
    compacted = metric(s, "strata_compaction_samples_total")
    print(f"    strata: {compacted:,.0f} samples compacted after the restart", flush=True)
    queries = time_queries(s, day_start_ms, reps) if reps > 0 else {}
    if s.stop() != 0:
        raise RuntimeError("strata did not stop cleanly after the compaction")
    return seconds, s.data_dir, queries


def run_vm(bins, work, files, month, day_start_ms, reps):
    s = macro.start_system("victoriametrics", bins, work)
    s.wait_ready()
    seconds = feed(s, files)
    def get(path):
        status, body = s.get(path, timeout=600)
        if status != 200:
            raise RuntimeError(f"victoriametrics: {path} answered {status}: {body[:200]!r}")

    def idle():
        return metric(s, "vm_active_force_merges") + metric(s, "vm_active_merges") == 0

    # A forced merge runs in the background and may start after the answer: merge until the
    # month's data is one part with nothing pending, every wait for no merge running.
    get("/internal/force_flush")
    for _ in range(20):
        get(f"/internal/force_merge?partition_prefix={month}")
        time.sleep(2)
        for _ in range(3):
            wait_for("victoriametrics' merges", idle, 1800)
            time.sleep(1)
        parts = metric(s, "vm_parts", 'type="storage/')
        if parts <= 1 and metric(s, "vm_pending_rows", 'type="storage"') == 0:
            break
        get("/internal/force_flush")
    rows = metric(s, "vm_rows", 'type="storage/')
    print(f"    victoriametrics: {parts:.0f} data part(s), {rows:,.0f} rows after the forced merges",
          flush=True)
    queries = time_queries(s, day_start_ms, reps) if reps > 0 else {}
    if s.stop() != 0:
        raise RuntimeError("victoriametrics did not stop cleanly")
    return seconds, s.data_dir, queries


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build-dir", default="build/release")
    ap.add_argument("--hosts", type=int, default=10)
    ap.add_argument("--variants", default="noisy,realistic")
    ap.add_argument("--systems", default="strata,victoriametrics")
    ap.add_argument("--reps", type=int, default=7,
                    help="repetitions of each dashboard query after its warm-up (0: none)")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    args = ap.parse_args()
    bins = {
        "strata": os.path.join(args.build_dir, "server", "strata"),
        "victoriametrics": shutil.which("victoria-metrics") or "/usr/bin/victoria-metrics",
        "text": os.path.join(args.build_dir, "bench", "node_exporter_text"),
    }
    for name in ["text"] + args.systems.split(","):
        if not os.access(bins[name], os.X_OK):
            sys.exit(f"disk.py: {bins[name]} is missing or not executable (build with "
                     f"bench/macro.sh's cmake line, or install the Debian packages with "
                     f"scripts/install-deps.sh)")
    day = datetime.datetime.now(datetime.timezone.utc).date() - datetime.timedelta(days=2)
    day_start_ms = int(datetime.datetime(day.year, day.month, day.day,
                                         tzinfo=datetime.timezone.utc).timestamp()) * 1000
    month = f"{day.year:04d}_{day.month:02d}"
    print(f"day {day} (UTC), {args.hosts} hosts, load average {macro.loadavg()}", flush=True)
    rows = []
    latencies = {}
    for variant in args.variants.split(","):
        work = tempfile.mkdtemp(prefix=f"strata_disk_{variant}_")
        try:
            text_dir = os.path.join(work, "text")
            out = subprocess.run(
                [bins["text"], "--out", text_dir, "--hosts", str(args.hosts),
                 "--noisy", "1" if variant == "noisy" else "0",
                 "--day-start-ms", str(day_start_ms)],
                check=True, capture_output=True, text=True)
            samples = int(out.stdout.strip())
            files = sorted(os.path.join(text_dir, f) for f in os.listdir(text_dir))
            text_bytes = sum(os.path.getsize(f) for f in files)
            print(f"== {variant}: {samples} samples, {text_bytes / 2**20:.1f} MiB of text",
                  flush=True)
            for system in args.systems.split(","):
                if system == "strata":
                    seconds, data, queries = run_strata(bins, work, files, 60, day_start_ms,
                                                        args.reps)
                elif system == "victoriametrics":
                    seconds, data, queries = run_vm(bins, work, files, month, day_start_ms,
                                                    args.reps)
                else:
                    sys.exit(f"disk.py: unknown system {system}")
                apparent, allocated = macro.dir_size(data)
                rows.append((variant, system, samples, apparent, allocated, seconds))
                latencies[(variant, system)] = queries
                print(f"    {system}: {apparent / samples:.3f} B/sample "
                      f"({apparent / 2**20:.2f} MiB; allocated {allocated / samples:.3f}); "
                      f"import {samples / seconds:,.0f} samples/s", flush=True)
        finally:
            if args.keep:
                print(f"    kept {work}")
            else:
                shutil.rmtree(work, ignore_errors=True)
    print()
    print("| data | system | samples | bytes on disk | B/sample | allocated B/sample |")
    print("| --- | --- | --- | --- | --- | --- |")
    for variant, system, samples, apparent, allocated, _ in rows:
        print(f"| {variant} | {system} | {samples:,} | {apparent:,} | {apparent / samples:.3f} "
              f"| {allocated / samples:.3f} |")
    by = {(v, s): a / n for v, s, n, a, _, _ in rows}
    for variant in args.variants.split(","):
        if (variant, "strata") in by and (variant, "victoriametrics") in by:
            print(f"{variant}: Strata / VictoriaMetrics = "
                  f"{by[(variant, 'strata')] / by[(variant, 'victoriametrics')]:.2f}")
    if args.reps > 0:
        print_latencies(latencies, args.variants.split(","), args.systems.split(","))


def print_latencies(latencies, variants, systems):
    print()
    print("Dashboard queries over the stored day, median ms (answer: series/points):")
    print()
    print("| data | query | " + " | ".join(systems) + " | Strata ÷ peer |")
    print("| --- | --- | " + " | ".join("---" for _ in systems) + " | --- |")
    for variant in variants:
        for label, _ in DAY_QUERIES:
            for kind in ("instant", "range"):
                cells, times = [], {}
                for system in systems:
                    got = latencies.get((variant, system), {}).get((label, kind))
                    if got is None:
                        cells.append("-")
                        continue
                    ms, info = got
                    times[system] = ms
                    cells.append(f"{ms:.1f} ({info})")
                ratios = [f"{times['strata'] / times[s]:.2f}×" for s in systems
                          if s != "strata" and "strata" in times and s in times]
                print(f"| {variant} | {label} ({kind}) | " + " | ".join(cells) + " | " +
                      ", ".join(ratios) + " |")


if __name__ == "__main__":
    main()

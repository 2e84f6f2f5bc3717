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
the last stop, divided by the samples sent. Prometheus 2.42 takes no text import and no
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


def metric(server, name):
    """Sum of the samples of one metric in the server's /metrics (0 when absent)."""
    status, body = server.get("/metrics")
    if status != 200:
        raise RuntimeError(f"{server.name}: /metrics answered {status}")
    total = 0.0
    pattern = re.compile(rb"^" + re.escape(name.encode()) + rb"(\{[^}]*\})? (\S+)")
    for line in body.splitlines():
        m = pattern.match(line)
        if m:
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


def run_strata(bins, work, files, flush_interval_s):
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
    if s.stop() != 0:
        raise RuntimeError("strata did not stop cleanly after the compaction")
    return seconds, s.data_dir


def run_vm(bins, work, files, month):
    s = macro.start_system("victoriametrics", bins, work)
    s.wait_ready()
    seconds = feed(s, files)
    for path in ("/internal/force_flush", f"/internal/force_merge?partition_prefix={month}"):
        status, body = s.get(path, timeout=600)
        if status != 200:
            raise RuntimeError(f"victoriametrics: {path} answered {status}: {body[:200]!r}")
    time.sleep(2)
    wait_for("victoriametrics' merges",
             lambda: metric(s, "vm_active_force_merges") + metric(s, "vm_active_merges") == 0,
             1800)
    if s.stop() != 0:
        raise RuntimeError("victoriametrics did not stop cleanly")
    return seconds, s.data_dir


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build-dir", default="build/release")
    ap.add_argument("--hosts", type=int, default=10)
    ap.add_argument("--variants", default="noisy,realistic")
    ap.add_argument("--systems", default="strata,victoriametrics")
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
                    seconds, data = run_strata(bins, work, files, 60)
                elif system == "victoriametrics":
                    seconds, data = run_vm(bins, work, files, month)
                else:
                    sys.exit(f"disk.py: unknown system {system}")
                apparent, allocated = macro.dir_size(data)
                rows.append((variant, system, samples, apparent, allocated, seconds))
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


if __name__ == "__main__":
    main()

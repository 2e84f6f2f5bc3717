#!/usr/bin/env python3
"""Macro benchmark: Strata vs Prometheus vs VictoriaMetrics, one after the other on this
machine, each fed the same remote-write load by strata-loadgen.

Per system: ingest samples/s (as strata-loadgen measures it, from the first request to the
last answer), server CPU seconds per million samples (utime+stime from /proc/PID/stat,
taken when the load generator starts sending and when it is done), peak resident memory
(VmHWM, read after the queries), on-disk size after a graceful stop (SIGTERM; each system
writes out what it keeps in memory), and the latency of a fixed set of dashboard queries
(instant and range; median of several repetitions after a warm-up, measured by the client
over loopback).

Run through bench/macro.sh, which builds the release binaries first. Not part of the tests.
"""

import argparse
import datetime
import http.client
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

CLK_TCK = os.sysconf("SC_CLK_TCK")

# Dashboard queries, as a node-exporter dashboard and a service dashboard would send them.
QUERIES = [
    ("cpu busy by host", 'sum by (instance) (rate(node_cpu_seconds_total{mode!="idle"}[5m]))'),
    ("cpu all hosts", "sum(rate(node_cpu_seconds_total[5m]))"),
    ("topk net rx", "topk(10, sum by (instance) (rate(node_network_receive_bytes_total[5m])))"),
    ("p99 latency", "histogram_quantile(0.99, sum by (le, handler) "
                    "(rate(http_request_duration_seconds_bucket[5m])))"),
    ("disk write regex", 'sum by (instance) '
                         '(rate(node_disk_written_bytes_total{device=~"nvme.+"}[5m]))'),
    ("memory used ratio", "avg(1 - node_memory_MemAvailable_bytes / node_memory_MemTotal_bytes)"),
    ("fs count by", 'count by (mountpoint) (node_filesystem_avail_bytes{fstype!~"tmpfs|vfat"})'),
    ("load1 regex host", 'max(node_load1{instance=~"host-00[0-4].*"})'),
]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    # fields[0] is the state (field 3); utime and stime are fields 14 and 15.
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def vm_hwm_bytes(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return 0


def dir_size(path):
    apparent = allocated = 0
    for root, _, files in os.walk(path):
        for name in files:
            try:
                st = os.lstat(os.path.join(root, name))
            except FileNotFoundError:
                continue
            apparent += st.st_size
            allocated += st.st_blocks * 512
    return apparent, allocated


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


class Server:
    """A peer started on 127.0.0.1 with a temp data dir, stopped by PID."""

    def __init__(self, name, argv, port, ready_path, data_dir, log_path, flush=None):
        self.name, self.port, self.ready_path, self.data_dir = name, port, ready_path, data_dir
        self.flush = flush
        self.log = open(log_path, "w")
        self.proc = subprocess.Popen(argv, stdout=self.log, stderr=subprocess.STDOUT,
                                     start_new_session=True)

    def get(self, path, timeout=120):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.request("GET", path)
            r = conn.getresponse()
            return r.status, r.read()
        finally:
            conn.close()

    def wait_ready(self, timeout=120):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}")
            try:
                if self.get(self.ready_path, timeout=5)[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"{self.name} not ready after {timeout} s")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=180)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        return self.proc.returncode


def start_system(name, bins, work, strata_args=()):
    port = free_port()
    data = os.path.join(work, name, "data")
    os.makedirs(data)
    log = os.path.join(work, name, "server.log")
    if name == "strata":
        argv = [bins["strata"], f"--web.listen-address=127.0.0.1:{port}",
                f"--storage.tsdb.path={data}", *strata_args]
        return Server(name, argv, port, "/-/ready", data, log)
    if name == "prometheus":
        config = os.path.join(work, name, "prometheus.yml")
        with open(config, "w") as f:
            f.write("global:\n  scrape_interval: 15s\nscrape_configs: []\n")
        argv = [bins["prometheus"], f"--config.file={config}", f"--storage.tsdb.path={data}",
                f"--web.listen-address=127.0.0.1:{port}", "--web.enable-remote-write-receiver",
                "--log.level=warn"]
        return Server(name, argv, port, "/-/ready", data, log)
    if name == "victoriametrics":
        # Without the latency offset VictoriaMetrics hides the last 30 s from queries; without
        # disabling its rollup cache, repeated queries would be answered from the cache.
        argv = [bins["victoriametrics"], f"-httpListenAddr=127.0.0.1:{port}",
                f"-storageDataPath={data}", "-search.latencyOffset=0s", "-search.disableCache",
                "-retentionPeriod=100y", "-loggerLevel=WARN"]
        return Server(name, argv, port, "/health", data, log, flush="/internal/force_flush")
    raise ValueError(name)


def run_loadgen(bins, port, args, pid):
    """Runs strata-loadgen; samples the server's CPU time when sending starts and ends."""
    argv = [bins["loadgen"], f"--url=http://127.0.0.1:{port}/api/v1/write",
            f"--hosts={args.hosts}", f"--steps={args.steps}",
            f"--interval-ms={args.interval_ms}", f"--connections={args.connections}",
            f"--samples-per-request={args.samples_per_request}"]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    marks = {}

    def watch_stderr():
        for line in proc.stderr:
            if "sending over" in line and "cpu_start" not in marks:
                marks["cpu_start"] = cpu_seconds(pid)
                marks["t_start"] = time.time()
            if args.verbose or "sending over" in line:
                sys.stderr.write("    " + line.lstrip("\r"))
            elif re.match(r"\s*\d+\.\ds", line):
                sys.stderr.write("\r    " + line.rstrip("\n") + "   ")
                sys.stderr.flush()

    t = threading.Thread(target=watch_stderr)
    t.start()
    out = proc.stdout.read()
    proc.wait()
    t.join()
    marks["cpu_end"] = cpu_seconds(pid)
    sys.stderr.write("\n")
    report = {}
    for line in out.splitlines():
        k, _, v = line.partition(" ")
        report[k] = v
    report["exit_code"] = proc.returncode
    return report, marks


def query_latencies(server, t_end, t_start, reps, step, queries=QUERIES):
    """Median latency (ms) and result size per query, instant and range."""
    results = {}
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=120)
    for label, q in queries:
        for kind in ("instant", "range"):
            if kind == "instant":
                params = {"query": q, "time": f"{t_end:.3f}"}
                path = "/api/v1/query"
            else:
                params = {"query": q, "start": f"{t_start:.3f}", "end": f"{t_end:.3f}",
                          "step": str(step)}
                path = "/api/v1/query_range"
            body = urllib.parse.urlencode(params)
            times = []
            info = None
            for i in range(reps + 1):  # the first is the warm-up
                t0 = time.perf_counter()
                conn.request("POST", path, body=body,
                             headers={"Content-Type": "application/x-www-form-urlencoded"})
                r = conn.getresponse()
                data = r.read()
                dt = time.perf_counter() - t0
                if i > 0:
                    times.append(dt * 1000)
                if info is None:
                    info = summarize(r.status, data)
            results[(label, kind)] = (statistics.median(times), info)
    conn.close()
    return results


def summarize(status, data):
    """Series and points in a query answer, to check that all systems answer alike."""
    if status != 200:
        return f"HTTP {status}"
    doc = json.loads(data)
    res = doc.get("data", {}).get("result", [])
    points = sum(len(r.get("values", [])) or 1 for r in res)
    return f"{len(res)}s/{points}p"


def measure(name, bins, args, work):
    print(f"== {name}", file=sys.stderr)
    server = start_system(name, bins, work, args.strata_arg)
    out = {"name": name, "load_before": loadavg()}
    try:
        server.wait_ready()
        pid = server.proc.pid
        report, marks = run_loadgen(bins, server.port, args, pid)
        out["report"] = report
        acked = int(report.get("samples_acked", 0))
        out["acked"] = acked
        out["sent"] = int(report.get("samples_sent", 0))
        out["rejected"] = report.get("rejected_requests_by_code", "?")
        out["samples_per_s"] = float(report.get("samples_per_second", 0))
        out["wall_s"] = float(report.get("wall_seconds", 0))
        cpu = marks["cpu_end"] - marks.get("cpu_start", marks["cpu_end"])
        out["cpu_s"] = cpu
        out["cpu_per_m"] = cpu / (acked / 1e6) if acked else float("nan")
        out["load_during"] = loadavg()
        # Let each system make the last writes visible (VictoriaMetrics buffers for ~1 s).
        if server.flush:
            server.get(server.flush)
        time.sleep(args.settle)
        t_end = int(report["last_sample_ms"]) / 1000.0
        t_first = int(report["first_sample_ms"]) / 1000.0
        t_start = t_first + 300  # the first 5 minutes have no full rate() window
        out["queries"] = query_latencies(server, t_end, t_start, args.reps, args.step)
        out["hwm"] = vm_hwm_bytes(pid)
        out["cpu_total_s"] = cpu_seconds(pid)
    finally:
        out["exit"] = server.stop()
    out["disk_apparent"], out["disk_allocated"] = dir_size(server.data_dir)
    print(f"   {out['samples_per_s']:.0f} samples/s, {out['cpu_per_m']:.2f} CPU s per M, "
          f"HWM {out['hwm'] / 2**20:.0f} MiB, disk {out['disk_allocated'] / 2**20:.1f} MiB",
          file=sys.stderr)
    return out


def combine(outs):
    """The median of each figure over rounds (the first round's text fields)."""
    if len(outs) == 1:
        return outs[0]
    out = dict(outs[0])
    for k in ("samples_per_s", "wall_s", "cpu_s", "cpu_per_m", "hwm", "disk_apparent",
              "disk_allocated"):
        out[k] = statistics.median(o[k] for o in outs)
    out["queries"] = {q: (statistics.median(o["queries"][q][0] for o in outs), outs[0]["queries"][q][1])
                      for q in outs[0]["queries"]}
    out["rounds"] = [o["samples_per_s"] for o in outs]
    out["load_before"] = ", ".join(o["load_before"] for o in outs)
    return out


def fmt_ratio(a, b):
    return f"{a / b:.2f}×" if b else "-"


def render(results, args, started, machine):
    by = {r["name"]: r for r in results}
    names = [r["name"] for r in results]
    peers = [n for n in names if n != "strata"]
    lines = []
    lines.append("## Macro benchmark: Strata vs Prometheus vs VictoriaMetrics")
    lines.append("")
    lines.append(f"Run {started} by `bench/macro.sh` ({machine}). Load average (1/5/15 min) "
                 "before each system: " + "; ".join(f"{n} {by[n]['load_before']}"
                                                    for n in names) + ".")
    lines.append("")
    series = results[0]["report"].get("series", "?")
    lines.append(f"Load (strata-loadgen, identical for all): {args.hosts} hosts × "
                 f"{int(series) // args.hosts if series != '?' else '?'} node-exporter-like "
                 f"series = {series} series, {args.steps} scrapes each "
                 f"{args.interval_ms / 1000:g} s apart ending now (jitter up to 20 ms), "
                 f"{results[0]['sent']:,} samples in requests of {args.samples_per_request} "
                 f"samples (one sample per series per request, as Prometheus sends), "
                 f"{args.connections} keep-alive connections; all bodies encoded before "
                 "timing. The generator runs on the same 2 cores as the server.")
    lines.append("")
    lines.append("| | " + " | ".join(names) + " |")
    lines.append("| --- |" + " --- |" * len(names))

    def row(label, f):
        lines.append(f"| {label} | " + " | ".join(f(by[n]) for n in names) + " |")

    row("samples acked / sent", lambda r: f"{r['acked']:,} / {r['sent']:,}")
    if args.rounds > 1:
        row("ingest samples/s per round", lambda r: ", ".join(f"{v:,.0f}" for v in r["rounds"]))
    row("rejected requests", lambda r: r["rejected"])
    row("ingest, samples/s", lambda r: f"{r['samples_per_s']:,.0f}")
    row("ingest wall time, s", lambda r: f"{r['wall_s']:.1f}")
    row("server CPU s per million samples", lambda r: f"{r['cpu_per_m']:.2f}")
    row("peak RSS (VmHWM), MiB", lambda r: f"{r['hwm'] / 2**20:.0f}")
    row("disk after stop, MiB (allocated)", lambda r: f"{r['disk_allocated'] / 2**20:.1f}")
    row("disk after stop, bytes/sample", lambda r: f"{r['disk_allocated'] / max(1, r['acked']):.2f}")
    for label, _ in QUERIES:
        for kind in ("instant", "range"):
            row(f"{label} ({kind}), ms",
                lambda r, k=(label, kind): f"{r['queries'][k][0]:.1f}")
    lines.append("")
    lines.append("Query answers (series/points), to show all three answered alike:")
    lines.append("")
    lines.append("| query | " + " | ".join(names) + " |")
    lines.append("| --- |" + " --- |" * len(names))
    for label, _ in QUERIES:
        for kind in ("instant", "range"):
            lines.append(f"| {label} ({kind}) | " + " | ".join(
                by[n]["queries"][(label, kind)][1] for n in names) + " |")
    lines.append("")
    if "strata" in by and peers:
        s = by["strata"]
        lines.append("Strata against each peer (ingest and CPU: higher is better for Strata; "
                     "latency: below 1 is Strata faster):")
        lines.append("")
        lines.append("| | " + " | ".join(f"vs {p}" for p in peers) + " |")
        lines.append("| --- |" + " --- |" * len(peers))
        lines.append("| ingest samples/s, Strata ÷ peer | " + " | ".join(
            fmt_ratio(s["samples_per_s"], by[p]["samples_per_s"]) for p in peers) + " |")
        lines.append("| CPU per sample, peer ÷ Strata | " + " | ".join(
            fmt_ratio(by[p]["cpu_per_m"], s["cpu_per_m"]) for p in peers) + " |")
        lines.append("| peak RSS, Strata ÷ peer | " + " | ".join(
            fmt_ratio(s["hwm"], by[p]["hwm"]) for p in peers) + " |")
        lines.append("| disk, Strata ÷ peer | " + " | ".join(
            fmt_ratio(s["disk_allocated"], by[p]["disk_allocated"]) for p in peers) + " |")
        for kind in ("instant", "range"):
            def geo(r):
                vals = [r["queries"][(label, kind)][0] for label, _ in QUERIES]
                return statistics.geometric_mean(vals)
            lines.append(f"| {kind} query latency (geometric mean), Strata ÷ peer | " +
                         " | ".join(fmt_ratio(geo(s), geo(by[p])) for p in peers) + " |")
        lines.append("")
        goals = []
        for peer, want in (("victoriametrics", 1.5), ("prometheus", 3.0)):
            if peer in by and by[peer]["samples_per_s"]:
                got = s["samples_per_s"] / by[peer]["samples_per_s"]
                goals.append(f"ingest ≥ {want:g}× {peer}: {'met' if got >= want else 'not met'} "
                             f"({got:.2f}×)")
        met = total = 0
        for label, _ in QUERIES:
            for kind in ("instant", "range"):
                fastest = min(by[p]["queries"][(label, kind)][0] for p in peers)
                total += 1
                met += s["queries"][(label, kind)][0] <= fastest / 2
        goals.append(f"query latency ≤ half the faster peer's: met by {met} of {total} queries")
        lines.append("Goals from the server issue: " + "; ".join(goals) + ".")
        lines.append("")
    lines.append(
        f"Method: servers started one after the other on 127.0.0.1 with empty temp data "
        f"directories (Strata with "
        + (" ".join(f"`{a}`" for a in args.strata_arg) or "its defaults")
        + f"; Prometheus 2.42 with `--web.enable-remote-write-receiver`; "
        f"VictoriaMetrics with `-search.latencyOffset=0s -search.disableCache` so that it "
        f"returns the newest data and does not answer repeats from its rollup cache). CPU is "
        f"utime+stime of the server process from the first request to the last answer. "
        f"Queries are POSTed after a {args.settle:g} s settle, instant at the last scrape "
        f"time and range over the whole load minus its first 5 minutes, step {args.step} s; "
        f"each is run once to warm up, then {args.reps} times, median of those. Disk is the "
        f"data directory's allocated blocks after SIGTERM and exit."
        + (f" Every system ran {args.rounds} times, the order rotating each round; figures "
           "are medians over the rounds." if args.rounds > 1 else ""))
    return "\n".join(lines) + "\n"


def record(results_md, section):
    heading = "## Macro benchmark: Strata vs Prometheus vs VictoriaMetrics"
    text = open(results_md).read() if os.path.exists(results_md) else "# Benchmark results\n"
    start = text.find(heading)
    if start >= 0:
        end = text.find("\n## ", start + len(heading))
        text = text[:start] + section + ("" if end < 0 else text[end:])
    else:
        text = text.rstrip("\n") + "\n\n" + section
    with open(results_md, "w") as f:
        f.write(text)


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build-dir", default="build/release")
    ap.add_argument("--hosts", type=int, default=50)
    ap.add_argument("--steps", type=int, default=80)
    ap.add_argument("--interval-ms", type=int, default=15000)
    ap.add_argument("--connections", type=int, default=8)
    ap.add_argument("--samples-per-request", type=int, default=2000)
    ap.add_argument("--reps", type=int, default=7, help="query repetitions after the warm-up")
    ap.add_argument("--step", type=int, default=30, help="range query step, seconds")
    ap.add_argument("--settle", type=float, default=5, help="seconds between ingest and queries")
    ap.add_argument("--systems", default="strata,prometheus,victoriametrics")
    ap.add_argument("--rounds", type=int, default=1,
                    help="run every system this many times (the order rotates each round) "
                         "and report medians")
    ap.add_argument("--results", default="bench/RESULTS.md",
                    help="file to write the section into ('' to skip)")
    ap.add_argument("--strata-arg", action="append", default=[],
                    help="an extra flag for the Strata server (repeatable)")
    ap.add_argument("--keep", action="store_true", help="keep the temp data directories")
    ap.add_argument("--verbose", action="store_true")
    args = ap.parse_args()

    bins = {
        "strata": os.path.join(args.build_dir, "server", "strata"),
        "loadgen": os.path.join(args.build_dir, "tools", "strata-loadgen"),
        "prometheus": shutil.which("prometheus") or "/usr/bin/prometheus",
        "victoriametrics": shutil.which("victoria-metrics") or "/usr/bin/victoria-metrics",
    }
    for k, v in bins.items():
        if not os.access(v, os.X_OK):
            sys.exit(f"macro: {k} binary not found at {v}")
    cpu = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    machine = f"{cpu}, {os.cpu_count()} CPUs"
    started = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    work = tempfile.mkdtemp(prefix="strata-macro-")
    names = args.systems.split(",")
    runs = {n: [] for n in names}
    try:
        for r in range(args.rounds):
            order = names[r % len(names):] + names[:r % len(names)]
            for name in order:
                runs[name].append(measure(name, bins, args, os.path.join(work, f"round{r}")))
        results = [combine(runs[n]) for n in names]
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"data kept in {work}", file=sys.stderr)
    section = render(results, args, started, machine)
    print(section)
    if args.results:
        record(args.results, section)
        print(f"written to {args.results}", file=sys.stderr)


if __name__ == "__main__":
    main()

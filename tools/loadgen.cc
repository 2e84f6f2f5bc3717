#include "tools/loadgen.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <snappy.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <chrono>
#include <cmath>
#include <cstring>
#include <mutex>
#include <thread>

#include "fmt/format.h"

namespace strata::loadgen {
namespace {

// splitmix64: a cheap, well-mixed hash for per-(series, step) noise.
uint64_t Mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

// Uniform in [0, 1).
double Unit(uint64_t seed, int64_t step) {
  return static_cast<double>(Mix(seed ^ Mix(static_cast<uint64_t>(step))) >> 11) * 0x1.0p-53;
}

using LabelList = std::vector<std::pair<std::string, std::string>>;

// Builds one host's series.
class HostBuilder {
 public:
  HostBuilder(int host, std::string_view job, uint64_t seed)
      : instance_(fmt::format("host-{:04d}:9100", host)),
        job_(job),
        seed_(Mix(seed * 1000003 + static_cast<uint64_t>(host))) {}

  std::vector<SeriesDef> Take() { return std::move(out_); }

  // A uniform number in [lo, hi) that depends only on the host and a running counter.
  double Rand(double lo, double hi) { return lo + (hi - lo) * Unit(seed_, ++draws_); }

  SeriesDef& Add(std::string_view name, LabelList labels, ValueKind kind) {
    labels.emplace_back("__name__", std::string(name));
    labels.emplace_back("instance", instance_);
    labels.emplace_back("job", std::string(job_));
    std::sort(labels.begin(), labels.end());
    SeriesDef& s = out_.emplace_back();
    s.labels = std::move(labels);
    s.kind = kind;
    s.seed = Mix(seed_ + out_.size());
    return s;
  }
  void Counter(std::string_view name, LabelList labels, double start, double rate,
               double quantum = 1) {
    SeriesDef& s = Add(name, std::move(labels), ValueKind::kCounter);
    s.value = quantum > 0 ? std::floor(start / quantum) * quantum : start;
    s.rate = rate;
    s.quantum = quantum;
  }
  void Gauge(std::string_view name, LabelList labels, double lo, double hi, double step,
             double quantum = 0) {
    SeriesDef& s = Add(name, std::move(labels), ValueKind::kGauge);
    s.lo = lo;
    s.hi = hi;
    s.value = Rand(lo, hi);
    if (quantum > 0) s.value = std::floor(s.value / quantum) * quantum;
    s.rate = step;
    s.quantum = quantum;
  }
  void Constant(std::string_view name, LabelList labels, double v) {
    Add(name, std::move(labels), ValueKind::kConstant).value = v;
  }
  // A classic histogram: _bucket per bound and +Inf, _sum, _count. `observations_per_second`
  // observations arrive per second, spread over the buckets with shares from `fractions`.
  void Histogram(std::string_view name, const LabelList& labels, const std::vector<double>& bounds,
                 double mean) {
    uint64_t hseed = Mix(seed_ ^ Mix(out_.size() + 77));
    double rate = Rand(0.5, 20);
    for (size_t i = 0; i <= bounds.size(); ++i) {
      LabelList l = labels;
      double fraction = 1;
      if (i < bounds.size()) {
        l.emplace_back("le", fmt::format("{}", bounds[i]));
        // An exponential-ish distribution around the mean.
        fraction = 1 - std::exp(-bounds[i] / mean);
      } else {
        l.emplace_back("le", "+Inf");
      }
      SeriesDef& b = Add(fmt::format("{}_bucket", name), std::move(l), ValueKind::kBucket);
      b.seed = hseed;
      b.rate = rate;
      b.fraction = fraction;
    }
    SeriesDef& sum = Add(fmt::format("{}_sum", name), labels, ValueKind::kHistSum);
    sum.seed = hseed;
    sum.rate = rate;
    sum.mean = mean;
    SeriesDef& count = Add(fmt::format("{}_count", name), labels, ValueKind::kHistCount);
    count.seed = hseed;
    count.rate = rate;
  }

 private:
  std::string instance_;
  std::string_view job_;
  uint64_t seed_;
  int64_t draws_ = 0;
  std::vector<SeriesDef> out_;
};

constexpr double kGiB = 1024.0 * 1024 * 1024;

}  // namespace

double SeriesDef::Advance(int64_t step, double interval_seconds, int64_t timestamp_ms) {
  if (time_gauge) return value = static_cast<double>(timestamp_ms) / 1000;
  if (step == 0) return value;
  double u = Unit(seed, step);
  switch (kind) {
    case ValueKind::kCounter:
      value += rate * interval_seconds * (0.2 + 1.6 * u);
      break;
    case ValueKind::kGauge:
      value = std::clamp(value + (u - 0.5) * 2 * rate, lo, hi);
      break;
    case ValueKind::kConstant:
      return value;
    case ValueKind::kBucket:
    case ValueKind::kHistCount: {
      double n = std::floor(rate * interval_seconds * (0.2 + 1.6 * u));
      value += std::floor(n * fraction);
      return value;
    }
    case ValueKind::kHistSum: {
      double n = std::floor(rate * interval_seconds * (0.2 + 1.6 * u));
      value += n * mean * (0.7 + 0.6 * Unit(seed ^ 0x5bd1e995, step));
      return value;
    }
  }
  if (quantum > 0) value = std::round(value / quantum) * quantum;
  return value;
}

std::vector<SeriesDef> NodeExporterSeries(int host, std::string_view job, uint64_t seed) {
  HostBuilder b(host, job, seed);
  constexpr int kCpus = 8;
  auto cpu = [](int c) { return std::to_string(c); };

  // CPU.
  static constexpr std::pair<const char*, double> kModes[] = {
      {"idle", 0.6},     {"iowait", 0.02}, {"irq", 0.001},   {"nice", 0.001},
      {"softirq", 0.01}, {"steal", 0.001}, {"system", 0.08}, {"user", 0.25}};
  for (int c = 0; c < kCpus; ++c) {
    for (auto [mode, share] : kModes) {
      b.Counter("node_cpu_seconds_total", {{"cpu", cpu(c)}, {"mode", mode}},
                b.Rand(1e4, 1e6) * share, share, 0.01);
    }
    b.Counter("node_cpu_guest_seconds_total", {{"cpu", cpu(c)}, {"mode", "nice"}}, 0, 0, 0.01);
    b.Counter("node_cpu_guest_seconds_total", {{"cpu", cpu(c)}, {"mode", "user"}}, 0, 0, 0.01);
    b.Gauge("node_cpu_scaling_frequency_hertz", {{"cpu", cpu(c)}}, 8e8, 3.6e9, 2e8, 1000);
    b.Constant("node_cpu_scaling_frequency_max_hertz", {{"cpu", cpu(c)}}, 3.6e9);
    b.Constant("node_cpu_scaling_frequency_min_hertz", {{"cpu", cpu(c)}}, 8e8);
    b.Counter("node_schedstat_running_seconds_total", {{"cpu", cpu(c)}}, b.Rand(1e4, 1e5), 0.3,
              1e-9);
    b.Counter("node_schedstat_waiting_seconds_total", {{"cpu", cpu(c)}}, b.Rand(1e3, 1e4), 0.02,
              1e-9);
    b.Counter("node_schedstat_timeslices_total", {{"cpu", cpu(c)}}, b.Rand(1e8, 1e9), 500);
    b.Counter("node_softnet_processed_total", {{"cpu", cpu(c)}}, b.Rand(1e6, 1e8), 200);
    b.Counter("node_softnet_dropped_total", {{"cpu", cpu(c)}}, 0, 0.0001);
    b.Counter("node_softnet_times_squeezed_total", {{"cpu", cpu(c)}}, b.Rand(0, 100), 0.001);
  }
  // Interrupts by CPU: node exporter labels them by number, type and devices.
  static constexpr std::pair<const char*, const char*> kInterrupts[] = {
      {"0", "IO-APIC"},  {"1", "IO-APIC"},  {"8", "IO-APIC"},  {"9", "IO-APIC"},  {"12", "IO-APIC"},
      {"24", "PCI-MSI"}, {"25", "PCI-MSI"}, {"26", "PCI-MSI"}, {"27", "PCI-MSI"}, {"NMI", "NMI"},
      {"LOC", "LOC"},    {"RES", "RES"},    {"CAL", "CAL"},    {"TLB", "TLB"},    {"SPU", "SPU"}};
  for (int c = 0; c < kCpus; ++c) {
    for (auto [irq, type] : kInterrupts) {
      std::string devices = type == std::string_view("PCI-MSI") ? "virtio0-input.0" : "";
      LabelList l{{"cpu", cpu(c)}, {"info", irq}, {"type", type}};
      if (!devices.empty()) l.emplace_back("devices", devices);
      b.Counter("node_interrupts_total", std::move(l), b.Rand(0, 1e7), b.Rand(0, 50));
    }
  }

  // Memory.
  static constexpr const char* kMemory[] = {"MemTotal",
                                            "MemFree",
                                            "MemAvailable",
                                            "Buffers",
                                            "Cached",
                                            "SwapCached",
                                            "Active",
                                            "Inactive",
                                            "Active_anon",
                                            "Inactive_anon",
                                            "Active_file",
                                            "Inactive_file",
                                            "Unevictable",
                                            "Mlocked",
                                            "SwapTotal",
                                            "SwapFree",
                                            "Dirty",
                                            "Writeback",
                                            "AnonPages",
                                            "Mapped",
                                            "Shmem",
                                            "KReclaimable",
                                            "Slab",
                                            "SReclaimable",
                                            "SUnreclaim",
                                            "KernelStack",
                                            "PageTables",
                                            "NFS_Unstable",
                                            "Bounce",
                                            "WritebackTmp",
                                            "CommitLimit",
                                            "Committed_AS",
                                            "VmallocTotal",
                                            "VmallocUsed",
                                            "VmallocChunk",
                                            "Percpu",
                                            "HardwareCorrupted",
                                            "AnonHugePages",
                                            "ShmemHugePages",
                                            "ShmemPmdMapped",
                                            "FileHugePages",
                                            "FilePmdMapped",
                                            "HugePages_Total",
                                            "HugePages_Free",
                                            "HugePages_Rsvd",
                                            "HugePages_Surp",
                                            "Hugepagesize",
                                            "Hugetlb",
                                            "DirectMap4k",
                                            "DirectMap2M",
                                            "DirectMap1G"};
  double total = 32 * kGiB;
  for (const char* m : kMemory) {
    std::string name = fmt::format("node_memory_{}_bytes", m);
    std::string_view mv(m);
    if (mv == "MemTotal" || mv == "SwapTotal" || mv == "VmallocTotal" || mv == "Hugepagesize" ||
        mv == "CommitLimit") {
      b.Constant(name, {}, mv == "Hugepagesize" ? 2097152 : total);
    } else if (mv.starts_with("HugePages") || mv == "Hugetlb" || mv == "Bounce" ||
               mv == "NFS_Unstable" || mv == "HardwareCorrupted") {
      b.Constant(name, {}, 0);
    } else {
      b.Gauge(name, {}, 0, total * b.Rand(0.05, 0.6), 4096 * b.Rand(10, 5000), 4096);
    }
  }

  // Filesystems.
  struct Fs {
    const char* device;
    const char* fstype;
    const char* mountpoint;
  };
  static constexpr Fs kFs[] = {
      {"/dev/nvme0n1p2", "ext4", "/"},          {"/dev/nvme0n1p1", "vfat", "/boot/efi"},
      {"/dev/nvme1n1", "xfs", "/var/lib/data"}, {"tmpfs", "tmpfs", "/run"},
      {"tmpfs", "tmpfs", "/run/lock"},          {"tmpfs", "tmpfs", "/dev/shm"}};
  for (const Fs& fs : kFs) {
    LabelList l{{"device", fs.device}, {"fstype", fs.fstype}, {"mountpoint", fs.mountpoint}};
    double size = std::floor(b.Rand(1, 2000)) * kGiB;
    b.Constant("node_filesystem_size_bytes", l, size);
    b.Gauge("node_filesystem_avail_bytes", l, 0, size * 0.9, 4096 * 256, 4096);
    b.Gauge("node_filesystem_free_bytes", l, 0, size, 4096 * 256, 4096);
    b.Constant("node_filesystem_files", l, std::floor(size / 16384));
    b.Gauge("node_filesystem_files_free", l, 0, std::floor(size / 16384), 50, 1);
    b.Constant("node_filesystem_readonly", l, 0);
    b.Constant("node_filesystem_device_error", l, 0);
  }

  // Network.
  static constexpr const char* kNics[] = {"eth0", "eth1", "lo", "docker0"};
  static constexpr const char* kReceive[] = {"bytes", "packets", "errs",       "drop",
                                             "fifo",  "frame",   "compressed", "multicast"};
  static constexpr const char* kTransmit[] = {"bytes", "packets", "errs",       "drop",
                                              "fifo",  "colls",   "compressed", "carrier"};
  for (const char* nic : kNics) {
    double pps = b.Rand(10, 5000);
    for (const char* f : kReceive) {
      std::string_view fv(f);
      double rate = fv == "bytes" ? pps * 800 : fv == "packets" ? pps : pps * 1e-5;
      b.Counter(fmt::format("node_network_receive_{}_total", f), {{"device", nic}},
                b.Rand(0, 1e9) * rate / pps, rate);
    }
    for (const char* f : kTransmit) {
      std::string_view fv(f);
      double rate = fv == "bytes" ? pps * 600 : fv == "packets" ? pps * 0.9 : pps * 1e-5;
      b.Counter(fmt::format("node_network_transmit_{}_total", f), {{"device", nic}},
                b.Rand(0, 1e9) * rate / pps, rate);
    }
    b.Constant("node_network_up", {{"device", nic}}, 1);
    b.Constant("node_network_mtu_bytes", {{"device", nic}},
               std::string_view(nic) == "lo" ? 65536 : 1500);
    b.Constant("node_network_speed_bytes", {{"device", nic}}, 1.25e9);
    b.Constant("node_network_carrier", {{"device", nic}}, 1);
    b.Constant("node_network_info",
               {{"device", nic},
                {"address", fmt::format("02:42:ac:11:00:{:02x}", static_cast<int>(b.Rand(0, 255)))},
                {"broadcast", "ff:ff:ff:ff:ff:ff"},
                {"operstate", "up"}},
               1);
    b.Gauge("node_network_transmit_queue_length", {{"device", nic}}, 0, 1000, 0);
  }

  // Disks.
  static constexpr const char* kDisks[] = {"nvme0n1", "nvme1n1", "sda", "dm-0"};
  for (const char* disk : kDisks) {
    LabelList l{{"device", disk}};
    double iops = b.Rand(1, 500);
    b.Counter("node_disk_reads_completed_total", l, b.Rand(1e5, 1e8), iops * 0.4);
    b.Counter("node_disk_reads_merged_total", l, b.Rand(1e3, 1e6), iops * 0.01);
    b.Counter("node_disk_read_bytes_total", l, b.Rand(1e9, 1e12), iops * 0.4 * 16384, 512);
    b.Counter("node_disk_read_time_seconds_total", l, b.Rand(1e2, 1e5), iops * 0.4 * 2e-4, 0.001);
    b.Counter("node_disk_writes_completed_total", l, b.Rand(1e5, 1e8), iops * 0.6);
    b.Counter("node_disk_writes_merged_total", l, b.Rand(1e3, 1e6), iops * 0.05);
    b.Counter("node_disk_written_bytes_total", l, b.Rand(1e9, 1e12), iops * 0.6 * 32768, 512);
    b.Counter("node_disk_write_time_seconds_total", l, b.Rand(1e2, 1e5), iops * 0.6 * 5e-4, 0.001);
    b.Gauge("node_disk_io_now", l, 0, 32, 2, 1);
    b.Counter("node_disk_io_time_seconds_total", l, b.Rand(1e2, 1e5), iops * 3e-4, 0.001);
    b.Counter("node_disk_io_time_weighted_seconds_total", l, b.Rand(1e2, 1e5), iops * 6e-4, 0.001);
    b.Counter("node_disk_discards_completed_total", l, b.Rand(0, 1e4), 0.01);
    b.Counter("node_disk_discards_merged_total", l, 0, 0.0);
    b.Counter("node_disk_discarded_sectors_total", l, b.Rand(0, 1e8), 10);
    b.Counter("node_disk_discard_time_seconds_total", l, b.Rand(0, 100), 1e-5, 0.001);
    b.Counter("node_disk_flush_requests_total", l, b.Rand(1e4, 1e6), iops * 0.05);
    b.Counter("node_disk_flush_requests_time_seconds_total", l, b.Rand(1, 1e3), iops * 1e-5, 0.001);
    b.Constant("node_disk_info",
               {{"device", disk}, {"major", "259"}, {"minor", "0"}, {"model", "Virtual disk"}}, 1);
  }

  // Load, processes, kernel counters.
  double load = b.Rand(0.1, 6);
  b.Gauge("node_load1", {}, 0, 16, load * 0.3, 0.01);
  b.Gauge("node_load5", {}, 0, 16, load * 0.1, 0.01);
  b.Gauge("node_load15", {}, 0, 16, load * 0.05, 0.01);
  b.Counter("node_context_switches_total", {}, b.Rand(1e8, 1e10), 20000);
  b.Counter("node_intr_total", {}, b.Rand(1e8, 1e10), 15000);
  b.Counter("node_forks_total", {}, b.Rand(1e5, 1e7), 20);
  b.Gauge("node_procs_running", {}, 1, 20, 3, 1);
  b.Gauge("node_procs_blocked", {}, 0, 4, 1, 1);
  b.Constant("node_boot_time_seconds", {}, 1.7e9 + std::floor(b.Rand(0, 1e7)));
  b.Add("node_time_seconds", {}, ValueKind::kGauge).time_gauge = true;
  b.Gauge("node_entropy_available_bits", {}, 256, 4096, 64, 1);
  b.Constant("node_entropy_pool_size_bits", {}, 4096);
  b.Gauge("node_filefd_allocated", {}, 1000, 50000, 100, 1);
  b.Constant("node_filefd_maximum", {}, 9223372036854775807.0);
  b.Constant("node_uname_info",
             {{"machine", "x86_64"},
              {"nodename", fmt::format("host-{:04d}", host)},
              {"release", "6.1.0-13-amd64"},
              {"sysname", "Linux"},
              {"version", "#1 SMP PREEMPT_DYNAMIC Debian 6.1.55-1"}},
             1);
  b.Constant("node_os_info",
             {{"id", "debian"},
              {"name", "Debian GNU/Linux"},
              {"version_id", "12"},
              {"version_codename", "bookworm"}},
             1);
  static constexpr const char* kVmstat[] = {"pgfault", "pgmajfault", "pgpgin",  "pgpgout",
                                            "pswpin",  "pswpout",    "oom_kill"};
  for (const char* v : kVmstat) {
    b.Counter(fmt::format("node_vmstat_{}", v), {}, b.Rand(0, 1e9), b.Rand(0, 5000));
  }
  static constexpr const char* kNetstat[] = {"Tcp_ActiveOpens",
                                             "Tcp_PassiveOpens",
                                             "Tcp_CurrEstab",
                                             "Tcp_InErrs",
                                             "Tcp_InSegs",
                                             "Tcp_OutRsts",
                                             "Tcp_OutSegs",
                                             "Tcp_RetransSegs",
                                             "Udp_InDatagrams",
                                             "Udp_InErrors",
                                             "Udp_NoPorts",
                                             "Udp_OutDatagrams",
                                             "Udp_RcvbufErrors",
                                             "Udp_SndbufErrors",
                                             "UdpLite_InErrors",
                                             "Icmp_InErrors",
                                             "Icmp_InMsgs",
                                             "Icmp_OutMsgs",
                                             "Ip_Forwarding",
                                             "IpExt_InOctets",
                                             "IpExt_OutOctets",
                                             "TcpExt_ListenDrops",
                                             "TcpExt_ListenOverflows",
                                             "TcpExt_SyncookiesFailed",
                                             "TcpExt_SyncookiesRecv",
                                             "TcpExt_SyncookiesSent",
                                             "TcpExt_TCPSynRetrans",
                                             "TcpExt_TCPTimeouts",
                                             "TcpExt_TCPOFOQueue",
                                             "Ip6_InOctets",
                                             "Ip6_OutOctets",
                                             "Udp6_InDatagrams",
                                             "Udp6_OutDatagrams"};
  for (const char* n : kNetstat) {
    std::string_view nv(n);
    std::string name = fmt::format("node_netstat_{}", n);
    if (nv == "Tcp_CurrEstab" || nv == "Ip_Forwarding") {
      b.Gauge(name, {}, 0, 2000, 5, 1);
    } else {
      b.Counter(name, {}, b.Rand(0, 1e9), b.Rand(0, 3000));
    }
  }
  static constexpr const char* kSockstat[] = {
      "sockets_used", "TCP_alloc",   "TCP_inuse",  "TCP_mem",       "TCP_mem_bytes", "TCP_orphan",
      "TCP_tw",       "UDP_inuse",   "UDP_mem",    "UDP_mem_bytes", "UDPLITE_inuse", "RAW_inuse",
      "FRAG_inuse",   "FRAG_memory", "TCP6_inuse", "UDP6_inuse"};
  for (const char* n : kSockstat) {
    b.Gauge(fmt::format("node_sockstat_{}", n), {}, 0, 5000, 10, 1);
  }
  static constexpr std::pair<const char*, const char*> kHwmon[] = {
      {"platform_coretemp_0", "temp1"}, {"platform_coretemp_0", "temp2"},
      {"platform_coretemp_0", "temp3"}, {"platform_coretemp_0", "temp4"},
      {"platform_coretemp_0", "temp5"}, {"nvme_nvme0", "temp1"},
      {"nvme_nvme0", "temp2"},          {"acpitz", "temp1"}};
  for (auto [chip, sensor] : kHwmon) {
    b.Gauge("node_hwmon_temp_celsius", {{"chip", chip}, {"sensor", sensor}}, 25, 95, 1, 0.001);
    b.Constant("node_hwmon_temp_crit_celsius", {{"chip", chip}, {"sensor", sensor}}, 100);
  }
  static constexpr const char* kTimex[] = {"estimated_error_seconds",
                                           "frequency_adjustment_ratio",
                                           "maxerror_seconds",
                                           "offset_seconds",
                                           "sync_status",
                                           "tai_offset_seconds"};
  for (const char* t : kTimex) b.Gauge(fmt::format("node_timex_{}", t), {}, 0, 1, 0.001, 1e-6);

  // systemd units (--collector.systemd): one series per unit and state, 1 for the current one.
  static constexpr const char* kUnits[] = {"cron.service",
                                           "dbus.service",
                                           "getty@tty1.service",
                                           "nginx.service",
                                           "node-exporter.service",
                                           "postgresql.service",
                                           "rsyslog.service",
                                           "ssh.service",
                                           "systemd-journald.service",
                                           "systemd-logind.service",
                                           "systemd-networkd.service",
                                           "systemd-resolved.service",
                                           "systemd-timesyncd.service",
                                           "systemd-udevd.service",
                                           "containerd.service",
                                           "docker.service",
                                           "chrony.service",
                                           "unattended-upgrades.service",
                                           "apt-daily.timer",
                                           "logrotate.timer"};
  for (const char* unit : kUnits) {
    for (const char* state : {"activating", "active", "deactivating", "failed", "inactive"}) {
      b.Constant("node_systemd_unit_state", {{"name", unit}, {"state", state}, {"type", "simple"}},
                 std::string_view(state) == "active" ? 1 : 0);
    }
  }
  for (const char* res : {"cpu", "io", "memory"}) {
    b.Counter(fmt::format("node_pressure_{}_waiting_seconds_total", res), {}, b.Rand(0, 1e4), 0.01,
              1e-6);
    if (std::string_view(res) != "cpu") {
      b.Counter(fmt::format("node_pressure_{}_stalled_seconds_total", res), {}, b.Rand(0, 1e4),
                0.005, 1e-6);
    }
  }
  b.Gauge("node_nf_conntrack_entries", {}, 10, 5000, 20, 1);
  b.Constant("node_nf_conntrack_entries_limit", {}, 262144);
  b.Gauge("node_arp_entries", {{"device", "eth0"}}, 1, 20, 1, 1);

  // The exporter about itself.
  static constexpr const char* kCollectors[] = {
      "arp",        "bcache",       "bonding",          "btrfs",      "conntrack",
      "cpu",        "cpufreq",      "diskstats",        "dmi",        "edac",
      "entropy",    "fibrechannel", "filefd",           "filesystem", "hwmon",
      "infiniband", "ipvs",         "loadavg",          "mdadm",      "meminfo",
      "netclass",   "netdev",       "netstat",          "nfs",        "nfsd",
      "nvme",       "os",           "powersupplyclass", "pressure",   "rapl",
      "schedstat",  "selinux",      "sockstat",         "softnet",    "stat",
      "tapestats",  "textfile",     "thermal_zone",     "time",       "timex",
      "udp_queues", "uname",        "vmstat",           "xfs",        "zfs"};
  for (const char* c : kCollectors) {
    b.Gauge("node_scrape_collector_duration_seconds", {{"collector", c}}, 1e-5, 0.05, 0.002, 1e-9);
    b.Constant("node_scrape_collector_success", {{"collector", c}}, 1);
  }
  b.Constant("node_exporter_build_info",
             {{"branch", "debian/sid"},
              {"goversion", "go1.19.8"},
              {"revision", "1.5.0"},
              {"version", "1.5.0"}},
             1);
  for (double q : {0.0, 0.25, 0.5, 0.75, 1.0}) {
    b.Gauge("go_gc_duration_seconds", {{"quantile", fmt::format("{}", q)}}, 1e-5 * (1 + 10 * q),
            2e-4 * (1 + 10 * q), 1e-5, 1e-9);
  }
  b.Counter("go_gc_duration_seconds_sum", {}, b.Rand(1, 100), 0.0005, 1e-9);
  b.Counter("go_gc_duration_seconds_count", {}, b.Rand(1e3, 1e5), 0.2);
  b.Gauge("go_goroutines", {}, 5, 20, 1, 1);
  b.Gauge("go_threads", {}, 5, 12, 0.3, 1);
  static constexpr const char* kMemstats[] = {
      "alloc_bytes",         "alloc_bytes_total", "buck_hash_sys_bytes",
      "frees_total",         "gc_sys_bytes",      "heap_alloc_bytes",
      "heap_idle_bytes",     "heap_inuse_bytes",  "heap_objects",
      "heap_released_bytes", "heap_sys_bytes",    "last_gc_time_seconds",
      "lookups_total",       "mallocs_total",     "mcache_inuse_bytes",
      "mcache_sys_bytes",    "mspan_inuse_bytes", "mspan_sys_bytes",
      "next_gc_bytes",       "other_sys_bytes",   "stack_inuse_bytes",
      "stack_sys_bytes",     "sys_bytes"};
  for (const char* m : kMemstats) {
    std::string_view mv(m);
    std::string name = fmt::format("go_memstats_{}", m);
    if (mv.ends_with("_total")) {
      b.Counter(name, {}, b.Rand(1e6, 1e10), b.Rand(1e3, 1e5));
    } else {
      b.Gauge(name, {}, 1e5, 5e7, 1e5, 8);
    }
  }
  b.Constant("go_info", {{"version", "go1.19.8"}}, 1);
  b.Counter("process_cpu_seconds_total", {}, b.Rand(100, 1e4), 0.01, 0.01);
  b.Constant("process_max_fds", {}, 1048576);
  b.Gauge("process_open_fds", {}, 8, 20, 1, 1);
  b.Gauge("process_resident_memory_bytes", {}, 1e7, 4e7, 1e5, 4096);
  b.Constant("process_start_time_seconds", {}, 1.7e9 + std::floor(b.Rand(0, 1e7)));
  b.Gauge("process_virtual_memory_bytes", {}, 7e8, 8e8, 1e5, 4096);
  b.Constant("process_virtual_memory_max_bytes", {}, 1.8446744073709552e19);
  for (const char* code : {"200", "500", "503"}) {
    b.Counter("promhttp_metric_handler_requests_total", {{"code", code}},
              std::string_view(code) == "200" ? b.Rand(1e4, 1e6) : 0,
              std::string_view(code) == "200" ? 1.0 / 15 : 0);
  }
  b.Gauge("promhttp_metric_handler_requests_in_flight", {}, 1, 1, 0, 1);

  // Classic histograms, as an instrumented service on the host would expose them.
  const std::vector<double> latency = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
  for (const char* handler : {"/api/orders", "/api/users", "/metrics", "/healthz"}) {
    for (const char* method : {"GET", "POST"}) {
      b.Histogram("http_request_duration_seconds", {{"handler", handler}, {"method", method}},
                  latency, b.Rand(0.01, 0.4));
    }
  }
  const std::vector<double> sizes = {100, 1000, 10000, 100000, 1e6};
  for (const char* handler : {"/api/orders", "/api/users"}) {
    b.Histogram("http_response_size_bytes", {{"handler", handler}}, sizes, b.Rand(500, 20000));
  }

  // What the scraping Prometheus adds.
  b.Constant("up", {}, 1);
  b.Gauge("scrape_duration_seconds", {}, 0.01, 0.2, 0.01, 1e-6);
  b.Constant("scrape_samples_scraped", {}, 1000);
  b.Constant("scrape_samples_post_metric_relabeling", {}, 1000);
  b.Constant("scrape_series_added", {}, 0);
  return b.Take();
}

int64_t ScrapeTime(const LoadConfig& config, int host, int64_t step) {
  uint64_t h = Mix(config.seed * 31 + static_cast<uint64_t>(host));
  int64_t phase = static_cast<int64_t>(h % static_cast<uint64_t>(config.interval_ms / 10 + 1));
  int64_t jitter = 0;
  if (config.jitter_ms > 0) {
    jitter = static_cast<int64_t>(Mix(h ^ static_cast<uint64_t>(step)) %
                                  static_cast<uint64_t>(config.jitter_ms + 1));
  }
  return config.start_ms + step * config.interval_ms + phase + jitter;
}

void ProtoWriter::Varint(uint64_t v) {
  char buf[10];
  int n = 0;
  while (v >= 0x80) {
    buf[n++] = static_cast<char>((v & 0x7f) | 0x80);
    v >>= 7;
  }
  buf[n++] = static_cast<char>(v);
  out_->append(buf, static_cast<size_t>(n));
}

void ProtoWriter::Bytes(uint32_t field, std::string_view v) {
  Tag(field, 2);
  Varint(v.size());
  out_->append(v);
}

void ProtoWriter::Double(uint32_t field, double v) {
  Tag(field, 1);
  uint64_t bits = std::bit_cast<uint64_t>(v);
  char buf[8];
  for (int i = 0; i < 8; ++i) buf[i] = static_cast<char>(bits >> (8 * i));
  out_->append(buf, 8);
}

void ProtoWriter::Int64(uint32_t field, int64_t v) {
  Tag(field, 0);
  Varint(static_cast<uint64_t>(v));
}

namespace {

// A series ready to encode: its Label messages, encoded once.
struct PreparedSeries {
  SeriesDef def;
  int host = 0;
  std::string labels;  // repeated Label labels = 1, encoded
};

// Encodes the requests of one connection: scrape by scrape, its series in order, cut into
// requests of `samples_per_request` samples (one sample per TimeSeries, as Prometheus sends).
void EncodeConnection(const LoadConfig& config, std::vector<PreparedSeries*>& series,
                      std::vector<EncodedRequest>* out, std::atomic<uint64_t>* encoded,
                      EncodedLoad* totals, std::mutex* mu) {
  std::string raw, sample, ts;
  uint32_t in_request = 0;
  uint64_t raw_bytes = 0, compressed = 0, samples = 0;
  const double interval_s = static_cast<double>(config.interval_ms) / 1000;
  auto flush = [&] {
    if (in_request == 0) return;
    EncodedRequest& r = out->emplace_back();
    snappy::Compress(raw.data(), raw.size(), &r.body);
    r.samples = in_request;
    r.series = in_request;
    raw_bytes += raw.size();
    compressed += r.body.size();
    encoded->fetch_add(in_request, std::memory_order_relaxed);
    samples += in_request;
    raw.clear();
    in_request = 0;
  };
  // Scrape times per host for the current step.
  for (int64_t step = 0; step < config.steps; ++step) {
    for (PreparedSeries* s : series) {
      int64_t t = ScrapeTime(config, s->host, step);
      double v = s->def.Advance(step, interval_s, t);
      sample.clear();
      ProtoWriter sw(&sample);
      sw.Double(1, v);
      sw.Int64(2, t);
      ts.clear();
      ts.append(s->labels);
      ProtoWriter tw(&ts);
      tw.Bytes(2, sample);
      ProtoWriter(&raw).Bytes(1, ts);
      if (++in_request == static_cast<uint32_t>(config.samples_per_request)) flush();
    }
  }
  flush();
  std::lock_guard<std::mutex> lock(*mu);
  totals->raw_bytes += raw_bytes;
  totals->compressed_bytes += compressed;
  totals->samples += samples;
}

}  // namespace

EncodedLoad BuildLoad(const LoadConfig& config, int threads,
                      const std::function<void(uint64_t)>& progress) {
  EncodedLoad load;
  const int conns = std::max(1, config.connections);
  load.requests.resize(static_cast<size_t>(conns));
  std::vector<PreparedSeries> all;
  for (int h = 0; h < config.hosts; ++h) {
    for (SeriesDef& def : NodeExporterSeries(h, config.job, config.seed)) {
      PreparedSeries& p = all.emplace_back();
      p.host = h;
      ProtoWriter w(&p.labels);
      for (const auto& [name, value] : def.labels) {
        std::string label;
        ProtoWriter lw(&label);
        lw.Bytes(1, name);
        lw.Bytes(2, value);
        w.Bytes(1, label);
      }
      p.def = std::move(def);
    }
  }
  load.series = all.size();
  // Round-robin over connections, so every connection carries some of every host.
  std::vector<std::vector<PreparedSeries*>> shards(static_cast<size_t>(conns));
  for (size_t i = 0; i < all.size(); ++i) shards[i % shards.size()].push_back(&all[i]);

  std::atomic<uint64_t> encoded{0};
  std::atomic<int> next{0};
  std::mutex mu;
  std::vector<std::thread> workers;
  for (int t = 0; t < std::max(1, threads); ++t) {
    workers.emplace_back([&] {
      for (int c; (c = next.fetch_add(1)) < conns;) {
        EncodeConnection(config, shards[static_cast<size_t>(c)],
                         &load.requests[static_cast<size_t>(c)], &encoded, &load, &mu);
      }
    });
  }
  if (progress) {
    std::atomic<bool> stop{false};
    std::thread reporter([&] {
      while (!stop.load()) {
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
        progress(encoded.load());
      }
    });
    for (std::thread& w : workers) w.join();
    stop = true;
    reporter.join();
  } else {
    for (std::thread& w : workers) w.join();
  }
  load.min_time_ms = INT64_MAX;
  load.max_time_ms = INT64_MIN;
  for (int h = 0; h < config.hosts; ++h) {
    load.min_time_ms = std::min(load.min_time_ms, ScrapeTime(config, h, 0));
    load.max_time_ms = std::max(load.max_time_ms, ScrapeTime(config, h, config.steps - 1));
  }
  if (config.hosts == 0 || config.steps == 0) load.min_time_ms = load.max_time_ms = 0;
  return load;
}

namespace {

// One keep-alive HTTP/1.1 connection with blocking I/O.
class Connection {
 public:
  explicit Connection(const SendTarget& target) : target_(target) {}
  ~Connection() { Close(); }

  bool Open(std::string* error) {
    Close();
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* res = nullptr;
    int rc =
        ::getaddrinfo(target_.host.c_str(), std::to_string(target_.port).c_str(), &hints, &res);
    if (rc != 0) {
      *error = fmt::format("resolve {}: {}", target_.host, gai_strerror(rc));
      return false;
    }
    for (addrinfo* a = res; a != nullptr; a = a->ai_next) {
      fd_ = ::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
      if (fd_ < 0) continue;
      if (::connect(fd_, a->ai_addr, a->ai_addrlen) == 0) break;
      ::close(fd_);
      fd_ = -1;
    }
    ::freeaddrinfo(res);
    if (fd_ < 0) {
      *error = fmt::format("connect {}:{}: {}", target_.host, target_.port, std::strerror(errno));
      return false;
    }
    int one = 1;
    ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    buffer_.clear();
    return true;
  }

  void Close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }
  bool open() const { return fd_ >= 0; }

  // Sends one POST and reads the answer: its status code, or 0 and `error` on a transport
  // failure. `body_out` receives the response body.
  int Post(std::string_view body, std::string* body_out, std::string* error) {
    std::string head = fmt::format(
        "POST {} HTTP/1.1\r\nHost: {}:{}\r\nUser-Agent: strata-loadgen\r\n"
        "Content-Encoding: snappy\r\nContent-Type: application/x-protobuf\r\n"
        "X-Prometheus-Remote-Write-Version: 0.1.0\r\nContent-Length: {}\r\n\r\n",
        target_.path, target_.host, target_.port, body.size());
    if (!WriteAll(head, body, error)) return 0;
    return ReadResponse(body_out, error);
  }

 private:
  bool WriteAll(std::string_view a, std::string_view b, std::string* error) {
    iovec iov[2] = {{const_cast<char*>(a.data()), a.size()},
                    {const_cast<char*>(b.data()), b.size()}};
    int idx = 0;
    while (idx < 2) {
      ssize_t n = ::writev(fd_, iov + idx, 2 - idx);
      if (n < 0) {
        if (errno == EINTR) continue;
        *error = fmt::format("write: {}", std::strerror(errno));
        return false;
      }
      size_t left = static_cast<size_t>(n);
      while (idx < 2 && left >= iov[idx].iov_len) {
        left -= iov[idx].iov_len;
        ++idx;
      }
      if (idx < 2) {
        iov[idx].iov_base = static_cast<char*>(iov[idx].iov_base) + left;
        iov[idx].iov_len -= left;
      }
    }
    return true;
  }

  bool Fill(std::string* error) {
    pollfd p{fd_, POLLIN, 0};
    int rc = ::poll(&p, 1, 120'000);
    if (rc <= 0) {
      *error = rc == 0 ? "no answer within 120 s" : fmt::format("poll: {}", std::strerror(errno));
      return false;
    }
    char buf[16384];
    ssize_t n = ::read(fd_, buf, sizeof(buf));
    if (n <= 0) {
      *error = n == 0 ? "connection closed by the server"
                      : fmt::format("read: {}", std::strerror(errno));
      return false;
    }
    buffer_.append(buf, static_cast<size_t>(n));
    return true;
  }

  static bool HeaderIs(std::string_view line, std::string_view name, std::string_view* value) {
    if (line.size() <= name.size() || line[name.size()] != ':') return false;
    for (size_t i = 0; i < name.size(); ++i) {
      if (std::tolower(static_cast<unsigned char>(line[i])) != name[i]) return false;
    }
    std::string_view v = line.substr(name.size() + 1);
    while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
    while (!v.empty() && (v.back() == ' ' || v.back() == '\t' || v.back() == '\r'))
      v.remove_suffix(1);
    *value = v;
    return true;
  }

  int ReadResponse(std::string* body_out, std::string* error) {
    for (;;) {
      size_t end;
      while ((end = buffer_.find("\r\n\r\n")) == std::string::npos) {
        if (!Fill(error)) return 0;
      }
      std::string_view head(buffer_.data(), end + 2);
      if (head.size() < 12 || head.substr(0, 5) != "HTTP/") {
        *error = "malformed response";
        return 0;
      }
      int status = std::atoi(std::string(head.substr(9, 3)).c_str());
      size_t content_length = 0;
      bool chunked = false, close = false;
      size_t pos = head.find("\r\n") + 2;
      while (pos < head.size()) {
        size_t eol = head.find("\r\n", pos);
        std::string_view line = head.substr(pos, eol - pos);
        std::string_view v;
        if (HeaderIs(line, "content-length", &v)) {
          content_length = static_cast<size_t>(std::strtoull(std::string(v).c_str(), nullptr, 10));
        } else if (HeaderIs(line, "transfer-encoding", &v)) {
          chunked = v.find("chunked") != std::string_view::npos;
        } else if (HeaderIs(line, "connection", &v)) {
          close = v.find("close") != std::string_view::npos;
        }
        pos = eol + 2;
      }
      buffer_.erase(0, end + 4);
      body_out->clear();
      if (chunked) {
        for (;;) {
          size_t eol;
          while ((eol = buffer_.find("\r\n")) == std::string::npos) {
            if (!Fill(error)) return 0;
          }
          size_t size = std::strtoul(buffer_.substr(0, eol).c_str(), nullptr, 16);
          while (buffer_.size() < eol + 2 + size + 2) {
            if (!Fill(error)) return 0;
          }
          body_out->append(buffer_, eol + 2, size);
          buffer_.erase(0, eol + 2 + size + 2);
          if (size == 0) break;  // trailers are not expected
        }
      } else if (status != 204 && status != 304) {
        while (buffer_.size() < content_length) {
          if (!Fill(error)) return 0;
        }
        body_out->assign(buffer_, 0, content_length);
        buffer_.erase(0, content_length);
      }
      if (close) Close();
      if (status >= 100 && status < 200) continue;  // interim answer
      return status;
    }
  }

  const SendTarget& target_;
  int fd_ = -1;
  std::string buffer_;
};

}  // namespace

SendStats SendLoad(const EncodedLoad& load, const SendTarget& target, SendProgress* progress) {
  SendStats stats;
  std::mutex mu;
  const size_t conns = load.requests.size();
  std::vector<std::unique_ptr<Connection>> connections;
  for (size_t c = 0; c < conns; ++c) {
    connections.push_back(std::make_unique<Connection>(target));
    std::string error;
    if (!connections.back()->Open(&error) && stats.first_error.empty()) stats.first_error = error;
  }
  auto start = std::chrono::steady_clock::now();
  std::vector<std::thread> threads;
  for (size_t c = 0; c < conns; ++c) {
    threads.emplace_back([&, c] {
      Connection& conn = *connections[c];
      SendStats local;
      std::string body, error;
      for (const EncodedRequest& r : load.requests[c]) {
        ++local.requests;
        local.samples_sent += r.samples;
        if (progress) progress->samples_sent.fetch_add(r.samples, std::memory_order_relaxed);
        int status = 0;
        error.clear();
        if (conn.open() || conn.Open(&error)) status = conn.Post(r.body, &body, &error);
        if (status == 0) {
          conn.Close();
          local.samples_failed += r.samples;
          if (progress) progress->requests_failed.fetch_add(1, std::memory_order_relaxed);
          if (local.first_error.empty()) local.first_error = error;
          continue;
        }
        if (status >= 200 && status < 300) {
          local.samples_acked += r.samples;
          if (progress) progress->samples_acked.fetch_add(r.samples, std::memory_order_relaxed);
        } else {
          local.samples_rejected += r.samples;
          ++local.rejected_requests_by_code[status];
          if (local.first_error.empty()) {
            local.first_error = fmt::format("HTTP {}: {}", status, body.substr(0, 300));
          }
        }
      }
      std::lock_guard<std::mutex> lock(mu);
      stats.requests += local.requests;
      stats.samples_sent += local.samples_sent;
      stats.samples_acked += local.samples_acked;
      stats.samples_rejected += local.samples_rejected;
      stats.samples_failed += local.samples_failed;
      for (auto [code, n] : local.rejected_requests_by_code)
        stats.rejected_requests_by_code[code] += n;
      if (stats.first_error.empty()) stats.first_error = local.first_error;
    });
  }
  for (std::thread& t : threads) t.join();
  stats.wall_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return stats;
}

}  // namespace strata::loadgen

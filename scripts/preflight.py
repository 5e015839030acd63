#!/usr/bin/env python3
"""Inspect this host against ZooKeeper's performance guidance and say what to change.

    scripts/preflight.sh [--config zoo.cfg | --data-dir DIR [--data-log-dir DIR]] [--json FILE]

Read-only: it reads /proc, /sys and resource limits and never changes anything. Each check
prints what it found, a verdict (ok / change / note) and, for `change`, the command that would
change it; tuning/README.md explains each recipe and its measured or documented effect.

The guidance is ZooKeeper's own (Administrator's Guide, "Things to Consider: ZooKeeper
Strengths and Limitations" and "Tuning"): a dedicated transaction log device, no swapping, a
heap that fits in memory; plus what ringkeeper's design adds (DESIGN.md): locked memory for
io_uring buffers, one core per executor.

scripts/bench_vs_zookeeper.py imports this module to describe the host next to its figures.
"""

import argparse
import json
import os
import platform
import resource
import sys
from pathlib import Path

# glommio's io_uring buffers need locked memory; ringkeeper sizes them to fit 8 MiB (DESIGN.md).
MEMLOCK_MIN_BYTES = 8 << 20
# ZooKeeper's guidance for many client connections (one descriptor per connection).
NOFILE_MIN = 65536


def read(path, default=None):
    try:
        return Path(path).read_text().strip()
    except OSError:
        return default


def bracketed(text):
    """The selected value of a sysfs choice list like `always [madvise] never`."""
    if text is None:
        return None
    for word in text.split():
        if word.startswith("[") and word.endswith("]"):
            return word[1:-1]
    return text


def mount_of(path):
    """(mount point, filesystem type, source, options) of the mount holding `path`, from
    /proc/self/mountinfo: the longest mount point that is a prefix of the real path."""
    real = os.path.realpath(path)
    best = None
    for line in (read("/proc/self/mountinfo", "") or "").splitlines():
        left, _, right = line.partition(" - ")
        fields = left.split()
        rfields = right.split()
        if len(fields) < 6 or len(rfields) < 2:
            continue
        point = fields[4].replace("\\040", " ")
        if real == point or real.startswith(point.rstrip("/") + "/") or point == "/":
            if best is None or len(point) >= len(best[0]):
                best = (point, rfields[0], rfields[1], fields[5] + "," + (rfields[2] if len(rfields) > 2 else ""))
    return best or ("?", "?", "?", "")


def block_device_of(path):
    """The whole-disk block device under `path` (e.g. `vda`, `nvme0n1`), or None (tmpfs,
    overlay without a block device, ...). st_dev -> /sys/dev/block/MAJ:MIN; a partition's
    parent directory is the disk."""
    try:
        dev = os.stat(path).st_dev
    except OSError:
        return None
    sys_path = Path("/sys/dev/block/%d:%d" % (os.major(dev), os.minor(dev)))
    if not sys_path.exists():
        return None
    real = sys_path.resolve()
    if (real / "partition").exists():
        real = real.parent
    return real.name


def disk_facts(device):
    if device is None:
        return {}
    queue = Path("/sys/block") / device / "queue"
    return {
        "device": device,
        "model": read(Path("/sys/block") / device / "device" / "model", ""),
        "size_gib": round(int(read(Path("/sys/block") / device / "size", "0")) * 512 / 2**30, 1),
        "rotational": read(queue / "rotational"),
        "scheduler": bracketed(read(queue / "scheduler")),
        "scheduler_choices": read(queue / "scheduler"),
        "write_cache": read(queue / "write_cache"),
    }


def memory_total_mib():
    for line in (read("/proc/meminfo", "") or "").splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) // 1024
    return None


def cpu_model():
    for line in (read("/proc/cpuinfo", "") or "").splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.machine()


def governors():
    found = set()
    for g in Path("/sys/devices/system/cpu").glob("cpu[0-9]*/cpufreq/scaling_governor"):
        value = read(g)
        if value:
            found.add(value)
    return sorted(found)


def describe_host(path):
    """One line per fact, for the benchmark report: CPUs, memory, kernel, disk under `path`."""
    point, fstype, source, _ = mount_of(path)
    disk = disk_facts(block_device_of(path))
    load = read("/proc/loadavg", "?").split()[:3]
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu_model(),
        "memory_mib": memory_total_mib(),
        "kernel": platform.release(),
        "filesystem": "%s on %s (%s)" % (fstype, point, source),
        "disk": ("%s %s GiB, rotational=%s, scheduler=%s, write cache %s" % (
            disk.get("device"), disk.get("size_gib"), disk.get("rotational"),
            disk.get("scheduler"), disk.get("write_cache"))) if disk else "no block device",
        "load_average": " ".join(load),
    }


def checks(data_dir, data_log_dir):
    """[(check, found, verdict, advice)] with verdict in ok / change / note."""
    out = []

    swaps = [line.split()[0] for line in (read("/proc/swaps", "") or "").splitlines()[1:] if line.strip()]
    swappiness = read("/proc/sys/vm/swappiness", "?")
    if swaps:
        out.append(("swap", "on: %s (vm.swappiness=%s)" % (", ".join(swaps), swappiness), "change",
                    "ZooKeeper must not swap (Admin Guide): `sudo swapoff -a` and remove swap from "
                    "/etc/fstab, or at least `sudo sysctl vm.swappiness=1`"))
    else:
        out.append(("swap", "off (vm.swappiness=%s)" % swappiness, "ok", ""))

    thp = bracketed(read("/sys/kernel/mm/transparent_hugepage/enabled"))
    defrag = bracketed(read("/sys/kernel/mm/transparent_hugepage/defrag"))
    if thp is None:
        out.append(("transparent huge pages", "not exposed", "note", ""))
    elif thp == "always":
        out.append(("transparent huge pages", "enabled=%s defrag=%s" % (thp, defrag), "change",
                    "compaction stalls show up as latency spikes: `echo madvise | sudo tee "
                    "/sys/kernel/mm/transparent_hugepage/enabled` (boot: transparent_hugepage=madvise)"))
    else:
        out.append(("transparent huge pages", "enabled=%s defrag=%s" % (thp, defrag), "ok", ""))

    soft, hard = resource.getrlimit(resource.RLIMIT_MEMLOCK)

    def limit_text(v):
        return "unlimited" if v == resource.RLIM_INFINITY else "%d KiB" % (v // 1024)

    memlock = "soft %s, hard %s" % (limit_text(soft), limit_text(hard))
    if soft != resource.RLIM_INFINITY and soft < MEMLOCK_MIN_BYTES:
        out.append(("locked memory (ulimit -l)", memlock, "change",
                    "io_uring buffers need at least %d KiB: `ulimit -l %d` in the service's shell, "
                    "or LimitMEMLOCK=%d in its systemd unit, or memlock in "
                    "/etc/security/limits.conf" % (MEMLOCK_MIN_BYTES // 1024, MEMLOCK_MIN_BYTES // 1024,
                                                   MEMLOCK_MIN_BYTES)))
    else:
        out.append(("locked memory (ulimit -l)", memlock, "ok", ""))

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    nofile = "soft %s, hard %s" % (soft, hard)
    if soft != resource.RLIM_INFINITY and soft < NOFILE_MIN:
        out.append(("open files (ulimit -n)", nofile, "change",
                    "one descriptor per client connection: `ulimit -n %d` or LimitNOFILE=%d"
                    % (NOFILE_MIN, NOFILE_MIN)))
    else:
        out.append(("open files (ulimit -n)", nofile, "ok", ""))

    for label, path in (("dataDir", data_dir), ("dataLogDir", data_log_dir)):
        point, fstype, source, options = mount_of(path)
        found = "%s: %s on %s (%s) options %s" % (path, fstype, point, source, options.strip(","))
        if fstype in ("tmpfs", "ramfs"):
            out.append(("%s filesystem" % label, found, "change",
                        "memory, not a disk: fsync is free and nothing survives a reboot; "
                        "put the data on a disk"))
        elif fstype in ("nfs", "nfs4", "cifs", "fuse.sshfs", "overlay"):
            out.append(("%s filesystem" % label, found, "change",
                        "a network or layered filesystem adds latency to every fsync; use a local "
                        "ext4 or xfs filesystem"))
        elif any(o in options.split(",") for o in ("nobarrier", "barrier=0")):
            out.append(("%s filesystem" % label, found, "change",
                        "write barriers are off: an acknowledged write may be lost on power "
                        "failure; remount without nobarrier"))
        else:
            out.append(("%s filesystem" % label, found, "ok", ""))

    same = None
    try:
        same = os.stat(data_dir).st_dev == os.stat(data_log_dir).st_dev
    except OSError:
        pass
    if same is None:
        out.append(("dataLogDir on its own device", "cannot stat the directories", "note", ""))
    elif same:
        out.append(("dataLogDir on its own device",
                    "no: dataDir and dataLogDir are both on %s" % (block_device_of(data_dir) or "the same filesystem"),
                    "change",
                    "the transaction log should have a dedicated device (Admin Guide): "
                    "snapshots and other I/O delay its fsyncs; set dataLogDir= to a directory on "
                    "another disk"))
    else:
        out.append(("dataLogDir on its own device", "yes (%s, %s)" % (
            block_device_of(data_dir), block_device_of(data_log_dir)), "ok", ""))

    seen = set()
    for label, path in (("dataDir", data_dir), ("dataLogDir", data_log_dir)):
        device = block_device_of(path)
        if device is None or device in seen:
            continue
        seen.add(device)
        disk = disk_facts(device)
        found = "%s: scheduler %s (choices: %s), rotational=%s, write cache %s" % (
            device, disk["scheduler"], disk["scheduler_choices"], disk["rotational"], disk["write_cache"])
        if disk["rotational"] == "0" and disk["scheduler"] not in ("none", "mq-deadline"):
            out.append(("I/O scheduler (%s)" % label, found, "change",
                        "an SSD/NVMe gains nothing from reordering: `echo none | sudo tee "
                        "/sys/block/%s/queue/scheduler`" % device))
        elif disk["rotational"] == "1" and disk["scheduler"] == "none":
            out.append(("I/O scheduler (%s)" % label, found, "change",
                        "a spinning disk benefits from mq-deadline: `echo mq-deadline | sudo tee "
                        "/sys/block/%s/queue/scheduler`" % device))
        else:
            note = ""
            if disk["rotational"] == "1" and device.startswith(("vd", "xvd")):
                note = ("virtual disk: rotational=1 is what the hypervisor reports, the fdatasync "
                        "rate (rk-bench probe disk) tells what it is")
            out.append(("I/O scheduler (%s)" % label, found, "note" if note else "ok", note))

    cpus = os.cpu_count() or 0
    usable = len(os.sched_getaffinity(0))
    found = "%d online, %d usable by this process" % (cpus, usable)
    if usable < 3:
        out.append(("CPU count", found, "note",
                    "ringkeeper wants a core per executor plus one for the log writer; with %d the "
                    "load generator and the server share cores (pin with taskset / --cores)" % usable))
    else:
        out.append(("CPU count", found, "ok", ""))

    govs = governors()
    if not govs:
        out.append(("CPU frequency governor", "not exposed (virtual machine or no cpufreq driver)", "note", ""))
    elif govs != ["performance"]:
        out.append(("CPU frequency governor", ", ".join(govs), "change",
                    "frequency ramps add latency at low load: `sudo cpupower frequency-set -g performance`"))
    else:
        out.append(("CPU frequency governor", "performance", "ok", ""))
    return out


def config_dirs(cfg):
    data_dir = data_log_dir = None
    for line in Path(cfg).read_text().splitlines():
        key, sep, value = line.partition("=")
        if not sep or key.strip().startswith("#"):
            continue
        if key.strip() == "dataDir":
            data_dir = value.strip()
        elif key.strip() == "dataLogDir":
            data_log_dir = value.strip()
    return data_dir, data_log_dir or data_dir


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", help="zoo.cfg to read dataDir and dataLogDir from")
    parser.add_argument("--data-dir", help="dataDir (default: the current directory)")
    parser.add_argument("--data-log-dir", help="dataLogDir (default: dataDir)")
    parser.add_argument("--json", help="also write the findings as JSON to this file")
    args = parser.parse_args()
    data_dir, data_log_dir = None, None
    if args.config:
        data_dir, data_log_dir = config_dirs(args.config)
    data_dir = args.data_dir or data_dir or os.getcwd()
    data_log_dir = args.data_log_dir or data_log_dir or data_dir
    for d in (data_dir, data_log_dir):
        if not os.path.isdir(d):
            print("preflight: %s is not a directory (create it first)" % d, file=sys.stderr)
            return 2
    host = describe_host(data_dir)
    print("host: %d CPUs (%s), %s MiB memory, kernel %s, load average %s" % (
        host["nproc"], host["cpu"], host["memory_mib"], host["kernel"], host["load_average"]))
    print("dataDir %s, dataLogDir %s\n" % (data_dir, data_log_dir))
    findings = checks(data_dir, data_log_dir)
    width = max(len(f[0]) for f in findings)
    for name, found, verdict, advice in findings:
        print("%-6s %-*s  %s" % (verdict, width, name, found))
        if advice:
            print("       %-*s  -> %s" % (width, "", advice))
    changes = sum(1 for f in findings if f[2] == "change")
    print("\n%d to change; see tuning/README.md for each recipe and its effect" % changes)
    if args.json:
        Path(args.json).write_text(json.dumps({"host": host, "findings": [
            dict(zip(("check", "found", "verdict", "advice"), f)) for f in findings]}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

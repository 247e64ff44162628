"""What machine a benchmark ran on, the same way for every script in bench/."""

from __future__ import annotations

import os
import platform
import resource
from pathlib import Path


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def describe() -> dict:
    """CPU, cores, load average, torch and its threads, GPU, Python and platform."""
    facts: dict = {
        "cpu": cpu_name(),
        "cores": os.cpu_count(),
        "load_average": round(os.getloadavg()[0], 2),
        "platform": platform.platform(),
        "python": platform.python_version(),
    }
    try:
        import torch
    except ImportError:
        return facts
    facts["torch"] = torch.__version__
    facts["torch_threads"] = torch.get_num_threads()
    facts["gpu"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return facts


def summary() -> str:
    """One line for a table's heading."""
    f = describe()
    torch_part = f" torch {f['torch']} ({f['torch_threads']} threads)," if "torch" in f else ""
    return (
        f"{f['cpu']}, {f['cores']} cores,{torch_part} {f.get('gpu') or 'no GPU'}, "
        f"load average {f['load_average']:.1f} at start"
    )


def peak_mb() -> float:
    """This process's peak resident memory (since the last ``reset_peak``). VmHWM, not
    ru_maxrss: the latter keeps the parent's peak across fork and exec, so every worker
    would report the driver's, and it cannot be reset."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def reset_peak() -> bool:
    """Start ``peak_mb`` afresh from the memory resident now (Linux: /proc/self/clear_refs),
    so one step's peak is measured without a larger earlier one (a data generator's).
    False where the system does not allow it: the peak then covers the whole process."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True

"""What machine a benchmark ran on, the same way for every script in bench/."""

from __future__ import annotations

import os
import platform
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

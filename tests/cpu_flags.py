"""What this machine's CPU can run, from /proc/cpuinfo: for the tests that build the kernel for
other (older) CPUs and run it here."""

from __future__ import annotations

# The flags an x86-64-v3 (AVX2) build may use beyond older levels' (which every x86-64-v3 CPU has).
X86_64_V3 = {"avx2", "fma", "bmi2", "f16c", "movbe", "abm"}


def cpu_flags() -> set[str]:
    with open("/proc/cpuinfo") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    return set()


def runs(march: str) -> bool:
    """Whether this CPU runs code built for `march`: x86-64 (any x86-64 CPU) or x86-64-v3."""
    if march == "x86-64":
        return True
    if march == "x86-64-v3":
        return cpu_flags() >= X86_64_V3
    raise ValueError(f"no flags known for {march}")

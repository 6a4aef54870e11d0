"""Build the CPU recipe kernel (``recipe_cpu.cpp``) with the system C++ compiler, cached.

The compiler is ``$CXX``, else ``g++`` or ``c++``; the library goes to ``$VELOCITYGAN_CACHE``
(default ``~/.cache/velocitygan``) under a name hashed from the source, the compiler's version
and target, the machine type and the flags (which follow the CPU's features), so a changed
source, compiler or CPU builds anew and processes share one build. The file appears by atomic
rename: a concurrent or interrupted build never leaves half a library.

Why not ``torch.utils.cpp_extension.load``: it builds this file as fast (about 1 s) and the
kernel runs as fast (20 samples on one thread: 6.5-7.0 s either way), but it needs ninja (not a
dependency; without it the kernel would be missing and the recipe 8x slower), a build killed
mid-way leaves a lock file on which every later load waits forever (torch 2.13), and within one
process it neither rebuilds a deleted library nor keeps the library's name when the cache folder
changes (``recipe_cpu_v1.so``).
"""

from __future__ import annotations

import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
from pathlib import Path

from velocitygan.errors import ConfigError

__all__ = ["SOURCE_FILE", "build_library", "cache_dir"]

SOURCE_FILE = Path(__file__).with_name("recipe_cpu.cpp")


def cache_dir() -> Path:
    """Folder for compiled kernels: ``$VELOCITYGAN_CACHE`` or ``~/.cache/velocitygan``."""
    return Path(os.environ.get("VELOCITYGAN_CACHE") or Path.home() / ".cache" / "velocitygan")


def _compiler() -> str:
    for name in (os.environ.get("CXX"), "g++", "c++"):
        if name and shutil.which(name):
            return str(shutil.which(name))
    raise ConfigError("the CPU recipe kernel needs a C++ compiler (g++); install one or set CXX")


def _flags() -> list[str]:
    flags = ["-O3", "-std=c++17", "-shared", "-fPIC"]
    if platform.machine() in ("x86_64", "AMD64"):
        try:
            cpu = Path("/proc/cpuinfo").read_text().split()
        except OSError:
            cpu = []
        if "avx2" in cpu and "fma" in cpu:
            flags += ["-mavx2", "-mfma"]
        if "avx512f" in cpu:  # 16 floats per instruction: 10 % faster on a Xeon (bench/README)
            flags += ["-mavx512f", "-mprefer-vector-width=512"]
    return flags


def _run(compiler: str, *args: str, timeout: float) -> subprocess.CompletedProcess:
    try:
        return subprocess.run([compiler, *args], capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.SubprocessError) as exc:
        raise ConfigError(f"cannot run the C++ compiler {compiler}: {exc}") from None


def build_library(rebuild: bool = False) -> Path:
    """Compile the kernel into the cache (once per source, compiler, machine and flags);
    return its path. ``rebuild`` replaces an existing file (e.g. one that would not load)."""
    compiler, flags = _compiler(), _flags()
    version = _run(compiler, "--version", timeout=60).stdout
    machine = _run(compiler, "-dumpmachine", timeout=60).stdout.strip()
    key = hashlib.sha256("\0".join(
        [SOURCE_FILE.read_text(), compiler, version, machine, platform.machine(), *flags]
    ).encode()).hexdigest()[:16]
    folder = cache_dir()
    target = folder / f"recipe_cpu-{key}.so"
    if target.exists() and not rebuild:
        return target
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".recipe_cpu-", suffix=".so", dir=folder)
        os.close(fd)
    except OSError as exc:
        raise ConfigError(f"cannot write the compiled kernel to {folder} ({exc}); "
                          "set VELOCITYGAN_CACHE to a writable folder") from None
    try:
        done = _run(compiler, *flags, str(SOURCE_FILE), "-o", tmp, timeout=300)
        if done.returncode != 0:
            # the first error line: the last line is often 'compilation terminated.'
            lines = [line.strip() for line in done.stderr.splitlines() if line.strip()]
            errors = [line for line in lines if "error" in line.lower()]
            raise ConfigError("compiling the CPU recipe kernel failed: "
                              f"{(errors or lines or ['no output'])[0][:300]}")
        os.chmod(tmp, 0o755)  # mkstemp made it private; other users may share the cache
        os.replace(tmp, target)  # atomic: another process never sees half a library
    finally:
        Path(tmp).unlink(missing_ok=True)
    return target

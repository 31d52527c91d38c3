#!/usr/bin/env python3
"""numpy (OpenBLAS) sgemm timings for the densetrain kernels benchmark (run by bench/openblas.ts).

    python3 bench/numpy_gemm.py '{"shapes": [[128, 784, 128]], "forms": ["NT", "NN", "TN"],
                                  "threads": 2, "quick": false}'

Prints one JSON object on stdout. Shapes are (M, K, N): C [M, N] = op(A) [M, K] @ op(B) [K, N],
float32, row-major storage exactly as densetrain's bench stores it, written into a preallocated C
(np.matmul(..., out=C), so numpy calls sgemm with transpose flags and allocates nothing):

    NT  A stored [M, K], B stored [N, K]   A @ B.T
    NN  A stored [M, K], B stored [K, N]   A @ B
    TN  A stored [K, M], B stored [K, N]   A.T @ B

Each call is timed on its own (time.perf_counter_ns) after a warm-up, until both a time budget and
a minimum count are met, like tinybench in bench/kernels.ts; the statistic is the median.

Threads: the parent sets OPENBLAS_NUM_THREADS (and OMP/MKL) before numpy loads; if threadpoolctl is
installed it also limits the pool and reports the BLAS. Otherwise the loaded OpenBLAS is asked
directly through ctypes (openblas_get_corename / get_config / get_num_threads, the way
threadpoolctl does), falling back to numpy.show_config(). Exit 3 (with {"error": ...}) when numpy
cannot be imported.
"""
import ctypes
import json
import os
import platform
import statistics
import sys
import time


def blas_info_ctypes():
    """The OpenBLAS this process loaded, asked through its own API (Linux: found in /proc/self/maps)."""
    paths = set()
    try:
        with open("/proc/self/maps") as f:
            for line in f:
                p = line.split()[-1] if len(line.split()) >= 6 else ""
                if "openblas" in os.path.basename(p).lower():
                    paths.add(p)
    except OSError:
        return None
    for path in sorted(paths):
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue

        def fn(name, restype):
            for prefix in ("openblas_", "scipy_openblas_"):
                for suffix in ("", "64_", "_64_"):
                    f = getattr(lib, prefix + name + suffix, None)
                    if f is not None:
                        f.restype = restype
                        return f
            return None

        corename = fn("get_corename", ctypes.c_char_p)
        config = fn("get_config", ctypes.c_char_p)
        nthreads = fn("get_num_threads", ctypes.c_int)
        if corename is None and config is None:
            continue
        return {
            "source": "ctypes (openblas_get_corename/get_config)",
            "internal_api": "openblas",
            "filepath": path,
            "architecture": corename().decode() if corename else None,
            "config": config().decode().strip() if config else None,
            "num_threads": nthreads() if nthreads else None,
        }
    return None


def blas_info(np, threads):
    """Which BLAS and kernel numpy runs, and a context that limits its threads (or None)."""
    limiter = None
    try:
        from threadpoolctl import threadpool_info, threadpool_limits

        limiter = threadpool_limits(limits=threads, user_api="blas")
        pools = [p for p in threadpool_info() if p.get("user_api") == "blas"]
        if pools:
            p = pools[0]
            return {
                "source": "threadpoolctl",
                "internal_api": p.get("internal_api"),
                "filepath": p.get("filepath"),
                "architecture": p.get("architecture"),
                "config": None,
                "version": p.get("version"),
                "num_threads": p.get("num_threads"),
            }, limiter
    except ImportError:
        pass
    info = blas_info_ctypes()
    if info is not None:
        return info, limiter
    try:
        cfg = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        return {
            "source": "numpy.show_config() (build configuration, not necessarily the runtime kernel)",
            "internal_api": cfg.get("name"),
            "filepath": cfg.get("lib directory"),
            "architecture": None,
            "config": cfg.get("openblas configuration"),
            "version": cfg.get("version"),
            "num_threads": None,
        }, limiter
    except Exception as e:  # noqa: BLE001 - report, do not fail the timings
        return {"source": f"unknown ({e})"}, limiter


def operands(np, form, M, K, N, rng):
    def rand(shape):
        return (rng.random(shape, dtype=np.float32) * 2 - 1).astype(np.float32)

    if form == "NT":
        a, b = rand((M, K)), rand((N, K))
        return a, b, a, b.T
    if form == "NN":
        a, b = rand((M, K)), rand((K, N))
        return a, b, a, b
    if form == "TN":
        a, b = rand((K, M)), rand((K, N))
        return a, b, a.T, b
    raise ValueError(f"unknown form {form}")


def timing(quick, flops):
    # The same budgets as timing() in bench/kernels.ts (milliseconds, minimum counts).
    big = flops > 1e9
    if quick:
        return {"time": 60, "iterations": 3 if big else 5, "warmup_time": 20, "warmup_iterations": 1}
    return {"time": 400, "iterations": 7 if big else 15, "warmup_time": 100, "warmup_iterations": 2 if big else 5}


def measure(fn, t):
    start = time.perf_counter_ns()
    n = 0
    while n < t["warmup_iterations"] or time.perf_counter_ns() - start < t["warmup_time"] * 1e6:
        fn()
        n += 1
    samples = []
    start = time.perf_counter_ns()
    while len(samples) < t["iterations"] or time.perf_counter_ns() - start < t["time"] * 1e6:
        t0 = time.perf_counter_ns()
        fn()
        samples.append(time.perf_counter_ns() - t0)
    return statistics.median(samples) / 1e6, len(samples)


def main():
    spec = json.loads(sys.argv[1]) if len(sys.argv) > 1 else {}
    shapes = spec.get("shapes", [[512, 512, 512]])
    forms = spec.get("forms", ["NT", "NN", "TN"])
    threads = int(spec.get("threads", 1))
    quick = bool(spec.get("quick", False))
    try:
        import numpy as np
    except ImportError as e:
        print(json.dumps({"error": f"numpy is not importable: {e}", "python": sys.executable}))
        return 3
    info, limiter = blas_info(np, threads)
    rng = np.random.default_rng(1)
    rows = []
    for M, K, N in shapes:
        flops = 2 * M * N * K
        for form in forms:
            a, b, opa, opb = operands(np, form, M, K, N, rng)
            c = np.empty((M, N), dtype=np.float32)
            np.matmul(opa, opb, out=c)
            # Spot check against float64, as the densetrain bench does (a wrong result is not timed).
            ref = opa.astype(np.float64) @ opb.astype(np.float64)
            if not np.allclose(c, ref, rtol=1e-4, atol=1e-4 * np.sqrt(K)):
                raise SystemExit(f"numpy matmul {form} {M}x{K}x{N} disagrees with float64")
            ms, n = measure(lambda: np.matmul(opa, opb, out=c), timing(quick, flops))
            rows.append({"shape": f"{M}x{K}x{N}", "form": form, "threads": threads, "medianMs": ms, "samples": n, "gflops": flops / (ms * 1e-3) / 1e9})
    if limiter is not None:
        limiter.restore_original_limits()
    print(
        json.dumps(
            {
                "python": sys.executable,
                "pythonVersion": platform.python_version(),
                "numpy": np.__version__,
                "threads": threads,
                "env": {k: os.environ.get(k) for k in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")},
                "blas": info,
                "rows": rows,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

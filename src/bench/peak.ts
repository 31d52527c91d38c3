/**
 * The FP32 peak the kernels benchmark compares GEMM rates against: clock x flops per cycle per
 * core (from the ISA a backend reports) x cores used.
 *
 * CLOCK. Linux's /proc/cpuinfo "cpu MHz" is the current frequency (often the idle or nominal
 * one under a hypervisor), not what a busy core runs at, and the native addon exports no
 * calibrated FMA loop. So on x86-64 the clock is estimated from JavaScript: a chain of
 * dependent 32-bit integer multiplies (Math.imul -> imul r32, r32, whose latency is 3 cycles on
 * every x86-64 core since Intel Nehalem and AMD Zen), timed over short windows; the fastest
 * window counts (a window in which another process took the core is only slower). It is the
 * clock of one busy core; with every core busy the clock may be lower, so the multi-core peak
 * is an upper bound. On other architectures there is no estimate: give the peak instead.
 *
 * OVERRIDE. DENSETRAIN_PEAK_GFLOPS or --peak (the option wins) is the single-core FP32 peak in
 * GFLOP/s of the native ISA (for example measured with an inline-assembly FMA loop); the clock
 * is then taken as that peak / the ISA's flops per cycle, which also sets the wasm ceiling.
 *
 * FLOPS PER CYCLE PER CORE (FP32; one FMA = 2 flops):
 *   native avx512   64 = 2 FMA units x 16 lanes x 2 (cores with one 512-bit FMA unit reach 32)
 *   native avx2     32 = 2 FMA units x 8 lanes x 2
 *   native generic  x86-64 SSE2, no FMA: 16 = 4 lanes x (2 mul + 2 add); arm64 NEON: 16 = 2 FMA x 4 lanes x 2
 *   wasm simd128    plain SIMD128 has no FMA (that is relaxed-simd), so a multiply-accumulate is
 *                   f32x4.mul + f32x4.add: x86-64 16 = 4 lanes x (2 mul + 2 add), an upper
 *                   bound reached only by cores with two multiply and two add pipes (e.g. Zen 3;
 *                   half the AVX2 FMA peak); arm64 8 = 4 lanes x 2 vector ops
 *   reference       n/a (scalar JavaScript)
 */
import { readFileSync } from 'node:fs';
import { arch, cpus } from 'node:os';
import type { BackendName, KernelsInfo } from '../kernels/types.js';

export interface ClockEstimate {
  /** GHz used for the peaks (null: unknown, no peak). */
  ghz: number | null;
  /** How ghz was obtained. */
  source: 'imul-chain' | '--peak' | 'DENSETRAIN_PEAK_GFLOPS' | 'none';
  /** For the JS estimate: every window's GHz (the fastest is used). */
  windowsGHz?: number[];
  /** /proc/cpuinfo "cpu MHz" of the first CPU (the current clock, for context), if readable. */
  procCpuinfoMHz: number | null;
  /** os.cpus()[0].speed (MHz). */
  osSpeedMHz: number | null;
}

export interface BackendPeak {
  backend: BackendName;
  isa: string;
  threads: number;
  /** Physical cores the threads can occupy: min(threads, physical cores). */
  cores: number;
  flopsPerCycle: number | null;
  /** Single-core peak, GFLOP/s. */
  perCoreGflops: number | null;
  /** cores x perCoreGflops: what the backend's rows are compared with. */
  gflops: number | null;
  /** What the flops-per-cycle figure assumes, in words. */
  basis: string;
}

export interface PeakModel {
  clock: ClockEstimate;
  physicalCores: number;
  backends: BackendPeak[];
  /** Human-readable lines: the peak each backend is compared with, and how it was obtained. */
  lines: string[];
}

const X64 = arch() === 'x64';

/** FP32 flops per cycle per core for a backend's ISA, and what that assumes. */
export function flopsPerCycle(backend: BackendName, isa: string, cpuArch: string = arch()): { flops: number | null; basis: string } {
  if (backend === 'reference') return { flops: null, basis: 'scalar JavaScript, no peak' };
  if (backend === 'wasm') {
    if (cpuArch === 'x64' && isa === 'simd128-relaxed') {
      return { flops: 16, basis: 'relaxed-SIMD ceiling: f32x4.relaxed_madd is one 4-lane FMA, two per cycle (the same 16 flops/cycle as mul + add on two multiply and two add pipes, in half the instructions)' };
    }
    if (cpuArch === 'x64') {
      return { flops: 16, basis: 'SIMD128 ceiling: plain SIMD128 has no FMA, so 4-lane f32x4.mul + f32x4.add, two of each per cycle = half the AVX2 FMA peak; an upper bound, reached only with two multiply and two add pipes as on Zen 3' };
    }
    if (cpuArch === 'arm64') return { flops: 8, basis: 'SIMD128 ceiling: no FMA, 4-lane mul + add on two NEON pipes' };
    return { flops: null, basis: `no SIMD128 model for ${cpuArch}` };
  }
  switch (isa) {
    case 'avx512':
      return { flops: 64, basis: 'AVX-512: 2 FMA units x 16 lanes x 2 flops (cores with one 512-bit FMA unit reach half)' };
    case 'avx2':
    case 'avx2-fma':
      return { flops: 32, basis: 'AVX2+FMA: 2 FMA units x 8 lanes x 2 flops' };
    case 'generic':
      if (cpuArch === 'x64') return { flops: 16, basis: 'SSE2, no FMA: 4 lanes x (2 mul + 2 add) per cycle (an upper bound)' };
      if (cpuArch === 'arm64') return { flops: 16, basis: 'NEON: 2 FMA pipes x 4 lanes x 2 flops' };
      return { flops: null, basis: `no model for generic on ${cpuArch}` };
    default:
      return { flops: null, basis: `unknown ISA ${JSON.stringify(isa)}` };
  }
}

/** Physical cores (Linux: distinct (package, core) pairs in /proc/cpuinfo); else the logical CPU count. */
export function physicalCores(): number {
  const logical = Math.max(1, cpus().length);
  try {
    const info = readFileSync('/proc/cpuinfo', 'utf8');
    const pairs = new Set<string>();
    for (const block of info.split(/\n\s*\n/)) {
      const phys = /^physical id\s*:\s*(\d+)/m.exec(block)?.[1];
      const core = /^core id\s*:\s*(\d+)/m.exec(block)?.[1];
      if (phys !== undefined && core !== undefined) pairs.add(`${phys}:${core}`);
    }
    return pairs.size > 0 ? Math.min(pairs.size, logical) : logical;
  } catch {
    return logical;
  }
}

function procCpuinfoMHz(): number | null {
  try {
    const m = /^cpu MHz\s*:\s*([\d.]+)/m.exec(readFileSync('/proc/cpuinfo', 'utf8'));
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}

/** 16 dependent imuls per iteration; k comes from the caller so V8 cannot fold the chain. */
function imulChain(n: number, x: number, k: number): number {
  for (let i = 0; i < n; i++) {
    x = Math.imul(x, k); x = Math.imul(x, k); x = Math.imul(x, k); x = Math.imul(x, k);
    x = Math.imul(x, k); x = Math.imul(x, k); x = Math.imul(x, k); x = Math.imul(x, k);
    x = Math.imul(x, k); x = Math.imul(x, k); x = Math.imul(x, k); x = Math.imul(x, k);
    x = Math.imul(x, k); x = Math.imul(x, k); x = Math.imul(x, k); x = Math.imul(x, k);
  }
  return x;
}

let sink = 0;

/**
 * GHz of one busy core from a dependent imul chain (3 cycles per imul on x86-64): about 60 ms.
 * Returns every window's estimate; the fastest is the clock.
 */
export function estimateClockGHz(windows = 24, iterations = 60_000): number[] {
  // Warm up until V8 optimizes imulChain (it is then a straight run of imul r32, r32).
  for (let w = 0; w < 60; w++) sink ^= imulChain(2_000, w + 1, (0x2545f491 ^ w) | 1);
  const out: number[] = [];
  for (let w = 0; w < windows; w++) {
    const t0 = process.hrtime.bigint();
    sink ^= imulChain(iterations, w + 3, (0x2545f491 + 2 * w) | 1);
    const ns = Number(process.hrtime.bigint() - t0);
    out.push((iterations * 16 * 3) / ns);
  }
  return out;
}

/** A peak override (--peak, DENSETRAIN_PEAK_GFLOPS): a positive finite GFLOP/s, else null. */
export function parsePeakGflops(text: string): number | null {
  const v = Number(text.trim());
  return text.trim() !== '' && Number.isFinite(v) && v > 0 && v < 1e6 ? v : null;
}

export interface PeakOptions {
  /** --peak value (GFLOP/s, single core, native ISA); wins over the environment. */
  override?: number;
  /** Environment to read DENSETRAIN_PEAK_GFLOPS from (default process.env). */
  env?: NodeJS.ProcessEnv;
  /** Skip the JS clock estimate (tests): the clock is unknown unless overridden. */
  noEstimate?: boolean;
}

/** The ISA the single-core override refers to: the native backend's, or the widest the CPU flags allow. */
function overrideIsa(infos: KernelsInfo[], flags: string[]): string {
  const native = infos.find((i) => i.backend === 'native');
  if (native) return native.isa;
  if (flags.includes('avx512f')) return 'avx512';
  if (flags.includes('avx2') && flags.includes('fma')) return 'avx2';
  return 'generic';
}

/**
 * The peak for each benchmarked backend. `infos` are the backends' info(); `cpuFlags` the CPU
 * flags (for an override when native is not benchmarked).
 */
export function resolvePeak(infos: KernelsInfo[], cpuFlags: string[], options: PeakOptions = {}): PeakModel {
  const env = options.env ?? process.env;
  const cores = physicalCores();
  const osSpeed = cpus()[0]?.speed;
  const clock: ClockEstimate = { ghz: null, source: 'none', procCpuinfoMHz: procCpuinfoMHz(), osSpeedMHz: osSpeed && osSpeed > 0 ? osSpeed : null };
  let overrideNote = '';
  const envText = env['DENSETRAIN_PEAK_GFLOPS'];
  let override = options.override;
  let overrideSource: ClockEstimate['source'] = '--peak';
  if (override === undefined && envText !== undefined && envText.trim() !== '') {
    const v = parsePeakGflops(envText);
    if (v === null) throw new Error(`DENSETRAIN_PEAK_GFLOPS must be a positive number of GFLOP/s (single-core peak of the native ISA), got ${JSON.stringify(envText)}`);
    override = v;
    overrideSource = 'DENSETRAIN_PEAK_GFLOPS';
  }
  if (override !== undefined) {
    const isa = overrideIsa(infos, cpuFlags);
    const f = flopsPerCycle('native', isa).flops;
    if (f === null) throw new Error(`a peak override needs a known native ISA (got ${isa})`);
    clock.ghz = override / f;
    clock.source = overrideSource;
    overrideNote = `${overrideSource} ${override} GFLOP/s single-core ${isa} -> clock ${clock.ghz.toFixed(3)} GHz`;
  } else if (X64 && !options.noEstimate) {
    const windows = estimateClockGHz();
    clock.windowsGHz = windows.map((g) => Number(g.toFixed(4)));
    clock.ghz = Math.max(...windows);
    clock.source = 'imul-chain';
  }

  const backends: BackendPeak[] = infos.map((info) => {
    const { flops, basis } = flopsPerCycle(info.backend, info.isa);
    const used = Math.max(1, Math.min(info.threads, cores));
    const perCore = flops !== null && clock.ghz !== null ? flops * clock.ghz : null;
    return { backend: info.backend, isa: info.isa, threads: info.threads, cores: used, flopsPerCycle: flops, perCoreGflops: perCore, gflops: perCore === null ? null : perCore * used, basis };
  });

  const lines: string[] = [];
  const ctx = [clock.procCpuinfoMHz !== null ? `/proc/cpuinfo now says ${clock.procCpuinfoMHz.toFixed(0)} MHz (current, not max)` : null, `${cores} physical cores`].filter(Boolean).join('; ');
  if (clock.source === 'imul-chain') {
    lines.push(`peak: clock ${clock.ghz!.toFixed(2)} GHz, estimated in JS from a dependent imul chain (3-cycle latency on x86-64; fastest of ${clock.windowsGHz!.length} windows, one busy core: with all cores busy the clock may be lower) — ${ctx}; override with --peak or DENSETRAIN_PEAK_GFLOPS (single-core GFLOP/s of the native ISA)`);
  } else if (clock.source === 'none') {
    lines.push(`peak: no clock estimate on ${arch()} — give --peak or DENSETRAIN_PEAK_GFLOPS (single-core GFLOP/s of the native ISA) for % of peak; ${ctx}`);
  } else {
    lines.push(`peak: ${overrideNote}; ${ctx}`);
  }
  for (const b of backends) {
    if (b.gflops === null) {
      lines.push(`peak ${b.backend}: n/a (${b.basis})`);
      continue;
    }
    lines.push(
      `peak ${b.backend} ${b.isa}: ${b.gflops.toFixed(1)} GFLOP/s = ${b.cores} core${b.cores === 1 ? '' : 's'} x ${b.flopsPerCycle} flop/cycle x ${clock.ghz!.toFixed(2)} GHz (${b.basis})`,
    );
  }
  return { clock, physicalCores: cores, backends, lines };
}

/** The peak a backend's rows are compared with (null: none). */
export function peakFor(model: PeakModel | undefined, backend: BackendName): number | null {
  return model?.backends.find((b) => b.backend === backend)?.gflops ?? null;
}

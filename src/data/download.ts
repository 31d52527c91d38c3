/**
 * `densetrain data download <name>`: fetch the four IDX .gz files of MNIST or Fashion-MNIST
 * from public mirrors, verify each against its known size and SHA-256, and write it
 * atomically (temp file in the target directory, fsync, rename). A failed or interrupted
 * download leaves nothing half-written under the final name; a bad file is never kept.
 *
 * Checksums: SHA-256 and sizes of the .gz files as published in TensorFlow Datasets
 * (tensorflow/datasets, tensorflow_datasets/url_checksums/mnist.txt and fashion_mnist.txt),
 * the same values many independent projects pin; the Fashion-MNIST files also match the MD5
 * sums in the upstream README (zalandoresearch/fashion-mnist), which we do not check again.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, readdir, rename, stat, unlink, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { DataError, describeFsError } from './errors.js';
import { IDX_FILE_NAMES, defaultDownloadDir, type LoadOptions } from './registry.js';

export { listDatasets } from './registry.js';

export type DownloadableDataset = 'mnist' | 'fashion-mnist';
export const DOWNLOADABLE: readonly DownloadableDataset[] = ['mnist', 'fashion-mnist'];

export interface FileChecksum {
  sha256: string;
  /** Exact size in bytes, when known. */
  size?: number;
}

/** The four files, in download order: small label files first, so a bad mirror fails fast. */
export const DOWNLOAD_FILES: readonly string[] = [
  `${IDX_FILE_NAMES.trainLabels}.gz`,
  `${IDX_FILE_NAMES.testLabels}.gz`,
  `${IDX_FILE_NAMES.testImages}.gz`,
  `${IDX_FILE_NAMES.trainImages}.gz`,
];

export const CHECKSUMS: Record<DownloadableDataset, Record<string, FileChecksum>> = {
  mnist: {
    'train-images-idx3-ubyte.gz': { size: 9912422, sha256: '440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609' },
    'train-labels-idx1-ubyte.gz': { size: 28881, sha256: '3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c' },
    't10k-images-idx3-ubyte.gz': { size: 1648877, sha256: '8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6' },
    't10k-labels-idx1-ubyte.gz': { size: 4542, sha256: 'f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6' },
  },
  'fashion-mnist': {
    'train-images-idx3-ubyte.gz': { size: 26421880, sha256: '3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84' },
    'train-labels-idx1-ubyte.gz': { size: 29515, sha256: 'a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845' },
    't10k-images-idx3-ubyte.gz': { size: 4422102, sha256: '346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073' },
    't10k-labels-idx1-ubyte.gz': { size: 5148, sha256: '67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5' },
  },
};

/** Mirrors tried in order (the checksums make any of them safe, plain http included). */
export const MIRRORS: Record<DownloadableDataset, readonly string[]> = {
  mnist: ['https://ossci-datasets.s3.amazonaws.com/mnist/', 'https://storage.googleapis.com/cvdf-datasets/mnist/'],
  'fashion-mnist': [
    'http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/',
    'https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/',
  ],
};

export type DownloadState = 'start' | 'progress' | 'done' | 'present' | 'failed';

export interface DownloadProgress {
  state: DownloadState;
  /** File name, e.g. 'train-images-idx3-ubyte.gz'. */
  file: string;
  /** 0-based position of the file and the number of files. */
  index: number;
  files: number;
  /** Bytes received so far for this file (for 'present': its size). */
  received: number;
  /** Expected bytes (checksum table, else Content-Length), when known. */
  total: number | undefined;
  url?: string;
  /** For 'failed': why (another mirror may follow). */
  error?: string;
}

export interface DownloadOptions {
  /** Base URL to fetch from instead of the built-in mirrors (the file names are appended). */
  mirror?: string;
  /** Several base URLs, tried in order (ignored when `mirror` is given). */
  mirrors?: readonly string[];
  /** Target directory (default <cache>/<name>, where loadDataset looks). */
  dir?: string;
  onProgress?: (p: DownloadProgress) => void;
  /** Replaces the built-in checksum table (tests serve their own files). */
  checksums?: Record<string, FileChecksum>;
  /** Abort when no data arrives for this long (default 60 s). */
  idleTimeoutMs?: number;
  /** Download again even when a verified file is already there. */
  force?: boolean;
  signal?: AbortSignal;
  /** For the default directory. */
  env?: LoadOptions['env'];
  homeDir?: string;
}

export interface DownloadedFile {
  file: string;
  path: string;
  bytes: number;
  sha256: string;
  /** 'downloaded', or 'present' when a verified copy was already there. */
  status: 'downloaded' | 'present';
  url?: string;
}

export interface DownloadResult {
  name: DownloadableDataset;
  dir: string;
  files: DownloadedFile[];
}

function normalizeMirror(mirror: string): string {
  let url: URL;
  try {
    url = new URL(mirror);
  } catch {
    throw new DataError(undefined, `--mirror: '${mirror}' is not a URL (expected http:// or https://...)`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new DataError(undefined, `--mirror: '${mirror}' must be an http:// or https:// URL`);
  }
  const s = url.toString();
  return s.endsWith('/') ? s : `${s}/`;
}

async function sha256OfFile(path: string): Promise<{ sha256: string; bytes: number }> {
  const hash = createHash('sha256');
  let bytes = 0;
  for await (const chunk of createReadStream(path) as AsyncIterable<Buffer>) {
    hash.update(chunk);
    bytes += chunk.length;
  }
  return { sha256: hash.digest('hex'), bytes };
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

const TEMP_RE = /^\.(.+)\.(\d+)\.[0-9a-f]+\.part$/;

/** Removes temp files of earlier downloads whose process is gone (a crash or kill -9). */
async function removeStaleTemps(dir: string): Promise<void> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return;
  }
  for (const n of names) {
    const m = TEMP_RE.exec(n);
    if (m && !isAlive(Number(m[2]))) await unlink(join(dir, n)).catch(() => undefined);
  }
}

function describeNetworkError(e: unknown): string {
  const err = e as Error & { cause?: { code?: string; message?: string } };
  if (err?.name === 'AbortError' || err?.name === 'TimeoutError') return err.message || 'aborted';
  const cause = err?.cause;
  const code = cause?.code ? `${cause.code}` : '';
  const msg = cause?.message && cause.message !== err.message ? cause.message : '';
  const base = err?.message === 'terminated' ? 'connection closed before the whole file arrived' : err?.message ?? String(e);
  return [base, code && !msg.includes(code) ? code : '', msg].filter((s) => s !== '').join(': ');
}

class Attempt extends Error {}

type ReportProgress = (p: Omit<DownloadProgress, 'file' | 'index' | 'files'>) => void;

/** Aborts a transfer when no data arrives for `idleTimeoutMs` (re-armed by every chunk) or when `outer` aborts. */
function idleWatchdog(idleTimeoutMs: number, outer: AbortSignal | undefined) {
  const controller = new AbortController();
  let idleReason = '';
  let timer: NodeJS.Timeout | undefined;
  const onOuterAbort = (): void => controller.abort();
  outer?.addEventListener('abort', onOuterAbort, { once: true });
  return {
    signal: controller.signal,
    arm(): void {
      if (timer) clearTimeout(timer);
      timer = setTimeout(() => {
        idleReason = `no data for ${idleTimeoutMs / 1000} s`;
        controller.abort();
      }, idleTimeoutMs);
    },
    /** Why the transfer failed: the idle timeout or a cancel when either fired, else `otherwise`. */
    reason(otherwise: string): string {
      return idleReason || (outer?.aborted ? 'cancelled' : otherwise);
    },
    dispose(): void {
      if (timer) clearTimeout(timer);
      outer?.removeEventListener('abort', onOuterAbort);
    },
  };
}
type IdleWatchdog = ReturnType<typeof idleWatchdog>;

/** Sends the request; throws Attempt on a network error, an HTTP error or a size the server announces wrongly. */
async function openResponse(url: string, expected: FileChecksum, watchdog: IdleWatchdog): Promise<{ body: ReadableStream<Uint8Array>; total: number | undefined }> {
  let res: Response;
  try {
    res = await fetch(url, { signal: watchdog.signal, redirect: 'follow' });
  } catch (e) {
    throw new Attempt(watchdog.reason(`network error: ${describeNetworkError(e)}`));
  }
  if (!res.ok || res.body === null) {
    await res.body?.cancel().catch(() => undefined);
    throw new Attempt(`HTTP ${res.status}${res.statusText ? ` ${res.statusText}` : ''}`);
  }
  const lengthHeader = res.headers.get('content-length');
  const contentLength = lengthHeader !== null && /^\d+$/.test(lengthHeader) ? Number(lengthHeader) : undefined;
  if (expected.size !== undefined && contentLength !== undefined && contentLength !== expected.size) {
    await res.body.cancel().catch(() => undefined);
    throw new Attempt(`server announces ${contentLength} bytes, expected ${expected.size}`);
  }
  return { body: res.body, total: expected.size ?? contentLength };
}

/** Streams the body into `handle`, hashing as it goes; stops with Attempt past `limit` bytes or on a broken transfer. */
async function writeBody(
  body: ReadableStream<Uint8Array>,
  handle: FileHandle,
  final: string,
  limit: number,
  watchdog: IdleWatchdog,
  progress: (received: number) => void,
): Promise<{ received: number; sha256: string }> {
  const hash = createHash('sha256');
  let received = 0;
  try {
    for await (const chunk of body as unknown as AsyncIterable<Uint8Array>) {
      watchdog.arm();
      received += chunk.length;
      if (received > limit) throw new Attempt(`server sent more than the expected ${limit} bytes`);
      hash.update(chunk);
      try {
        await handle.write(chunk);
      } catch (e) {
        throw new DataError(final, `cannot write the download: ${describeFsError(e)}`);
      }
      progress(received);
    }
  } catch (e) {
    if (e instanceof Attempt || e instanceof DataError) throw e;
    throw new Attempt(watchdog.reason(`download interrupted after ${received} bytes: ${describeNetworkError(e)}`));
  }
  return { received, sha256: hash.digest('hex') };
}

/** Checks the size and SHA-256 of the finished temp file, then renames it to `final` durably. */
async function verifyAndRename(temp: string, final: string, expected: FileChecksum, received: number, sha256: string): Promise<void> {
  if (expected.size !== undefined && received !== expected.size) {
    throw new Attempt(`incomplete: received ${received} bytes, expected ${expected.size}`);
  }
  if (sha256 !== expected.sha256.toLowerCase()) {
    throw new Attempt(`checksum mismatch: expected sha256 ${expected.sha256}, got ${sha256}`);
  }
  await rename(temp, final);
  // Make the rename itself durable (best effort: not every platform can fsync a directory).
  try {
    const d = await open(join(final, '..'), 'r');
    await d.sync().catch(() => undefined);
    await d.close();
  } catch {
    /* ignore */
  }
}

/**
 * Fetches one URL into `final` via a temp file; verifies size and SHA-256 before the rename.
 * Throws Attempt (a reason for this mirror) on any failure, having removed the temp file.
 */
async function fetchOne(
  url: string,
  file: string,
  final: string,
  expected: FileChecksum,
  report: ReportProgress,
  idleTimeoutMs: number,
  outer: AbortSignal | undefined,
): Promise<{ bytes: number; sha256: string }> {
  const watchdog = idleWatchdog(idleTimeoutMs, outer);
  const temp = join(final, '..', `.${file}.${process.pid}.${randomBytes(4).toString('hex')}.part`);
  let handle: FileHandle | undefined;
  try {
    watchdog.arm();
    const { body, total } = await openResponse(url, expected, watchdog);
    try {
      handle = await open(temp, 'wx', 0o644);
    } catch (e) {
      await body.cancel().catch(() => undefined);
      throw new DataError(temp, `cannot create the download file: ${describeFsError(e)}`);
    }
    report({ state: 'start', received: 0, total, url });
    const limit = expected.size ?? Number.POSITIVE_INFINITY;
    const { received, sha256 } = await writeBody(body, handle, final, limit, watchdog, (n) => report({ state: 'progress', received: n, total, url }));
    await handle.sync();
    await handle.close();
    handle = undefined;
    await verifyAndRename(temp, final, expected, received, sha256);
    return { bytes: received, sha256 };
  } finally {
    watchdog.dispose();
    if (handle !== undefined) await handle.close().catch(() => undefined);
    await unlink(temp).catch(() => undefined); // gone already after a successful rename
  }
}

/**
 * Downloads (or confirms) the four files of `name` into `options.dir` (default the cache
 * directory loadDataset searches). Throws a DataError naming the file, the URL(s) and the
 * reason (HTTP status, network error, checksum mismatch with expected and actual values).
 */
export async function downloadDataset(name: string, options: DownloadOptions = {}): Promise<DownloadResult> {
  if (!(DOWNLOADABLE as readonly string[]).includes(name)) {
    const hint = name === 'mnist-sample' ? ' (mnist-sample ships with densetrain: nothing to download)' : '';
    throw new DataError(undefined, `unknown dataset '${name}': downloadable datasets are ${DOWNLOADABLE.join(', ')}${hint}`);
  }
  const ds = name as DownloadableDataset;
  const table = options.checksums ?? CHECKSUMS[ds];
  const mirrors =
    options.mirror !== undefined
      ? [normalizeMirror(options.mirror)]
      : (options.mirrors ?? MIRRORS[ds]).map(normalizeMirror);
  const dir =
    options.dir ??
    defaultDownloadDir(ds, {
      ...(options.env !== undefined ? { env: options.env } : {}),
      ...(options.homeDir !== undefined ? { homeDir: options.homeDir } : {}),
    });
  const idle = options.idleTimeoutMs ?? 60_000;
  try {
    await mkdir(dir, { recursive: true });
  } catch (e) {
    throw new DataError(dir, `cannot create the download directory: ${describeFsError(e)}`);
  }
  await removeStaleTemps(dir);

  const files: DownloadedFile[] = [];
  const n = DOWNLOAD_FILES.length;
  for (let index = 0; index < n; index++) {
    const file = DOWNLOAD_FILES[index]!;
    const expected = table[file];
    if (expected === undefined) throw new DataError(file, 'no checksum known for this file; refusing to download it unverified');
    const final = join(dir, file);
    const report = (p: Omit<DownloadProgress, 'file' | 'index' | 'files'>): void =>
      options.onProgress?.({ ...p, file, index, files: n });

    if (!options.force) {
      const present = await stat(final).then(
        (s) => s.isFile(),
        () => false,
      );
      if (present) {
        const have = await sha256OfFile(final).catch(() => undefined);
        if (have !== undefined && have.sha256 === expected.sha256.toLowerCase()) {
          report({ state: 'present', received: have.bytes, total: have.bytes });
          files.push({ file, path: final, bytes: have.bytes, sha256: have.sha256, status: 'present' });
          continue;
        }
      }
    }

    const failures: string[] = [];
    let done: { bytes: number; sha256: string; url: string } | undefined;
    for (const base of mirrors) {
      const url = base + file;
      try {
        const r = await fetchOne(url, file, final, expected, report, idle, options.signal);
        done = { ...r, url };
        break;
      } catch (e) {
        if (!(e instanceof Attempt)) throw e;
        failures.push(`${url}: ${e.message}`);
        report({ state: 'failed', received: 0, total: expected.size, url, error: e.message });
        if (options.signal?.aborted) break;
      }
    }
    if (done === undefined) {
      throw new DataError(file, `download failed (nothing was saved): ${failures.join('; ')}`);
    }
    report({ state: 'done', received: done.bytes, total: done.bytes, url: done.url });
    files.push({ file, path: final, bytes: done.bytes, sha256: done.sha256, status: 'downloaded', url: done.url });
  }
  return { name: ds, dir, files };
}

/**
 * downloadDataset against a local node:http server on 127.0.0.1 (ephemeral port) serving small
 * generated IDX files; the checksum table is injected. No test touches the internet.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DataError } from '../src/data/errors.js';
import {
  CHECKSUMS,
  DOWNLOAD_FILES,
  MIRRORS,
  downloadDataset,
  type DownloadProgress,
  type FileChecksum,
} from '../src/data/download.js';
import { loadDataset } from '../src/data/registry.js';
import { gz, idxImages, idxLabels, syntheticSet, tempDir } from './helpers/data-fixtures.js';

const train = syntheticSet(30, 5, 5, 10, 31);
const test = syntheticSet(12, 5, 5, 10, 32);
const FILES: Record<string, Buffer> = {
  'train-images-idx3-ubyte.gz': gz(idxImages(train)),
  'train-labels-idx1-ubyte.gz': gz(idxLabels(train.labels)),
  't10k-images-idx3-ubyte.gz': gz(idxImages(test)),
  't10k-labels-idx1-ubyte.gz': gz(idxLabels(test.labels)),
};
const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');
const TABLE: Record<string, FileChecksum> = Object.fromEntries(
  Object.entries(FILES).map(([k, v]) => [k, { sha256: sha(v), size: v.length }]),
);

let server: Server;
let base: string;
let requests: string[] = [];
let root: string;
let cleanup: () => void;

/** Routes: /ok/<file>, /404/<file>, /cut/<file> (closes mid-body), /cutnolen/<file>, /stall/<file>, /half-ok/<file> (404 for images). */
function handle(path: string, res: ServerResponse): void {
  const [, mode, file] = path.split('/');
  const body = FILES[file ?? ''];
  if (body === undefined || mode === '404' || (mode === 'half-ok' && file!.includes('images'))) {
    res.writeHead(404, { 'Content-Type': 'text/html' });
    res.end('<html>Not Found</html>');
    return;
  }
  if (mode === 'ok' || mode === 'half-ok') {
    res.writeHead(200, { 'Content-Length': body.length, 'Content-Type': 'application/octet-stream' });
    res.end(body);
    return;
  }
  if (mode === 'cut' || mode === 'cutnolen') {
    res.writeHead(200, mode === 'cut' ? { 'Content-Length': body.length } : {});
    res.write(body.subarray(0, body.length >> 1));
    setTimeout(() => res.socket?.destroy(), 30);
    return;
  }
  if (mode === 'stall') {
    res.writeHead(200, { 'Content-Length': body.length });
    res.write(body.subarray(0, 5));
    setTimeout(() => res.socket?.destroy(), 5000);
    return;
  }
  res.writeHead(500);
  res.end();
}

beforeAll(async () => {
  ({ dir: root, cleanup } = tempDir('densetrain-dl-'));
  server = createServer((req, res) => {
    requests.push(req.url ?? '');
    handle(req.url ?? '', res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  cleanup();
});

let n = 0;
function freshDir(): string {
  const d = join(root, `d${n++}`);
  mkdirSync(d);
  return d;
}

async function downloadError(p: Promise<unknown>): Promise<DataError> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(DataError);
    expect((e as DataError).message).not.toContain('\n');
    return e as DataError;
  }
  throw new Error('expected the download to fail');
}

describe('downloadDataset (local server)', () => {
  it('downloads, verifies and saves the four files; progress is reported; the result loads', async () => {
    const dir = freshDir();
    const events: DownloadProgress[] = [];
    const r = await downloadDataset('mnist', { mirror: `${base}/ok`, dir, checksums: TABLE, onProgress: (p) => events.push(p) });
    expect(r.dir).toBe(dir);
    expect(r.files.map((f) => f.status)).toEqual(['downloaded', 'downloaded', 'downloaded', 'downloaded']);
    expect(readdirSync(dir).sort()).toEqual(Object.keys(FILES).sort()); // nothing else: no temp files
    for (const [name, body] of Object.entries(FILES)) expect(Buffer.compare(readFileSync(join(dir, name)), body)).toBe(0);
    for (const f of r.files) expect(f.sha256).toBe(TABLE[f.file]!.sha256);
    // Per file: start, progress..., done, in download order.
    const done = events.filter((e) => e.state === 'done');
    expect(done.map((e) => e.file)).toEqual([...DOWNLOAD_FILES]);
    for (const e of done) expect(e.received).toBe(TABLE[e.file]!.size);
    expect(events.filter((e) => e.state === 'start').length).toBe(4);
    const last = events.filter((e) => e.state === 'progress' && e.file === 'train-images-idx3-ubyte.gz').at(-1)!;
    expect(last.received).toBe(last.total);

    const ds = await loadDataset(dir, { env: {}, systemDataDir: null });
    expect(ds.train.count).toBe(30);
    expect(Array.from(ds.test.labels)).toEqual(Array.from(test.labels));

    // Again: verified files are kept, nothing is fetched.
    requests = [];
    const again = await downloadDataset('mnist', { mirror: `${base}/ok`, dir, checksums: TABLE });
    expect(again.files.map((f) => f.status)).toEqual(['present', 'present', 'present', 'present']);
    expect(requests).toEqual([]);
  });

  it('checksum mismatch: error names the file, expected and actual; no file is left', async () => {
    const dir = freshDir();
    const bad = { ...TABLE, 't10k-images-idx3-ubyte.gz': { sha256: 'ab'.repeat(32), size: TABLE['t10k-images-idx3-ubyte.gz']!.size } };
    const e = await downloadError(downloadDataset('mnist', { mirror: `${base}/ok`, dir, checksums: bad }));
    expect(e.message).toContain('t10k-images-idx3-ubyte.gz');
    expect(e.message).toContain(`checksum mismatch: expected sha256 ${'ab'.repeat(32)}, got ${TABLE['t10k-images-idx3-ubyte.gz']!.sha256}`);
    expect(e.message).toContain('nothing was saved');
    // The two label files before it were verified and kept; the bad one and any temp file are gone.
    expect(readdirSync(dir).sort()).toEqual(['t10k-labels-idx1-ubyte.gz', 'train-labels-idx1-ubyte.gz']);
  });

  it('HTTP 404: error names the status and URL; nothing is written', async () => {
    const dir = freshDir();
    const e = await downloadError(downloadDataset('fashion-mnist', { mirror: `${base}/404/`, dir, checksums: TABLE }));
    expect(e.message).toBe(
      `train-labels-idx1-ubyte.gz: download failed (nothing was saved): ${base}/404/train-labels-idx1-ubyte.gz: HTTP 404 Not Found`,
    );
    expect(readdirSync(dir)).toEqual([]);
  });

  it('server closing mid-body (with Content-Length): error, no partial file', async () => {
    const dir = freshDir();
    const e = await downloadError(downloadDataset('mnist', { mirror: `${base}/cut`, dir, checksums: TABLE }));
    expect(e.message).toMatch(/^train-labels-idx1-ubyte\.gz: download failed \(nothing was saved\): .*\/cut\/train-labels-idx1-ubyte\.gz: (download interrupted|incomplete)/);
    expect(readdirSync(dir)).toEqual([]);
  });

  it('server closing mid-body without Content-Length: caught by the size check, no partial file', async () => {
    const dir = freshDir();
    const e = await downloadError(downloadDataset('mnist', { mirror: `${base}/cutnolen`, dir, checksums: TABLE }));
    expect(e.message).toMatch(/download interrupted|incomplete: received \d+ bytes, expected \d+/);
    expect(readdirSync(dir)).toEqual([]);
  });

  it('a stalled server hits the idle timeout; no partial file', async () => {
    const dir = freshDir();
    const e = await downloadError(
      downloadDataset('mnist', { mirror: `${base}/stall`, dir, checksums: TABLE, idleTimeoutMs: 300 }),
    );
    expect(e.message).toMatch(/stall\/train-labels-idx1-ubyte\.gz: no data for 0\.3 s$/);
    expect(readdirSync(dir)).toEqual([]);
  });

  it('falls back to the next mirror; a failed attempt is reported', async () => {
    const dir = freshDir();
    const events: DownloadProgress[] = [];
    const r = await downloadDataset('mnist', {
      mirrors: [`${base}/half-ok/`, `${base}/ok/`],
      dir,
      checksums: TABLE,
      onProgress: (p) => events.push(p),
    });
    expect(r.files.map((f) => f.url)).toEqual([
      `${base}/half-ok/train-labels-idx1-ubyte.gz`,
      `${base}/half-ok/t10k-labels-idx1-ubyte.gz`,
      `${base}/ok/t10k-images-idx3-ubyte.gz`,
      `${base}/ok/train-images-idx3-ubyte.gz`,
    ]);
    expect(events.filter((e) => e.state === 'failed').map((e) => e.error)).toEqual(['HTTP 404 Not Found', 'HTTP 404 Not Found']);
  });

  it('a corrupt existing file is replaced by a verified download', async () => {
    const dir = freshDir();
    writeFileSync(join(dir, 'train-labels-idx1-ubyte.gz'), 'garbage');
    const r = await downloadDataset('mnist', { mirror: `${base}/ok`, dir, checksums: TABLE });
    expect(r.files[0]!.status).toBe('downloaded');
    expect(Buffer.compare(readFileSync(join(dir, 'train-labels-idx1-ubyte.gz')), FILES['train-labels-idx1-ubyte.gz']!)).toBe(0);
  });

  it('network error (connection refused) names the URL', async () => {
    const dir = freshDir();
    const probe = createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    const port = (probe.address() as AddressInfo).port;
    await new Promise<void>((resolve) => probe.close(() => resolve()));
    const e = await downloadError(downloadDataset('mnist', { mirror: `http://127.0.0.1:${port}/`, dir, checksums: TABLE }));
    expect(e.message).toMatch(new RegExp(`127\\.0\\.0\\.1:${port}/train-labels-idx1-ubyte\\.gz: network error: .*ECONNREFUSED`));
    expect(readdirSync(dir)).toEqual([]);
  });

  it('unknown dataset names and bad mirrors are errors before any request', async () => {
    requests = [];
    await expect(downloadDataset('mnist-sample', { dir: freshDir() })).rejects.toThrow(/nothing to download/);
    await expect(downloadDataset('cifar10', { dir: freshDir() })).rejects.toThrow(/unknown dataset 'cifar10': downloadable datasets are mnist, fashion-mnist/);
    await expect(downloadDataset('mnist', { dir: freshDir(), mirror: 'ftp://x/' })).rejects.toThrow(/--mirror: 'ftp:\/\/x\/' must be an http/);
    await expect(downloadDataset('mnist', { dir: freshDir(), mirror: 'not a url' })).rejects.toThrow(/is not a URL/);
    expect(requests).toEqual([]);
  });
});

describe('built-in checksum table', () => {
  it('has a size and a 64-hex sha256 for each of the four files of each dataset, and mirrors', () => {
    for (const ds of ['mnist', 'fashion-mnist'] as const) {
      expect(Object.keys(CHECKSUMS[ds]).sort()).toEqual([...DOWNLOAD_FILES].sort());
      for (const c of Object.values(CHECKSUMS[ds])) {
        expect(c.sha256).toMatch(/^[0-9a-f]{64}$/);
        expect(c.size).toBeGreaterThan(4000);
      }
      expect(MIRRORS[ds].length).toBeGreaterThan(0);
    }
    // Values as published by TensorFlow Datasets (url_checksums/mnist.txt, fashion_mnist.txt).
    expect(CHECKSUMS.mnist['train-images-idx3-ubyte.gz']).toEqual({
      size: 9912422,
      sha256: '440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609',
    });
    expect(CHECKSUMS['fashion-mnist']['t10k-labels-idx1-ubyte.gz']).toEqual({
      size: 5148,
      sha256: '67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5',
    });
  });
});

/**
 * A throw-away Redis server for the queue tests and the queue benchmark: Debian's redis-server
 * on 127.0.0.1 and a free port, nothing saved to disk (unless asked for an append-only file),
 * stopped by its user. Without redis-server the tests skip, unless DENSETRAIN_REQUIRE_REDIS=1
 * (CI) makes that a failure.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { createServer, createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const REDIS_BIN = '/usr/bin/redis-server';

export function redisAvailable(): boolean {
  const r = spawnSync(REDIS_BIN, ['--version'], { encoding: 'utf8' });
  return r.status === 0;
}

/** Skip the suite without redis-server, unless CI requires it. */
export function requireRedis(): boolean {
  const here = redisAvailable();
  if (!here && process.env['DENSETRAIN_REQUIRE_REDIS'] === '1') throw new Error(`DENSETRAIN_REQUIRE_REDIS=1 but ${REDIS_BIN} is not installed`);
  return here;
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

export interface RedisServer {
  port: number;
  /** The server's process id (changes with restart()). */
  pid(): number;
  url: string;
  /** The data folder (its append-only file, when asked for). */
  dir: string;
  stop(): Promise<void>;
  /** Stops and starts it again on the same port and folder (the append-only file survives). */
  restart(): Promise<void>;
}

function waitForPort(port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  return new Promise((resolve, reject) => {
    const attempt = () => {
      const socket = createConnection({ port, host: '127.0.0.1' });
      socket.once('connect', () => {
        socket.destroy();
        resolve();
      });
      socket.once('error', () => {
        socket.destroy();
        if (Date.now() > deadline) reject(new Error(`redis-server did not listen on ${port} within ${timeoutMs} ms`));
        else setTimeout(attempt, 50);
      });
    };
    attempt();
  });
}

export async function startRedis(options: { password?: string; appendOnly?: boolean } = {}): Promise<RedisServer> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'densetrain-redis-'));
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--dir', dir, '--appendonly', options.appendOnly ? 'yes' : 'no'];
  if (options.password) args.push('--requirepass', options.password);
  let child: ChildProcess;
  const launch = async () => {
    child = spawn(REDIS_BIN, args, { stdio: 'ignore' });
    await waitForPort(port, 10_000);
  };
  const stop = () =>
    new Promise<void>((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) return resolve();
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      child.once('exit', () => {
        clearTimeout(timer);
        resolve();
      });
      // SIGTERM: redis-server writes its append-only file and exits.
      child.kill('SIGTERM');
    });
  await launch();
  const auth = options.password ? `:${encodeURIComponent(options.password)}@` : '';
  return {
    port,
    dir,
    url: `redis://${auth}127.0.0.1:${port}`,
    pid: () => child.pid ?? -1,
    stop,
    async restart() {
      await stop();
      await launch();
    },
  };
}

/**
 * The `--queue` option: a Redis URL (redis:// or rediss:// for TLS) turned into connection
 * options for BullMQ and ioredis, and a form safe to print. The password appears only in the
 * connection options: never in what is shown, logged or written to a run folder.
 */
import { InputError } from '../input-error.js';

export interface QueueConnection {
  host: string;
  port: number;
  db: number;
  username?: string;
  password?: string;
  tls?: Record<string, never>;
}

export interface QueueTarget {
  connection: QueueConnection;
  /** The URL with the password replaced by ***: safe for logs, reports and tune.json. */
  display: string;
  /** Strings that must never be printed (the password), for redactSecrets(). */
  secrets: string[];
}

export class QueueUrlError extends InputError {
  override readonly name = 'QueueUrlError';
}

const FORM = 'redis://[user:password@]host:port[/db] or rediss://... for TLS';

/** Parses --queue; throws a QueueUrlError (exit 2) naming what is wrong, never echoing a password. */
export function parseQueueUrl(text: string, option = '--queue'): QueueTarget {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    // The text may hold a password: name the form, not the text.
    throw new QueueUrlError(`${option} is not a URL; expected ${FORM}`);
  }
  if (url.protocol !== 'redis:' && url.protocol !== 'rediss:') {
    throw new QueueUrlError(`${option} must start with redis:// or rediss://, got ${url.protocol}//; expected ${FORM}`);
  }
  if (url.hostname === '') throw new QueueUrlError(`${option} has no host; expected ${FORM}`);
  const port = url.port === '' ? 6379 : Number(url.port);
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new QueueUrlError(`${option} has an invalid port; expected ${FORM}`);
  const path = url.pathname.replace(/^\//, '');
  const db = path === '' ? 0 : Number(path);
  if (!/^\d*$/.test(path) || !Number.isInteger(db) || db < 0 || db > 15) {
    throw new QueueUrlError(`${option} database must be a number 0-15 after the port (/0), got /${path}`);
  }
  if (url.search !== '' || url.hash !== '') throw new QueueUrlError(`${option} takes no ?query or #fragment; expected ${FORM}`);
  const username = decodeURIComponent(url.username);
  const password = decodeURIComponent(url.password);
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  const connection: QueueConnection = { host, port, db };
  if (username !== '') connection.username = username;
  if (password !== '') connection.password = password;
  if (url.protocol === 'rediss:') connection.tls = {};
  const auth = username !== '' || password !== '' ? `${username}${password !== '' ? ':***' : ''}@` : '';
  const display = `${url.protocol}//${auth}${url.hostname}:${port}/${db}`;
  return { connection, display, secrets: password !== '' ? [password, url.password] : [] };
}

/** The text with every secret replaced by ***: error messages from Redis clients may quote them. */
export function redactSecrets(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const secret of secrets) if (secret !== '') out = out.split(secret).join('***');
  return out;
}

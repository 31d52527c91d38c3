/**
 * The queue's untrusted inputs, without Redis: the --queue URL (forms, errors that never echo a
 * password, the redacted display) and the job payload a worker receives (validated with the
 * config schema; the run folder must lie inside the experiment folder).
 */
import { describe, expect, it } from 'vitest';
import { DEFAULT_CONFIG } from '../src/train/defaults.js';
import { decodeDecision, parsePayload, PayloadError, PAYLOAD_VERSION } from '../src/experiments/queue-protocol.js';
import { parseQueueUrl, QueueUrlError, redactSecrets } from '../src/experiments/queue-url.js';

describe('--queue URL', () => {
  it('reads host, port, db, user, password and TLS', () => {
    expect(parseQueueUrl('redis://127.0.0.1:6390')).toEqual({
      connection: { host: '127.0.0.1', port: 6390, db: 0 },
      display: 'redis://127.0.0.1:6390/0',
      secrets: [],
    });
    const t = parseQueueUrl('rediss://trainer:p%40ss%3Aword@queue.example:6380/3');
    expect(t.connection).toEqual({ host: 'queue.example', port: 6380, db: 3, username: 'trainer', password: 'p@ss:word', tls: {} });
    expect(t.display).toBe('rediss://trainer:***@queue.example:6380/3');
    expect(t.display).not.toContain('p@ss');
    expect(parseQueueUrl('redis://:only-pass@h').connection).toMatchObject({ host: 'h', port: 6379, password: 'only-pass' });
    expect(parseQueueUrl('redis://[::1]:7000').connection.host).toBe('::1');
  });

  it.each([
    ['not a url', /is not a URL/],
    ['http://host:6379', /must start with redis:\/\/ or rediss:\/\//],
    ['redis://host:6379/99', /database must be a number 0-15/],
    ['redis://host:6379/x', /database must be a number 0-15/],
    ['redis://host:6379?password=x', /takes no \?query/],
    ['redis://host:99999', /not a URL|invalid port/],
  ])('refuses %s with a line naming the problem', (text, message) => {
    let error: unknown;
    try {
      parseQueueUrl(text);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(QueueUrlError);
    expect(error).toBeInstanceOf(RangeError); // exit code 2
    expect((error as Error).message).toMatch(message);
  });

  it('never echoes a password in its errors', () => {
    for (const text of ['redis://:s3cret-pw@host:6379/99', 'redis://user:s3cret-pw@', 'ftp://:s3cret-pw@host']) {
      expect(() => parseQueueUrl(text)).toThrow(QueueUrlError);
      try {
        parseQueueUrl(text);
      } catch (e) {
        expect((e as Error).message).not.toContain('s3cret-pw');
      }
    }
    expect(redactSecrets('WRONGPASS for s3cret-pw at s3cret-pw', ['s3cret-pw'])).toBe('WRONGPASS for *** at ***');
  });
});

describe('job payload', () => {
  const good = () => ({
    v: PAYLOAD_VERSION,
    experiment: { id: 'x0abc', dir: '/shared/exp' },
    trial: { id: 'lr=0.05', config: { ...DEFAULT_CONFIG }, runDir: '/shared/exp/lr-0.05' },
    decisionTimeoutMs: 0,
  });

  it('accepts a well-formed payload and returns the checked config', () => {
    const p = parsePayload(good());
    expect(p.trial.config).toEqual(DEFAULT_CONFIG);
    expect(p.trial.runDir).toBe('/shared/exp/lr-0.05');
  });

  const bad: [string, (p: ReturnType<typeof good>) => unknown, RegExp][] = [
    ['not an object', () => 'trial', /bad job payload: payload/],
    ['another version', (p) => ({ ...p, v: 2 }), /bad job payload: v /],
    ['an unknown key', (p) => ({ ...p, extra: 1 }), /bad job payload/],
    ['a relative experiment folder', (p) => ({ ...p, experiment: { ...p.experiment, dir: 'exp' } }), /experiment\.dir must be an absolute path/],
    ['an id with a colon', (p) => ({ ...p, trial: { ...p.trial, id: 'a:b' } }), /trial\.id must be/],
    ['a config with a bad value', (p) => ({ ...p, trial: { ...p.trial, config: { ...p.trial.config, lr: -1 } } }), /trial\.config\.lr /],
    ['a config with an unknown key', (p) => ({ ...p, trial: { ...p.trial, config: { ...p.trial.config, shell: 'rm -rf /' } } }), /trial\.config/],
    ['a run folder outside the experiment', (p) => ({ ...p, trial: { ...p.trial, runDir: '/etc/cron.d' } }), /not inside the experiment folder/],
    ['a run folder escaping with ..', (p) => ({ ...p, trial: { ...p.trial, runDir: '/shared/exp/../other' } }), /not inside the experiment folder/],
    ['the experiment folder itself', (p) => ({ ...p, trial: { ...p.trial, runDir: '/shared/exp/' } }), /not inside the experiment folder/],
    ['a huge decision timeout', (p) => ({ ...p, decisionTimeoutMs: 1e12 }), /decisionTimeoutMs/],
  ];
  it.each(bad)('refuses %s with a PayloadError naming the field', (_, make, message) => {
    let error: unknown;
    try {
      parsePayload(make(good()));
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(PayloadError);
    expect((error as Error).message).toMatch(message);
  });

  it('reads a stop answer, and treats anything else as continue', () => {
    expect(decodeDecision(JSON.stringify({ stop: true, reason: 'pruned at rung 1' }))).toEqual({ stop: true, reason: 'pruned at rung 1' });
    expect(decodeDecision(null)).toEqual({ stop: false });
    expect(decodeDecision('not json')).toEqual({ stop: false });
    expect(decodeDecision('{"stop":"yes"}')).toEqual({ stop: false });
  });
});

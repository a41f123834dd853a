import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, parseConfig } from '../../lib/config';
import { createKeyring } from '../../lib/crypto';
import { describeDatabase } from '../../lib/db/client';
import { DEV_SECRETS_FILE, withDevSecrets } from '../../lib/dev-secrets';
import { TEST_ADMIN_KEY, TEST_MASTER_KEY } from '../support/services';

function problems(env: Record<string, string>): string[] {
  try {
    parseConfig(env);
  } catch (error) {
    if (error instanceof ConfigError) return error.problems;
    throw error;
  }
  throw new Error('expected a ConfigError');
}

describe('parseConfig', () => {
  it('runs on embedded defaults with nothing set', () => {
    const config = parseConfig({});
    expect(config).toMatchObject({
      env: 'development',
      port: 3000,
      dataDir: '.data',
      database: {
        driver: 'pglite',
        url: undefined,
        namedStatements: true,
        migrateOnStart: true,
        queryTimeoutMs: 30_000,
      },
      redis: { mode: 'memory' },
      telegram: { apiRoot: 'https://api.telegram.org', webhookBaseUrl: undefined },
      anthropic: { baseUrl: 'https://api.anthropic.com' },
      jobs: { engine: 'embedded', appId: 'openclaw-platform' },
      corsOrigins: [],
      trustProxyHops: 1,
    });
  });

  it('reads a full production environment', () => {
    const config = parseConfig({
      NODE_ENV: 'production',
      PORT: '8080',
      DATABASE_URL: 'postgres://u:p@db.example.com:5432/app',
      REDIS_URL: 'rediss://:p@redis.example.com:6380',
      ENCRYPTION_MASTER_KEY: TEST_MASTER_KEY,
      ADMIN_API_KEY: TEST_ADMIN_KEY,
      CORS_ORIGIN: 'https://app.example.com, https://admin.example.com',
      TELEGRAM_WEBHOOK_BASE_URL: 'https://bots.example.com',
      TELEGRAM_API_ROOT: 'http://127.0.0.1:8081',
      ANTHROPIC_BASE_URL: 'http://127.0.0.1:8082',
      INNGEST_EVENT_KEY: 'evt-key',
      INNGEST_SIGNING_KEY: 'signkey-prod-0123abcd',
      MIGRATE_ON_START: 'false',
      DATABASE_NAMED_STATEMENTS: 'false',
      DATABASE_QUERY_TIMEOUT_MS: '15000',
    });
    expect(config).toMatchObject({
      isProduction: true,
      port: 8080,
      database: { driver: 'pg', namedStatements: false, migrateOnStart: false, queryTimeoutMs: 15_000 },
      redis: { mode: 'tcp', url: 'rediss://:p@redis.example.com:6380' },
      corsOrigins: ['https://app.example.com', 'https://admin.example.com'],
      telegram: { apiRoot: 'http://127.0.0.1:8081', webhookBaseUrl: 'https://bots.example.com' },
      anthropic: { baseUrl: 'http://127.0.0.1:8082' },
      jobs: { engine: 'inngest', eventKey: 'evt-key', signingKey: 'signkey-prod-0123abcd' },
    });
  });

  it('picks the driver from DATABASE_URL', () => {
    expect(
      parseConfig({ DATABASE_URL: 'postgresql://u@ep-cool-1.us-east-2.aws.neon.tech/db' }).database.driver,
    ).toBe('neon');
    expect(parseConfig({ DATABASE_URL: 'postgres://u@127.0.0.1/db' }).database.driver).toBe('pg');
  });

  it('prefers Upstash REST over REDIS_URL when both are set', () => {
    const config = parseConfig({
      REDIS_URL: 'redis://127.0.0.1:6379',
      UPSTASH_REDIS_REST_URL: 'https://eu1.upstash.io',
      UPSTASH_REDIS_REST_TOKEN: 'tok',
    });
    expect(config.redis).toEqual({ mode: 'upstash', url: 'https://eu1.upstash.io', token: 'tok' });
  });

  it("takes a master key as 64 hex digits (Heroku's secret generator), the same key as its base64", () => {
    const bytes = randomBytes(32);
    const hex = parseConfig({ ENCRYPTION_MASTER_KEY: bytes.toString('hex') });
    const base64 = parseConfig({ ENCRYPTION_MASTER_KEY: bytes.toString('base64') });
    const keyOf = (config: typeof hex) => createKeyring(config.secrets.encryptionMasterKey ?? '').current;
    expect(keyOf(hex).key.equals(bytes)).toBe(true);
    expect(keyOf(hex)).toEqual(keyOf(base64));
  });

  it("names the database without its URL's credentials, whatever the URL's shape", () => {
    const config = parseConfig({ DATABASE_URL: 'postgres://app:S3cret@db.example.com:5432/main' });
    expect(describeDatabase(config)).toBe(
      'the database at DATABASE_URL (postgres://db.example.com:5432/main, credentials not shown)',
    );
    const opaque = {
      ...config,
      database: { ...config.database, url: 'postgres:/app:S3cret@db.example.com/main' },
    };
    expect(describeDatabase(opaque)).toBe('the database at DATABASE_URL (postgres:, credentials not shown)');
  });

  it('treats empty variables as unset', () => {
    expect(parseConfig({ DATABASE_URL: '', PORT: ' ' }).database.driver).toBe('pglite');
  });

  describe.each([
    [{ ENCRYPTION_MASTER_KEY: 'c2hvcnQ=' }, 'ENCRYPTION_MASTER_KEY: expected 32 bytes encoded as base64'],
    [
      { ENCRYPTION_MASTER_KEY: 'not base64 at all!' },
      'ENCRYPTION_MASTER_KEY: expected 32 bytes encoded as base64',
    ],
    [{ PORT: 'eighty' }, 'PORT: '],
    [{ PORT: '70000' }, 'PORT: '],
    [{ DATABASE_URL: 'mysql://localhost/db' }, 'DATABASE_URL: expected a PostgreSQL URL'],
    [{ DATABASE_URL: 'postgres:/postgres:S3cret@127.0.0.1/db' }, 'DATABASE_URL: expected a PostgreSQL URL'],
    [{ DATABASE_URL: 'postgres:postgres:S3cret@127.0.0.1/db' }, 'DATABASE_URL: expected a PostgreSQL URL'],
    [{ REDIS_URL: 'redis:S3cret@127.0.0.1' }, 'REDIS_URL: expected a Redis URL'],
    [{ REDIS_URL: 'http://localhost' }, 'REDIS_URL: expected a Redis URL'],
    [{ NODE_ENV: 'staging' }, 'NODE_ENV: '],
    [{ LOG_LEVEL: 'loud' }, 'LOG_LEVEL: '],
    [{ TRUST_PROXY_HOPS: '-1' }, 'TRUST_PROXY_HOPS: '],
    [{ TRUST_PROXY_HOPS: 'one' }, 'TRUST_PROXY_HOPS: '],
    [{ ADMIN_API_KEY: 'short' }, 'ADMIN_API_KEY: expected at least 32 characters'],
    [
      { TELEGRAM_WEBHOOK_BASE_URL: 'http://bots.example.com' },
      'TELEGRAM_WEBHOOK_BASE_URL: expected a public https URL',
    ],
    [{ TELEGRAM_API_ROOT: 'api.telegram.org' }, 'TELEGRAM_API_ROOT: expected an http(s) URL'],
    [{ ANTHROPIC_BASE_URL: 'ftp://x' }, 'ANTHROPIC_BASE_URL: expected an http(s) URL'],
    [{ CORS_ORIGIN: 'https://ok.example.com,nonsense' }, 'CORS_ORIGIN'],
    [{ UPSTASH_REDIS_REST_URL: 'https://eu1.upstash.io' }, 'UPSTASH_REDIS_REST_TOKEN: '],
    [{ JOBS_ENGINE: 'inngest' }, 'INNGEST_EVENT_KEY: required when JOBS_ENGINE=inngest'],
    [{ JOBS_ENGINE: 'bullmq' }, 'JOBS_ENGINE: '],
    [{ MIGRATE_ON_START: 'maybe' }, 'MIGRATE_ON_START: expected true or false'],
    [{ DATABASE_NAMED_STATEMENTS: 'sometimes' }, 'DATABASE_NAMED_STATEMENTS: expected true or false'],
    [{ NODE_ENV: 'production' }, 'ENCRYPTION_MASTER_KEY: required when NODE_ENV=production'],
    [{ NODE_ENV: 'production' }, 'ADMIN_API_KEY: required when NODE_ENV=production'],
    [
      {
        NODE_ENV: 'production',
        ENCRYPTION_MASTER_KEY: TEST_MASTER_KEY,
        ADMIN_API_KEY: TEST_ADMIN_KEY,
        INNGEST_EVENT_KEY: 'k',
      },
      'INNGEST_SIGNING_KEY: required in production',
    ],
    [{ PORT: '0x1000' }, 'PORT: expected a whole number from 1 to 65535 (got "0x1000")'],
    [{ PORT: '1e3' }, 'PORT: expected a whole number'],
    [{ DATABASE_POOL_SIZE: '10.0' }, 'DATABASE_POOL_SIZE: expected a whole number'],
    [{ DATABASE_QUERY_TIMEOUT_MS: '500' }, 'DATABASE_QUERY_TIMEOUT_MS: expected at least 1000'],
    [{ DATABASE_QUERY_TIMEOUT_MS: '30s' }, 'DATABASE_QUERY_TIMEOUT_MS: expected a whole number'],
    [{ JOBS_CONCURRENCY: '0' }, 'JOBS_CONCURRENCY: expected at least 1'],
    [
      { TELEGRAM_WEBHOOK_BASE_URL: 'https://bots.example.com/?via=heroku' },
      'TELEGRAM_WEBHOOK_BASE_URL: expected a public https URL without ?query, #fragment',
    ],
    [
      { TELEGRAM_WEBHOOK_BASE_URL: 'https://bots.example.com/#' },
      'TELEGRAM_WEBHOOK_BASE_URL: expected a public https URL without ?query, #fragment',
    ],
    [
      { TELEGRAM_WEBHOOK_BASE_URL: 'https://user:pw@bots.example.com' },
      'TELEGRAM_WEBHOOK_BASE_URL: expected a public https URL without',
    ],
    [{ CORS_ORIGIN: 'https://app.example.com/dashboard' }, 'CORS_ORIGIN: expected * or origins'],
    [{ CORS_ORIGIN: 'https://app.example.com?x' }, 'CORS_ORIGIN: expected * or origins'],
    [
      { ENCRYPTION_MASTER_KEY: TEST_MASTER_KEY, ENCRYPTION_MASTER_KEY_PREVIOUS: TEST_MASTER_KEY },
      'ENCRYPTION_MASTER_KEY_PREVIOUS: the same key as ENCRYPTION_MASTER_KEY',
    ],
    [
      // The same 32 bytes in the url-safe alphabet.
      {
        ENCRYPTION_MASTER_KEY: Buffer.alloc(32, 0xfb).toString('base64'),
        ENCRYPTION_MASTER_KEY_PREVIOUS: Buffer.alloc(32, 0xfb).toString('base64url'),
      },
      'ENCRYPTION_MASTER_KEY_PREVIOUS: the same key',
    ],
    [
      // The same 32 bytes as hex (Heroku's generator) and as base64.
      {
        ENCRYPTION_MASTER_KEY: Buffer.alloc(32, 0xa7).toString('hex'),
        ENCRYPTION_MASTER_KEY_PREVIOUS: Buffer.alloc(32, 0xa7).toString('base64'),
      },
      'ENCRYPTION_MASTER_KEY_PREVIOUS: the same key',
    ],
    [{ ENCRYPTION_MASTER_KEY: 'ab'.repeat(31) }, 'ENCRYPTION_MASTER_KEY: expected 32 bytes'],
    [
      { INNGEST_SIGNING_KEY_FALLBACK: 'signkey-prod-00ff' },
      'INNGEST_SIGNING_KEY_FALLBACK: set only with INNGEST_SIGNING_KEY',
    ],
  ])('rejects %j', (env, expected) => {
    it(`with a line starting "${expected}"`, () => {
      expect(problems(env).some((line) => line.startsWith(expected))).toBe(true);
      expect(problems(env).join('\n')).not.toContain('S3cret');
    });
  });

  it('spells CORS origins the way browsers send them, and keeps a webhook base URL path', () => {
    const config = parseConfig({
      CORS_ORIGIN: 'HTTPS://App.Example.com/, http://localhost:5173, *',
      TELEGRAM_WEBHOOK_BASE_URL: 'https://bots.example.com/platform/',
    });
    expect(config.corsOrigins).toEqual(['https://app.example.com', 'http://localhost:5173', '*']);
    expect(config.telegram.webhookBaseUrl).toBe('https://bots.example.com/platform/');
  });

  it('reports the checks between variables with the others, not only once those are fixed', () => {
    const lines = problems({ NODE_ENV: 'production', PORT: '0x50', JOBS_CONCURRENCY: 'many' });
    expect(lines.map((line) => line.split(':')[0])).toEqual([
      'PORT',
      'JOBS_CONCURRENCY',
      'ENCRYPTION_MASTER_KEY',
      'ADMIN_API_KEY',
    ]);
  });

  it('reports every problem at once, one line each, without echoing secrets', () => {
    const lines = problems({ PORT: 'x', ENCRYPTION_MASTER_KEY: 'super-secret-value', LOG_LEVEL: 'loud' });
    expect(lines).toHaveLength(3);
    expect(lines.join('\n')).not.toContain('super-secret-value');
    expect(lines.find((line) => line.startsWith('PORT'))).toContain('(got "x")');
  });
});

describe('development secrets', () => {
  it('are generated once into the data dir and reused', () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'oc-secrets-'));
    const first = withDevSecrets(parseConfig({ DATA_DIR: dataDir }));
    expect(first.generatedAdminKey).toMatch(/^oc_admin_/);
    expect(Buffer.from(first.config.secrets.encryptionMasterKey, 'base64')).toHaveLength(32);
    const file = join(dataDir, DEV_SECRETS_FILE);
    expect(statSync(file).mode & 0o777).toBe(0o600);

    const second = withDevSecrets(parseConfig({ DATA_DIR: dataDir }));
    expect(second.config.secrets).toEqual(first.config.secrets);
    expect(JSON.parse(readFileSync(file, 'utf8')).adminApiKey).toBe(first.generatedAdminKey);
  });

  it('do not override keys that are set, and the admin key is not printed then', () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'oc-secrets-'));
    const loaded = withDevSecrets(parseConfig({ DATA_DIR: dataDir, ADMIN_API_KEY: TEST_ADMIN_KEY }));
    expect(loaded.config.secrets.adminApiKey).toBe(TEST_ADMIN_KEY);
    expect(loaded.generatedAdminKey).toBeUndefined();
  });
});

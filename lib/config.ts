import { z } from 'zod';
import { decodeMasterKey } from './crypto';
import { DEFAULT_MODELS } from './models';

/**
 * Every environment variable the platform reads, in one schema. `parseConfig` never touches the
 * file system; `withDevSecrets` (lib/dev-secrets.ts) adds the generated development secrets.
 */

const optionalString = z
  .string()
  .trim()
  .transform((value) => (value === '' ? undefined : value))
  .optional();

const booleanFlag = z
  .enum(['true', 'false', '1', '0', 'yes', 'no'], { error: 'expected true or false' })
  .transform((value) => value === 'true' || value === '1' || value === 'yes');

/**
 * Whether a URL writes out `scheme://`. Without it (`postgres:user:pw@host/db`) URL parsing takes the
 * whole rest, credentials and all, for a path, and there is no host to connect to.
 */
export function hasAuthority(url: string): boolean {
  return /^[a-z][a-z0-9+.-]*:\/\//i.test(url);
}

function urlWithProtocols(protocols: readonly string[], what: string) {
  return z
    .string()
    .trim()
    .refine(
      (value) => {
        if (!hasAuthority(value)) return false;
        try {
          return protocols.includes(new URL(value).protocol);
        } catch {
          return false;
        }
      },
      { error: `expected ${what} (${protocols.map((p) => `${p}//`).join(' or ')})` },
    );
}

const httpUrl = urlWithProtocols(['http:', 'https:'], 'an http(s) URL');

/** Digits only: `z.coerce.number()` would take `0x1000`, `1e3` or `12.0` for a port or a count. */
function wholeNumber(min: number, max: number) {
  return z
    .string()
    .trim()
    .regex(/^\d+$/, { error: `expected a whole number from ${min} to ${max}` })
    .transform(Number)
    .pipe(
      z
        .number()
        .min(min, { error: `expected at least ${min}` })
        .max(max, { error: `expected at most ${max}` }),
    );
}

function urlOrUndefined(value: string): URL | undefined {
  try {
    return new URL(value);
  } catch {
    return undefined;
  }
}

/** A URL Telegram can call as given: a query or fragment would be cut from the path we append. */
const webhookBaseUrl = z
  .string()
  .trim()
  .refine(
    (value) => {
      const url = urlOrUndefined(value);
      return (
        url?.protocol === 'https:' && !url.search && !value.includes('#') && !url.username && !url.password
      );
    },
    { error: 'expected a public https URL without ?query, #fragment or user:password@' },
  );

/**
 * A browser's Origin header is scheme://host[:port], lower-case, without a path: a trailing slash or
 * capitals are spelled the browser's way; a path, query or fragment is refused (it never matches).
 */
const corsOrigin = z
  .string()
  .refine(
    (value) => {
      if (value === '*') return true;
      const url = urlOrUndefined(value);
      return (
        (url?.protocol === 'http:' || url?.protocol === 'https:') &&
        url.pathname === '/' &&
        !url.search &&
        !value.includes('#') &&
        !url.username &&
        !url.password
      );
    },
    { error: 'expected * or origins (http(s)://host[:port]) without a path, query or fragment' },
  )
  .transform((value) => (value === '*' ? value : new URL(value).origin));

/** `a, b,,c` as `['a', 'b', 'c']`. */
const commaList = z
  .string()
  .trim()
  .transform((value) =>
    value
      .split(',')
      .map((item) => item.trim())
      .filter(Boolean),
  );

const inngestSigningKey = z
  .string()
  .trim()
  .regex(/^signkey-[a-z]+-[0-9a-f]+$/i, { error: 'expected an Inngest signing key (signkey-<env>-<hex>)' });

/** 32 bytes, base64 (standard or url-safe alphabet). */
export const MasterKeySchema = z
  .string()
  .trim()
  .refine((value) => decodeMasterKey(value) !== undefined, {
    error:
      'expected 32 bytes encoded as base64 or as 64 hex digits (generate one with: openssl rand -base64 32)',
  });

export const EnvSchema = z.object({
  NODE_ENV: z.enum(['development', 'test', 'production']).default('development'),
  PORT: wholeNumber(1, 65535).default(3000),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  DATA_DIR: z.string().trim().min(1).default('.data'),

  DATABASE_URL: urlWithProtocols(['postgres:', 'postgresql:'], 'a PostgreSQL URL').optional(),
  DATABASE_POOL_SIZE: wholeNumber(1, 100).default(10),
  DATABASE_QUERY_TIMEOUT_MS: wholeNumber(1_000, 600_000).default(30_000),
  DATABASE_NAMED_STATEMENTS: booleanFlag.default(true),
  MIGRATE_ON_START: booleanFlag.default(true),
  ADMIN_RATE_LIMIT_PER_HOUR: wholeNumber(1, 100_000_000).default(10_000),
  TRUST_PROXY_HOPS: wholeNumber(0, 10).default(1),
  REDIS_URL: urlWithProtocols(['redis:', 'rediss:'], 'a Redis URL').optional(),
  REDIS_TLS_VERIFY: booleanFlag.default(true),
  UPSTASH_REDIS_REST_URL: urlWithProtocols(['https:', 'http:'], 'the Upstash REST URL').optional(),
  UPSTASH_REDIS_REST_TOKEN: optionalString,

  ENCRYPTION_MASTER_KEY: MasterKeySchema.optional(),
  ENCRYPTION_MASTER_KEY_PREVIOUS: MasterKeySchema.optional(),
  ALLOWED_MODELS: commaList
    .pipe(
      z
        .array(z.string().regex(/^claude-[a-z0-9.-]+$/, { error: 'expected Claude model ids (claude-...)' }))
        .min(1, { error: 'expected at least one model id' }),
    )
    .default(Object.values(DEFAULT_MODELS)),
  ADMIN_API_KEY: z.string().trim().min(32, { error: 'expected at least 32 characters' }).optional(),

  CORS_ORIGIN: commaList.pipe(z.array(corsOrigin)).default([]),

  TELEGRAM_WEBHOOK_BASE_URL: webhookBaseUrl.optional(),
  TELEGRAM_API_ROOT: httpUrl.default('https://api.telegram.org'),
  ANTHROPIC_BASE_URL: httpUrl.default('https://api.anthropic.com'),

  JOBS_ENGINE: z.enum(['embedded', 'inngest']).optional(),
  JOBS_CONCURRENCY: wholeNumber(1, 1000).default(128),
  JOBS_HISTORY_DAYS: wholeNumber(1, 3650).default(7),
  INNGEST_EVENT_KEY: optionalString,
  INNGEST_SIGNING_KEY: inngestSigningKey.optional(),
  INNGEST_SIGNING_KEY_FALLBACK: inngestSigningKey.optional(),
  INNGEST_BASE_URL: httpUrl.optional(),
  INNGEST_SERVE_ORIGIN: httpUrl.optional(),
  INNGEST_APP_ID: z
    .string()
    .trim()
    .regex(/^[a-z0-9-]+$/, { error: 'expected lower-case letters, digits and dashes' })
    .default('openclaw-platform'),

  WEBHOOK_ALLOW_PRIVATE_TARGETS: booleanFlag.optional(),
});

type RawEnv = Record<string, string | undefined>;

/** The jobs engine: JOBS_ENGINE, else Inngest when INNGEST_EVENT_KEY is set. */
function engineOf<Engine extends string>(env: {
  JOBS_ENGINE?: Engine | undefined;
  INNGEST_EVENT_KEY?: string | undefined;
}): Engine | JobsEngine {
  return env.JOBS_ENGINE ?? (env.INNGEST_EVENT_KEY ? 'inngest' : 'embedded');
}

/**
 * Checks between variables, on the raw values: run beside the schema rather than after it (a zod
 * refinement runs only once every single variable parsed), so one start reports every problem.
 */
function crossVariableProblems(env: RawEnv): string[] {
  const problems: string[] = [];
  if (Boolean(env.UPSTASH_REDIS_REST_URL) !== Boolean(env.UPSTASH_REDIS_REST_TOKEN)) {
    problems.push(
      `${env.UPSTASH_REDIS_REST_URL ? 'UPSTASH_REDIS_REST_TOKEN' : 'UPSTASH_REDIS_REST_URL'}: ` +
        'UPSTASH_REDIS_REST_URL and UPSTASH_REDIS_REST_TOKEN must be set together',
    );
  }
  const engine = engineOf(env);
  if (engine === 'inngest') {
    if (!env.INNGEST_EVENT_KEY && !env.INNGEST_BASE_URL) {
      problems.push(
        'INNGEST_EVENT_KEY: required when JOBS_ENGINE=inngest (or set INNGEST_BASE_URL to a self-hosted server)',
      );
    }
    if (env.NODE_ENV === 'production' && !env.INNGEST_SIGNING_KEY) {
      problems.push('INNGEST_SIGNING_KEY: required in production when JOBS_ENGINE=inngest');
    }
  }
  if (env.INNGEST_SIGNING_KEY_FALLBACK && !env.INNGEST_SIGNING_KEY) {
    problems.push(
      'INNGEST_SIGNING_KEY_FALLBACK: set only with INNGEST_SIGNING_KEY (it is the key being rotated out)',
    );
  }
  if (env.NODE_ENV === 'production') {
    for (const name of ['ENCRYPTION_MASTER_KEY', 'ADMIN_API_KEY']) {
      if (!env[name]) problems.push(`${name}: required when NODE_ENV=production`);
    }
  }
  const current = MasterKeySchema.safeParse(env.ENCRYPTION_MASTER_KEY);
  const previous = MasterKeySchema.safeParse(env.ENCRYPTION_MASTER_KEY_PREVIOUS);
  if (
    current.success &&
    previous.success &&
    decodeMasterKey(current.data)?.equals(decodeMasterKey(previous.data) ?? Buffer.alloc(0))
  ) {
    problems.push(
      'ENCRYPTION_MASTER_KEY_PREVIOUS: the same key as ENCRYPTION_MASTER_KEY; set it to the old key ' +
        'while rotating (npm run rotate-master-key), otherwise unset it',
    );
  }
  return problems;
}

export type Env = z.infer<typeof EnvSchema>;

export type DatabaseDriver = 'pglite' | 'pg' | 'neon';
export type RedisMode = 'memory' | 'tcp' | 'upstash';
export type JobsEngine = 'embedded' | 'inngest';

export interface Config {
  env: Env['NODE_ENV'];
  isProduction: boolean;
  port: number;
  logLevel: Env['LOG_LEVEL'];
  dataDir: string;
  database: {
    driver: DatabaseDriver;
    url: string | undefined;
    poolSize: number;
    /** pg and Neon: a query unanswered this long fails (503) and its connection is closed. */
    queryTimeoutMs: number;
    /** pg driver: send data statements as named prepared statements (off behind a transaction pooler). */
    namedStatements: boolean;
    migrateOnStart: boolean;
  };
  redis:
    | { mode: 'memory' }
    /** `verifyTls` (default true): a `rediss://` server's certificate is checked; Heroku Redis's is self-signed. */
    | { mode: 'tcp'; url: string; verifyTls?: boolean }
    | { mode: 'upstash'; url: string; token: string };
  secrets: {
    /** Base64, 32 bytes. Undefined only before development secrets are filled in. */
    encryptionMasterKey: string | undefined;
    encryptionMasterKeyPrevious: string | undefined;
    adminApiKey: string | undefined;
  };
  corsOrigins: string[];
  /**
   * How many proxies in front of the app append to X-Forwarded-For (Heroku's router: 1): the
   * client's address is that many entries from the right; what comes before, the client wrote.
   */
  trustProxyHops: number;
  /** Admin API requests per hour (all admin calls share it). */
  adminRateLimitPerHour: number;
  /** Claude models agents may use; the first Sonnet is the default. */
  allowedModels: string[];
  telegram: { apiRoot: string; webhookBaseUrl: string | undefined };
  anthropic: { baseUrl: string };
  jobs: {
    engine: JobsEngine;
    appId: string;
    eventKey: string | undefined;
    signingKey: string | undefined;
    signingKeyFallback: string | undefined;
    baseUrl: string | undefined;
    serveOrigin: string | undefined;
    /** Embedded engine: work items (steps, timers) one worker process runs at once. */
    concurrency: number;
    /** Embedded engine: ended runs and their events are deleted after this many days. */
    historyDays: number;
  };
  webhooks: {
    /** Deliver customer webhooks to loopback/private addresses and over http (development, tests). */
    allowPrivateTargets: boolean;
  };
}

/** A resolved configuration whose secrets are present (what the running platform uses). */
export type ReadyConfig = Config & {
  secrets: Config['secrets'] & { encryptionMasterKey: string; adminApiKey: string };
};

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid configuration:\n${problems.map((problem) => `  - ${problem}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

/** Neon's serverless driver speaks to Neon over WebSockets; everything else uses `pg`. */
export function databaseDriverFor(url: string | undefined): DatabaseDriver {
  if (!url) return 'pglite';
  const host = new URL(url).hostname;
  return host.endsWith('.neon.tech') || host.endsWith('.neon.build') ? 'neon' : 'pg';
}

/** Parses the environment. Throws `ConfigError` with one line per problem, each naming its variable. */
export function parseConfig(source: Record<string, string | undefined>): Config {
  // An empty variable counts as unset: Heroku config and shell exports often leave them blank.
  const cleaned = Object.fromEntries(
    Object.entries(source).filter(([, value]) => value !== undefined && value.trim() !== ''),
  );
  const result = EnvSchema.safeParse(cleaned);
  const problems = [
    ...(result.error?.issues ?? []).map((issue) => {
      const name = String(issue.path[0] ?? 'environment');
      const got = name in cleaned && !/KEY|TOKEN|SECRET|URL/.test(name) ? ` (got "${cleaned[name]}")` : '';
      return `${name}: ${issue.message}${got}`;
    }),
    ...crossVariableProblems(cleaned),
  ];
  if (problems.length > 0 || !result.success) throw new ConfigError(problems);
  const env = result.data;
  return {
    env: env.NODE_ENV,
    isProduction: env.NODE_ENV === 'production',
    port: env.PORT,
    logLevel: env.LOG_LEVEL,
    dataDir: env.DATA_DIR,
    database: {
      driver: databaseDriverFor(env.DATABASE_URL),
      url: env.DATABASE_URL,
      poolSize: env.DATABASE_POOL_SIZE,
      queryTimeoutMs: env.DATABASE_QUERY_TIMEOUT_MS,
      namedStatements: env.DATABASE_NAMED_STATEMENTS,
      migrateOnStart: env.MIGRATE_ON_START,
    },
    redis:
      env.UPSTASH_REDIS_REST_URL && env.UPSTASH_REDIS_REST_TOKEN
        ? { mode: 'upstash', url: env.UPSTASH_REDIS_REST_URL, token: env.UPSTASH_REDIS_REST_TOKEN }
        : env.REDIS_URL
          ? { mode: 'tcp', url: env.REDIS_URL, verifyTls: env.REDIS_TLS_VERIFY }
          : { mode: 'memory' },
    secrets: {
      encryptionMasterKey: env.ENCRYPTION_MASTER_KEY,
      encryptionMasterKeyPrevious: env.ENCRYPTION_MASTER_KEY_PREVIOUS,
      adminApiKey: env.ADMIN_API_KEY,
    },
    corsOrigins: env.CORS_ORIGIN,
    trustProxyHops: env.TRUST_PROXY_HOPS,
    adminRateLimitPerHour: env.ADMIN_RATE_LIMIT_PER_HOUR,
    allowedModels: env.ALLOWED_MODELS,
    telegram: { apiRoot: env.TELEGRAM_API_ROOT, webhookBaseUrl: env.TELEGRAM_WEBHOOK_BASE_URL },
    anthropic: { baseUrl: env.ANTHROPIC_BASE_URL },
    jobs: {
      engine: engineOf(env),
      appId: env.INNGEST_APP_ID,
      eventKey: env.INNGEST_EVENT_KEY,
      signingKey: env.INNGEST_SIGNING_KEY,
      signingKeyFallback: env.INNGEST_SIGNING_KEY_FALLBACK,
      baseUrl: env.INNGEST_BASE_URL,
      serveOrigin: env.INNGEST_SERVE_ORIGIN,
      concurrency: env.JOBS_CONCURRENCY,
      historyDays: env.JOBS_HISTORY_DAYS,
    },
    webhooks: {
      allowPrivateTargets: env.WEBHOOK_ALLOW_PRIVATE_TARGETS ?? env.NODE_ENV !== 'production',
    },
  };
}

import { Redis as UpstashRedis } from '@upstash/redis';
import { Redis as IORedis } from 'ioredis';
import IORedisMock from 'ioredis-mock';
import type { Config, RedisMode } from './config';
import { withTimeout } from './timeout';

/** The Redis connection the platform holds, whatever runs it; rate limiting builds on it. */
export interface RedisHandle {
  mode: RedisMode;
  /** Resolves when Redis answers PING within `timeoutMs`; memory mode always does. */
  ping(timeoutMs?: number): Promise<void>;
  /** The TCP client (tcp mode), for the ratelimit requester. */
  tcp: IORedis | undefined;
  /**
   * The in-process store (memory mode): ioredis-mock, which runs the ratelimit Lua scripts, so the
   * code path is the one of TCP mode. Handles in one process share its data, as clients of one Redis
   * do; each is one client, disconnected on close.
   */
  memory: IORedis | undefined;
  /** The REST client (upstash mode). */
  upstash: UpstashRedis | undefined;
  close(): Promise<void>;
}

export function createRedis(config: Pick<Config, 'redis'>): RedisHandle {
  const redis = config.redis;
  if (redis.mode === 'tcp') {
    const client = new IORedis(redis.url, {
      lazyConnect: true,
      // ioredis turns TLS on for rediss:// itself; these options only say whether to check the
      // certificate (Heroku Redis presents a self-signed one: REDIS_TLS_VERIFY=false).
      ...(redis.url.startsWith('rediss:') && redis.verifyTls === false
        ? { tls: { rejectUnauthorized: false } }
        : {}),
      // A command waits through at most one reconnect, then fails; callers bound the wait with their
      // own timeout and decide open or closed (rate limits fail open, see lib/ratelimit/limiter.ts).
      enableOfflineQueue: true,
      maxRetriesPerRequest: 1,
      connectTimeout: 2_000,
      retryStrategy: (times) => Math.min(times * 200, 2_000),
    });
    // A failed command says only that its retries ran out; the connection's own error (a refused
    // port, a certificate the client does not trust) is kept to say why.
    let connectionError: Error | undefined;
    client.on('error', (error: Error) => {
      connectionError = error;
    });
    client.on('ready', () => {
      connectionError = undefined;
    });
    const connected = client.connect().catch(() => {});
    return {
      mode: 'tcp',
      tcp: client,
      memory: undefined,
      upstash: undefined,
      async ping(timeoutMs = 1_000) {
        try {
          await withTimeout(
            connected.then(() => client.ping()),
            timeoutMs,
            `Redis did not answer within ${timeoutMs} ms`,
          );
        } catch (error) {
          if (!connectionError) throw error;
          throw new Error(`${(error as Error).message} (connection: ${connectionError.message})`, {
            cause: error,
          });
        }
      },
      async close() {
        client.disconnect();
      },
    };
  }
  if (redis.mode === 'upstash') {
    const client = new UpstashRedis({ url: redis.url, token: redis.token, retry: false });
    return {
      mode: 'upstash',
      tcp: undefined,
      memory: undefined,
      upstash: client,
      async ping(timeoutMs = 2_000) {
        await withTimeout(client.ping(), timeoutMs, `Upstash Redis did not answer within ${timeoutMs} ms`);
      },
      async close() {},
    };
  }
  const memory = new IORedisMock();
  return {
    mode: 'memory',
    tcp: undefined,
    memory,
    upstash: undefined,
    async ping() {},
    async close() {
      memory.disconnect();
    },
  };
}

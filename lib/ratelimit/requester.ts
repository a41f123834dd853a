import { createHash } from 'node:crypto';
import type { Requester, UpstashRequest, UpstashResponse } from '@upstash/redis';
import type { Redis as IORedis } from 'ioredis';

type Command = [string, ...(string | number)[]];

function isCommand(value: unknown): value is Command {
  return Array.isArray(value) && typeof value[0] === 'string';
}

function errorText(error: unknown): string {
  // Redis replies such as "NOSCRIPT No matching script" must keep their text: @upstash/ratelimit
  // looks for NOSCRIPT to fall back from EVALSHA to EVAL.
  return error instanceof Error ? error.message : String(error);
}

type Args = (string | number)[];

const sha1 = (text: string) => createHash('sha1').update(text).digest('hex');
type Runner = { call?: (name: string, ...args: Args) => Promise<unknown> } & Record<string, unknown>;

/** ioredis sends any command with `call`; ioredis-mock has no `call`, only a method per command. */
function send(target: Runner, name: string, args: Args): unknown {
  if (typeof target.call === 'function') return target.call(name, ...args);
  const method = target[name.toLowerCase()];
  if (typeof method !== 'function') throw new Error(`ERR unknown command '${name}'`);
  return (method as (...a: Args) => unknown).apply(target, args);
}

/**
 * A `Requester` for @upstash/redis that runs the commands over TCP with ioredis instead of Upstash's
 * REST API, so the same `Redis` class and the same @upstash/ratelimit scripts work against Heroku
 * Redis or any Redis server. Single commands, `pipeline` and `multi-exec` bodies are supported,
 * answering in the REST API's shapes (`{ result }` / `{ error }`, and arrays of them for pipelines).
 *
 * The client may also be an `ioredis-mock` instance (embedded mode): the same code path in memory.
 */
export function createIORedisRequester(client: Pick<IORedis, 'pipeline' | 'multi'>): Requester {
  // @upstash/ratelimit's scripts open with `#!lua flags=allow-key-locking`, a flag only Upstash (and
  // recent Redis) know: Redis 7.0 refuses it and ioredis-mock's Lua VM cannot parse the line. The
  // scripts need no flag, so the line is dropped, and EVALSHA of the original script's hash is
  // mapped to the hash of the script as sent.
  const shaOfSent = new Map<string, string>();
  const prepare = (name: string, args: Args): Args => {
    const command = name.toLowerCase();
    if (command === 'evalsha' && typeof args[0] === 'string') {
      const mapped = shaOfSent.get(args[0]);
      return mapped ? [mapped, ...args.slice(1)] : args;
    }
    const scriptIndex =
      command === 'eval' ? 0 : command === 'script' && String(args[0]).toLowerCase() === 'load' ? 1 : -1;
    const script = args[scriptIndex];
    if (typeof script !== 'string' || !script.startsWith('#!')) return args;
    const sent = script.replace(/^#![^\n]*\n/, '');
    shaOfSent.set(sha1(script), sha1(sent));
    return args.map((arg, index) => (index === scriptIndex ? sent : arg));
  };
  return {
    async request<TResult>(req: UpstashRequest): Promise<UpstashResponse<TResult>> {
      const path = req.path ?? [];
      if (path[0] === 'pipeline' || path[0] === 'multi-exec') {
        const commands = req.body as Command[];
        const batch = path[0] === 'pipeline' ? client.pipeline() : client.multi();
        for (const [name, ...args] of commands) send(batch as unknown as Runner, name, prepare(name, args));
        const replies = (await batch.exec()) ?? [];
        // The REST API answers a pipeline with one `{ result }` or `{ error }` per command.
        return replies.map(([error, result]) =>
          error ? { error: errorText(error) } : { result },
        ) as unknown as UpstashResponse<TResult>;
      }
      if (path.length > 0) {
        return { error: `unsupported request path /${path.join('/')} over TCP` };
      }
      if (!isCommand(req.body)) return { error: 'request body is not a Redis command' };
      const [name, ...args] = req.body;
      try {
        return { result: (await send(client as unknown as Runner, name, prepare(name, args))) as TResult };
      } catch (error) {
        return { error: errorText(error) };
      }
    },
  };
}

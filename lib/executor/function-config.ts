import { CronExpressionParser } from 'cron-parser';
import { z } from 'zod';
import { parseDuration } from './duration';
import { type CompiledExpression, compileExpression, ExpressionError } from './expression';

/**
 * A function's config as the SDK posts it to /fn/register (the fields the engine acts on), and its
 * compiled form. Unsupported options or expressions are rejected at sync, never ignored silently.
 */
const ConcurrencyItem = z.union([
  z.number().int().positive(),
  z.object({
    limit: z.number().int().nonnegative(),
    key: z.string().optional(),
    scope: z.enum(['fn', 'env', 'account']).optional(),
  }),
]);

export const FunctionConfigSchema = z
  .object({
    id: z.string().min(1),
    name: z.string().optional(),
    triggers: z
      .array(
        z.union([
          z.object({ event: z.string().min(1), expression: z.string().nullish() }),
          z.object({ cron: z.string().min(1), jitter: z.string().optional() }),
        ]),
      )
      .default([]),
    steps: z.record(
      z.string(),
      z.object({
        id: z.string(),
        name: z.string().optional(),
        runtime: z.object({ type: z.string(), url: z.string() }),
        retries: z.object({ attempts: z.number().int().nonnegative() }).nullish(),
      }),
    ),
    idempotency: z.string().nullish(),
    concurrency: z.union([ConcurrencyItem, z.array(ConcurrencyItem)]).nullish(),
    throttle: z
      .object({
        limit: z.number().int().positive(),
        period: z.union([z.string(), z.number()]),
        key: z.string().optional(),
        burst: z.number().int().nonnegative().optional(),
      })
      .nullish(),
    cancel: z
      .array(
        z.object({ event: z.string().min(1), if: z.string().optional(), timeout: z.string().optional() }),
      )
      .nullish(),
    batchEvents: z.unknown().optional(),
    rateLimit: z.unknown().optional(),
    debounce: z.unknown().optional(),
    priority: z.unknown().optional(),
    timeouts: z.unknown().optional(),
    singleton: z.unknown().optional(),
  })
  .loose();

export type FunctionConfig = z.infer<typeof FunctionConfigSchema>;

export const DEFAULT_RETRIES = 3;

export interface CompiledFunction {
  id: string;
  name: string;
  config: FunctionConfig;
  /** Attempts per step (retries + 1). */
  maxAttempts: number;
  eventTriggers: { event: string; expression: CompiledExpression | undefined }[];
  crons: string[];
  concurrency: { limit: number; key: CompiledExpression | undefined; scope: string }[];
  throttle:
    | { limit: number; periodMs: number; burst: number; key: CompiledExpression | undefined }
    | undefined;
  idempotency: CompiledExpression | undefined;
  cancel: { event: string; expression: CompiledExpression | undefined; timeoutMs: number | undefined }[];
}

export class FunctionConfigError extends Error {
  constructor(functionId: string, problem: string) {
    super(`Function "${functionId}": ${problem}`);
    this.name = 'FunctionConfigError';
  }
}

const UNSUPPORTED = ['batchEvents', 'rateLimit', 'debounce', 'priority', 'timeouts', 'singleton'] as const;

/** Validates a synced config; throws `FunctionConfigError` naming the function and the problem. */
export function compileFunction(raw: unknown): CompiledFunction {
  const parsed = FunctionConfigSchema.safeParse(raw);
  const id = typeof raw === 'object' && raw && 'id' in raw ? String((raw as { id: unknown }).id) : '?';
  if (!parsed.success) throw new FunctionConfigError(id, `invalid config: ${parsed.error.message}`);
  const config = parsed.data;
  const expr = (source: string | null | undefined, where: string) => {
    if (source === undefined || source === null || source === '') return undefined;
    try {
      return compileExpression(source);
    } catch (error) {
      if (error instanceof ExpressionError)
        throw new FunctionConfigError(config.id, `${where}: ${error.message}`);
      throw error;
    }
  };
  for (const option of UNSUPPORTED) {
    if (config[option] !== undefined && config[option] !== null) {
      throw new FunctionConfigError(config.id, `"${option}" is not supported by the embedded executor`);
    }
  }
  const crons: string[] = [];
  const eventTriggers: CompiledFunction['eventTriggers'] = [];
  for (const trigger of config.triggers) {
    if ('cron' in trigger) {
      try {
        CronExpressionParser.parse(stripTimezone(trigger.cron).expression);
      } catch (error) {
        throw new FunctionConfigError(
          config.id,
          `invalid cron "${trigger.cron}": ${(error as Error).message}`,
        );
      }
      crons.push(trigger.cron);
    } else {
      eventTriggers.push({ event: trigger.event, expression: expr(trigger.expression, 'trigger "if"') });
    }
  }
  const step = Object.values(config.steps)[0];
  if (!step) throw new FunctionConfigError(config.id, 'no step entry in the config');
  const concurrencyItems =
    config.concurrency === undefined || config.concurrency === null
      ? []
      : Array.isArray(config.concurrency)
        ? config.concurrency
        : [config.concurrency];
  const concurrency = concurrencyItems
    .map((item) =>
      typeof item === 'number'
        ? { limit: item, key: undefined, scope: 'fn' }
        : { limit: item.limit, key: expr(item.key, 'concurrency key'), scope: item.scope ?? 'fn' },
    )
    .filter((item) => item.limit > 0);
  let throttle: CompiledFunction['throttle'];
  if (config.throttle) {
    let periodMs: number;
    try {
      periodMs = parseDuration(config.throttle.period);
    } catch (error) {
      throw new FunctionConfigError(config.id, `throttle period: ${(error as Error).message}`);
    }
    throttle = {
      limit: config.throttle.limit,
      periodMs,
      burst: config.throttle.burst ?? 0,
      key: expr(config.throttle.key, 'throttle key'),
    };
  }
  const cancel = (config.cancel ?? []).map((rule) => ({
    event: rule.event,
    expression: expr(rule.if, 'cancelOn "if"'),
    timeoutMs: rule.timeout ? parseDuration(rule.timeout) : undefined,
  }));
  return {
    id: config.id,
    name: config.name ?? config.id,
    config,
    maxAttempts: (step.retries?.attempts ?? DEFAULT_RETRIES) + 1,
    eventTriggers,
    crons,
    concurrency,
    throttle,
    idempotency: expr(config.idempotency, 'idempotency'),
    cancel,
  };
}

/** Inngest crons may start with "TZ=Europe/Paris ". */
export function stripTimezone(cron: string): { expression: string; tz: string | undefined } {
  const match = /^(?:CRON_)?TZ=(\S+)\s+(.*)$/.exec(cron.trim());
  return match
    ? { expression: match[2] as string, tz: match[1] }
    : { expression: cron.trim(), tz: undefined };
}

/** The first tick strictly after `after`. */
export function nextCronTick(cron: string, after: number): number {
  const { expression, tz } = stripTimezone(cron);
  const parsed = CronExpressionParser.parse(expression, {
    currentDate: new Date(after),
    ...(tz ? { tz } : {}),
  });
  return parsed.next().getTime();
}

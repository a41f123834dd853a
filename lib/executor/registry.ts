import { sql } from 'drizzle-orm';
import { z } from 'zod';
import { type Queryable, selectRows } from '../db/client';
import { type CompiledFunction, compileFunction, nextCronTick } from './function-config';
import { iso } from './sql-values';
import type { Registry } from './types';

/** The body the SDK POSTs to /fn/register during its sync. */
export const RegisterBodySchema = z
  .object({
    url: z.string(),
    appName: z.string().min(1),
    functions: z.array(z.unknown()).default([]),
  })
  .loose();

/**
 * Stores the app's function configs as synced; rejects the whole sync when one config is unsupported
 * (the error names the function and the expression or option). Crons get their next tick.
 */
export async function registerFunctions(
  db: Queryable,
  body: unknown,
  now: number,
): Promise<CompiledFunction[]> {
  const parsed = RegisterBodySchema.parse(body);
  const compiled = parsed.functions.map((raw) => compileFunction(raw));
  const ids = compiled.map((fn) => fn.id);
  await db.transaction(async (tx) => {
    for (const fn of compiled) {
      await tx.execute(
        sql`insert into executor_functions (id, app_id, name, config, url, synced_at)
            values (${fn.id}, ${parsed.appName}, ${fn.name}, ${JSON.stringify(fn.config)}::jsonb, ${parsed.url}, ${iso(now)}::timestamptz)
            on conflict (id) do update set app_id = excluded.app_id, name = excluded.name, config = excluded.config,
              url = excluded.url, synced_at = excluded.synced_at`,
      );
      await tx.execute(
        sql`delete from executor_crons where function_id = ${fn.id}
            and not (cron = any(select jsonb_array_elements_text(${JSON.stringify(fn.crons)}::jsonb)))`,
      );
      for (const cron of fn.crons) {
        await tx.execute(
          sql`insert into executor_crons (function_id, cron, next_at) values (${fn.id}, ${cron}, ${iso(nextCronTick(cron, now))}::timestamptz)
              on conflict do nothing`,
        );
      }
    }
    // Functions removed from the app stop being triggered (their history stays).
    await tx.execute(
      sql`delete from executor_crons where function_id in (select id from executor_functions where app_id = ${parsed.appName}
            and not (id = any(select jsonb_array_elements_text(${JSON.stringify(ids)}::jsonb))))`,
    );
    await tx.execute(
      sql`delete from executor_functions where app_id = ${parsed.appName}
          and not (id = any(select jsonb_array_elements_text(${JSON.stringify(ids)}::jsonb)))`,
    );
  });
  return compiled;
}

/** Every synced function, compiled (a worker that did not sync itself reads what another synced). */
export async function loadRegistry(db: Queryable): Promise<Registry> {
  const rows = await selectRows<{ config: unknown }>(db, sql`select config from executor_functions`);
  const registry: Registry = new Map();
  for (const row of rows) {
    const fn = compileFunction(row.config);
    registry.set(fn.id, fn);
  }
  return registry;
}

import { fillPlaceholders, type Query, type SQL, sql } from 'drizzle-orm';
import type { Queryable } from '../../lib/db/client';
import { selectRows } from '../../lib/db/client';

/** One node of a plan that reads a table: which index (if any) and on what condition. */
export interface PlanScan {
  nodeType: string;
  relation: string;
  alias: string;
  index: string | undefined;
  indexCond: string | undefined;
}

/** A node of `explain (format json)`'s plan, with the fields the tests read. */
export interface PlanNode {
  'Node Type': string;
  'Relation Name'?: string;
  Alias?: string;
  'Index Name'?: string;
  'Index Cond'?: string;
  'Recheck Cond'?: string;
  Plans?: PlanNode[];
}

function literal(value: unknown): string {
  if (value === null || value === undefined) return 'null';
  if (typeof value === 'number' || typeof value === 'bigint' || typeof value === 'boolean')
    return String(value);
  const text =
    value instanceof Date ? value.toISOString() : typeof value === 'string' ? value : JSON.stringify(value);
  return `'${text.replaceAll("'", "''")}'`;
}

/** The plan PostgreSQL makes for `statement` (run as `explain (format json) <statement>`). */
export async function explainPlan(db: Queryable, statement: SQL): Promise<PlanNode> {
  const [row] = await selectRows<{ 'QUERY PLAN': unknown }>(db, sql`explain (format json) ${statement}`);
  const plan = row?.['QUERY PLAN'];
  const [root] = (typeof plan === 'string' ? JSON.parse(plan) : plan) as { Plan: PlanNode }[];
  if (!root) throw new Error('explain returned no plan');
  return root.Plan;
}

/**
 * For each row-locking pick (LockRows) in `plan`, the joins above it. A pick under a join may run
 * again for each row the join reads, and a SKIP LOCKED pick then picks other rows each time.
 */
export function joinsAbovePicks(plan: PlanNode): string[][] {
  const picks: string[][] = [];
  const walk = (node: PlanNode, joins: string[]) => {
    if (node['Node Type'] === 'LockRows') picks.push(joins);
    const type = node['Node Type'];
    const below = /Nested Loop|Hash Join|Merge Join/.test(type) ? [...joins, type] : joins;
    for (const child of node.Plans ?? []) walk(child, below);
  };
  walk(plan, []);
  return picks;
}

/**
 * The generic plan PostgreSQL makes for a named statement on the tables as they are now: the plan a
 * connection keeps for it after its fifth run (PostgreSQL plans it again only after an ANALYZE). Its
 * scans, flattened. Runs in a transaction of its own, so `plan_cache_mode` stays there.
 */
export async function genericPlanScans(
  db: Queryable,
  prepared: { getQuery(): Query },
  values: Record<string, unknown>,
): Promise<PlanScan[]> {
  const query = prepared.getQuery();
  const args = fillPlaceholders(query.params, values).map(literal);
  const name = `plan_probe_${Math.random().toString(36).slice(2, 10)}`;
  const plan = await db.transaction(async (tx) => {
    await tx.execute(sql`set local plan_cache_mode = force_generic_plan`);
    await tx.execute(sql.raw(`prepare ${name} as ${query.sql}`));
    const root = await explainPlan(tx, sql.raw(`execute ${name}(${args.join(', ')})`));
    await tx.execute(sql.raw(`deallocate ${name}`));
    return root;
  });
  return planScans(plan);
}

/** The nodes of `plan` that read a table, flattened. */
export function planScans(plan: PlanNode): PlanScan[] {
  const scans: PlanScan[] = [];
  const walk = (node: PlanNode) => {
    if (node['Relation Name'] && node['Node Type'].endsWith('Scan')) {
      // A bitmap heap scan reads the table; the bitmap index scan under it names the index.
      const bitmap = node['Node Type'] === 'Bitmap Heap Scan' ? node.Plans?.[0] : undefined;
      scans.push({
        nodeType: node['Node Type'],
        relation: node['Relation Name'],
        alias: node.Alias ?? node['Relation Name'],
        index: node['Index Name'] ?? bitmap?.['Index Name'],
        indexCond: node['Index Cond'] ?? bitmap?.['Index Cond'],
      });
    }
    for (const child of node.Plans ?? []) walk(child);
  };
  walk(plan);
  return scans;
}

import { eq } from 'drizzle-orm';
import type { Database } from '../../lib/db/client';
import { agents, customers } from '../../lib/db/schema';

/** A customer with one agent, the rows the pairing and history rules hang off. */
export async function createAgent(
  db: Database,
  overrides: Partial<typeof agents.$inferInsert> = {},
): Promise<typeof agents.$inferSelect> {
  const [customer] = await db.insert(customers).values({ name: 'Acme' }).returning();
  const [agent] = await db
    .insert(agents)
    .values({ customerId: customer!.id, name: 'Ada', model: 'claude-sonnet-4-5', ...overrides })
    .returning();
  return agent!;
}

export async function loadAgent(db: Database, agentId: string): Promise<typeof agents.$inferSelect> {
  const [agent] = await db.select().from(agents).where(eq(agents.id, agentId));
  return agent!;
}

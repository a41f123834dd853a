import { eq } from 'drizzle-orm';
import type { Queryable } from '../db/client';
import { agents } from '../db/schema';
import { AppError } from '../errors';

/** Locks the agent row for the rest of the transaction: every pairing change of one agent goes one at a time. */
export async function lockAgent(db: Queryable, agentId: string) {
  const [agent] = await db
    .select({ id: agents.id, telegramAllowFrom: agents.telegramAllowFrom })
    .from(agents)
    .where(eq(agents.id, agentId))
    .for('update');
  if (!agent) throw new AppError('agent_not_found', 'Agent not found', { details: { agentId } });
  return agent;
}

import { eq } from 'drizzle-orm';
import { createAgent } from '../../lib/agents';
import { setCredential } from '../../lib/credentials';
import { createCustomer } from '../../lib/customers';
import { agents, credentials } from '../../lib/db/schema';
import type { CreateAgentInput } from '../../lib/schemas/agents';
import type { CreateCustomerInput } from '../../lib/schemas/customers';
import type { ExecutorHarness } from './executor';
import type { FakeAnthropic } from './fake-anthropic';
import type { FakeTelegram } from './fake-telegram';

const system = { actor: { type: 'system' as const }, requestId: undefined, ip: undefined };
let bots = 0;

export interface RunningAgent {
  agentId: string;
  customerId: string;
  /** The customer's API key, for REST calls. */
  apiKey: string;
  token: string;
  botId: number;
  botUsername: string;
  claudeKey: string;
  delivery: 'webhook' | 'polling' | null | undefined;
}

export interface RunningAgentOptions {
  agent?: Partial<CreateAgentInput>;
  customer?: Partial<CreateCustomerInput>;
}

/**
 * A customer with an agent whose bot exists on the fake Telegram and whose key exists on the fake
 * Anthropic, with both credentials marked valid (validation has its own tests), started through the
 * real `start-agent` function: with TELEGRAM_WEBHOOK_BASE_URL set, its webhook is registered on the
 * fake with a secret token.
 */
export async function createRunningAgent(
  harness: ExecutorHarness,
  telegram: FakeTelegram,
  anthropic: FakeAnthropic | undefined,
  options: RunningAgentOptions = {},
): Promise<RunningAgent> {
  bots += 1;
  const botId = 700000 + bots + Math.floor(Math.random() * 1000) * 1000;
  const botUsername = `agent_${botId}_bot`;
  const token = `${botId}:AAE${'r'.repeat(31)}${String(bots).padStart(3, '0')}`;
  const claudeKey = `sk-ant-api03-${'k'.repeat(24)}${botId}`;
  telegram.addBot(token, { id: botId, first_name: 'Agent', username: botUsername });
  anthropic?.addKey(claudeKey);
  const { db, keyring, models } = harness.services;
  const { customer, apiKey } = await createCustomer(db, system, keyring, {
    name: `customer ${botId}`,
    plan: 'pro',
    ...options.customer,
  } as CreateCustomerInput);
  const { agent } = await createAgent(db, system, customer.id, models, {
    name: 'Helper',
    ...options.agent,
  } as CreateAgentInput);
  await setCredential(db, system, keyring, {
    customerId: customer.id,
    agentId: agent.id,
    kind: 'telegram',
    secret: token,
  });
  await setCredential(db, system, keyring, {
    customerId: customer.id,
    agentId: agent.id,
    kind: 'claude',
    secret: claudeKey,
  });
  await db
    .update(credentials)
    .set({ validationStatus: 'valid', validatedAt: new Date() })
    .where(eq(credentials.agentId, agent.id));
  await db
    .update(agents)
    .set({ telegramBotId: botId, telegramBotUsername: botUsername, status: 'starting' })
    .where(eq(agents.id, agent.id));
  await harness.send({
    name: 'agent/start.requested',
    data: { agentId: agent.id, customerId: customer.id },
    id: `start-${agent.id}`,
  });
  await harness.settle();
  const [row] = await db.select().from(agents).where(eq(agents.id, agent.id));
  if (row?.status !== 'running') throw new Error(`agent did not start: ${row?.status} ${row?.lastError}`);
  return {
    agentId: agent.id,
    customerId: customer.id,
    apiKey,
    token,
    botId,
    botUsername,
    claudeKey,
    delivery: row.telegramDelivery,
  };
}

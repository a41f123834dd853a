import { setTimeout as sleep } from 'node:timers/promises';
import { and, count, eq, gte, inArray } from 'drizzle-orm';
import { agentNotFound, findOwnAgent } from '../agents';
import { credentialStatusesOf, readCredentialSecret } from '../credentials';
import { credentials, customers, telegramMessages } from '../db/schema';
import { limitsFor } from '../ratelimit/plans';
import { startOfUtcDay } from '../ratelimit/quota';
import type { CredentialStatus } from '../schemas/credentials';
import type { Services } from '../services';
import { createTelegramApi } from '../telegram/api';

/**
 * Waits until every configured credential of the agent has a validation newer than `since`, up to
 * `timeoutMs`. Undefined when the bound passed first (the caller answers 202 and the client polls).
 */
export async function awaitValidation(
  services: Services,
  agentId: string,
  since: Date,
  timeoutMs: number,
): Promise<Record<'telegram' | 'claude', CredentialStatus> | undefined> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const rows = await services.db
      .select()
      .from(credentials)
      .where(and(eq(credentials.agentId, agentId), inArray(credentials.kind, ['telegram', 'claude'])));
    const done = rows.every((row) => row.validatedAt !== null && row.validatedAt >= since);
    if (done) return credentialStatusesOf(rows);
    if (Date.now() >= deadline) return undefined;
    await sleep(100);
  }
}

export interface TelegramWebhookView {
  url: string;
  pendingUpdateCount: number;
  lastErrorDate: string | null;
  lastErrorMessage: string | null;
}

const WEBHOOK_INFO_TTL_MS = 30_000;
/** Past this many agents, expired views are dropped before another is kept. */
const WEBHOOK_INFO_CACHE_SWEEP_AT = 1_000;
const webhookInfoCache = new Map<
  string,
  { at: number; statusSince: number; view: TelegramWebhookView | { error: string } }
>();

/**
 * Telegram's own view of the bot's webhook, cached briefly per agent (status pages get polled). A
 * start or stop since the view was read (a new `statusSince`: a token can only change in between)
 * reads it again, so the status never shows the webhook as it was before.
 */
export async function telegramWebhookView(
  services: Services,
  agent: { id: string; statusSince: Date },
): Promise<TelegramWebhookView | { error: string } | null> {
  const agentId = agent.id;
  const statusSince = agent.statusSince.getTime();
  const cached = webhookInfoCache.get(agentId);
  if (cached && cached.statusSince === statusSince && Date.now() - cached.at < WEBHOOK_INFO_TTL_MS) {
    return cached.view;
  }
  const token = await readCredentialSecret(services.db, services.keyring, agentId, 'telegram');
  if (!token) return null;
  let view: TelegramWebhookView | { error: string };
  try {
    const info = await createTelegramApi(token, {
      apiRoot: services.config.telegram.apiRoot,
      timeoutMs: 5_000,
    }).getWebhookInfo();
    view = {
      url: info.url ?? '',
      pendingUpdateCount: info.pending_update_count,
      lastErrorDate: info.last_error_date ? new Date(info.last_error_date * 1000).toISOString() : null,
      lastErrorMessage: info.last_error_message ?? null,
    };
  } catch {
    view = { error: 'Telegram could not be reached' };
  }
  if (webhookInfoCache.size >= WEBHOOK_INFO_CACHE_SWEEP_AT) {
    for (const [id, entry] of webhookInfoCache) {
      if (Date.now() - entry.at >= WEBHOOK_INFO_TTL_MS) webhookInfoCache.delete(id);
    }
  }
  webhookInfoCache.set(agentId, { at: Date.now(), statusSince, view });
  return view;
}

export async function getAgentStatus(
  services: Services,
  customerId: string,
  agentId: string,
  now = new Date(),
) {
  const agent = await findOwnAgent(services.db, customerId, agentId);
  if (!agent) throw agentNotFound(agentId);
  const [customer] = await services.db.select().from(customers).where(eq(customers.id, customerId));
  const [today] = await services.db
    .select({ n: count() })
    .from(telegramMessages)
    .where(
      and(
        eq(telegramMessages.agentId, agentId),
        eq(telegramMessages.direction, 'inbound'),
        gte(telegramMessages.createdAt, startOfUtcDay(now)),
      ),
    );
  const messagesPerDay = customer ? limitsFor(customer).messagesPerDay : 0;
  const quota = await services.limits.messages.usage(`customer:${customerId}`, messagesPerDay);
  return {
    status: agent.status,
    since: agent.statusSince.toISOString(),
    lastError: agent.lastError,
    lastErrorCode: agent.lastErrorCode,
    lastErrorAt: agent.lastErrorAt?.toISOString() ?? null,
    lastMessageAt: agent.lastMessageAt?.toISOString() ?? null,
    messagesToday: today?.n ?? 0,
    quota: {
      messagesPerDay,
      // Unknown while Redis does not answer (the quota fails open).
      remaining: quota.failedOpen ? null : quota.remaining,
      resetAt: new Date(quota.reset).toISOString(),
    },
    telegram: {
      botUsername: agent.telegramBotUsername,
      delivery: agent.telegramDelivery,
      webhook:
        agent.status === 'running' || agent.status === 'error'
          ? await telegramWebhookView(services, agent)
          : null,
    },
  };
}

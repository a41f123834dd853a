import { and, eq } from 'drizzle-orm';
import { validateClaudeKey } from '../claude/validate';
import { readCredentialSecret, SECRET_UNCHANGED } from '../credentials';
import { agents, credentials } from '../db/schema';
import type { Services } from '../services';
import { validateTelegramToken } from '../telegram/validate';

export type CredentialCheck =
  | { status: 'valid'; reason: null; details: Record<string, unknown> }
  | { status: 'invalid' | 'unreachable'; reason: string; details: Record<string, unknown> };

export interface ValidationReport {
  telegram: CredentialCheck | null;
  claude: CredentialCheck | null;
}

const TIMEOUT_MS = 10_000;

async function store(
  services: Services,
  agentId: string,
  kind: 'telegram' | 'claude',
  check: CredentialCheck,
) {
  await services.db
    .update(credentials)
    .set({
      validationStatus: check.status,
      validationReason: check.reason,
      validationDetails: check.details,
      validatedAt: new Date(),
      ...SECRET_UNCHANGED,
    })
    .where(and(eq(credentials.agentId, agentId), eq(credentials.kind, kind)));
}

/**
 * getMe with the agent's bot token. A token of another bot than the `botUsername` the customer
 * named is invalid (reason `bot_username_mismatch`): starting it would answer on the wrong bot.
 */
export async function validateTelegramCredential(
  services: Services,
  agentId: string,
): Promise<CredentialCheck | null> {
  const token = await readCredentialSecret(services.db, services.keyring, agentId, 'telegram');
  if (!token) return null;
  const [agent] = await services.db.select().from(agents).where(eq(agents.id, agentId));
  if (!agent) return null;
  const result = await validateTelegramToken(token, agent.botUsername ?? undefined, {
    apiRoot: services.config.telegram.apiRoot,
    timeoutMs: TIMEOUT_MS,
  });
  let check: CredentialCheck;
  if (result.status === 'valid') {
    await services.db
      .update(agents)
      .set({ telegramBotId: result.botId, telegramBotUsername: result.username })
      .where(eq(agents.id, agentId));
    check = result.usernameMatches
      ? { status: 'valid', reason: null, details: { botId: result.botId, username: result.username } }
      : {
          status: 'invalid',
          reason: `bot_username_mismatch: the token belongs to @${result.username}, not @${agent.botUsername}`,
          details: { botId: result.botId, username: result.username, expectedUsername: agent.botUsername },
        };
  } else {
    check = { status: result.status, reason: result.reason, details: {} };
  }
  await store(services, agentId, 'telegram', check);
  return check;
}

/** Lists the key's models: proves the key and tells whether the agent's model is available to it. */
export async function validateClaudeCredential(
  services: Services,
  agentId: string,
): Promise<CredentialCheck | null> {
  const key = await readCredentialSecret(services.db, services.keyring, agentId, 'claude');
  if (!key) return null;
  const [agent] = await services.db.select().from(agents).where(eq(agents.id, agentId));
  if (!agent) return null;
  const result = await validateClaudeKey(key, agent.model, {
    baseURL: services.config.anthropic.baseUrl,
    timeoutMs: TIMEOUT_MS,
  });
  const check: CredentialCheck =
    result.status === 'valid'
      ? result.modelAvailable
        ? { status: 'valid', reason: null, details: { model: agent.model } }
        : {
            status: 'invalid',
            reason: `model_unavailable: ${agent.model} is not available to this API key`,
            details: { model: agent.model, availableModels: result.models.slice(0, 50) },
          }
      : { status: result.status, reason: result.reason, details: {} };
  await store(services, agentId, 'claude', check);
  return check;
}

import { createHash, timingSafeEqual } from 'node:crypto';
import { and, eq, isNull, sql } from 'drizzle-orm';
import { decryptCredentialRow, webhookSecretFingerprints } from '../credentials';
import type { Keyring } from '../crypto';
import type { Queryable } from '../db/client';
import { preparedQuery } from '../db/prepared';
import { agents, credentials, customers } from '../db/schema';
import { GroupCommit } from '../group-commit';
import { isUuid } from '../pagination';

const digest = (value: string) => createHash('sha256').update(value).digest();

export interface WebhookAgent {
  id: string;
  customerId: string;
  /** Running, and its customer active: updates are stored and answered; otherwise acknowledged only. */
  answering: boolean;
}

type AgentSecretRow = WebhookAgent & { secret: typeof credentials.$inferSelect | null };

/** The agents of a batch of webhook calls with their webhook secret_token credentials (built once). */
const readAgentsWithSecret = preparedQuery((db) =>
  db
    .select({
      id: agents.id,
      customerId: agents.customerId,
      status: agents.status,
      customerStatus: customers.status,
      secret: credentials,
    })
    .from(agents)
    .innerJoin(customers, eq(customers.id, agents.customerId))
    .leftJoin(credentials, and(eq(credentials.agentId, agents.id), eq(credentials.kind, 'telegram_webhook')))
    .where(sql`${agents.id} = any(${sql.placeholder('ids')}::uuid[])`)
    .prepare('telegram_read_agents_with_secret'),
);

/** The agents `ids` name, with their webhook secret_token credential, in one statement. */
async function readAgentSecrets(db: Queryable, ids: string[]): Promise<Map<string, AgentSecretRow>> {
  const rows = await readAgentsWithSecret(db).execute({ ids });
  return new Map(
    rows.map((row) => [
      row.id,
      {
        id: row.id,
        customerId: row.customerId,
        answering: row.status === 'running' && row.customerStatus === 'active',
        secret: row.secret,
      },
    ]),
  );
}

/**
 * Checks `X-Telegram-Bot-Api-Secret-Token` against the agent's secret_token by decrypting it, compared
 * in constant time: for a secret stored before fingerprints were kept (TelegramIngress checks the
 * others by fingerprint). A secret that matches gets its fingerprint, so the next calls need no
 * decrypting. Webhook calls arriving together share one read of their agents (group commit); each
 * call still reads the agent as it is now, so a rotated secret or a stopped agent counts from the
 * next call on.
 *
 * @example
 * const auth = new TelegramWebhookAuth({ db, keyring });
 * const agent = await auth.authenticate(agentId, c.req.header('x-telegram-bot-api-secret-token'));
 */
export class TelegramWebhookAuth {
  private readonly keyring: Keyring;
  private readonly db: Queryable;
  private readonly reads: GroupCommit<string, AgentSecretRow | undefined>;

  constructor(deps: { db: Queryable; keyring: Keyring }) {
    this.keyring = deps.keyring;
    this.db = deps.db;
    this.reads = new GroupCommit(
      async (ids) => {
        const found = await readAgentSecrets(deps.db, [...new Set(ids)]);
        return ids.map((id) => found.get(id));
      },
      { maxParallel: 2 },
    );
  }

  /**
   * The agent a webhook call is for, when `presented` matches its secret. Undefined for a wrong
   * secret and for an agent that does not exist alike, so the caller's 401 says nothing about which.
   */
  async authenticate(agentId: string, presented: string | undefined): Promise<WebhookAgent | undefined> {
    if (!presented || !isUuid(agentId)) return undefined;
    const row = await this.reads.submit(agentId);
    if (!row?.secret) return undefined;
    const expected = decryptCredentialRow(this.keyring, row.secret);
    if (!timingSafeEqual(digest(expected), digest(presented))) return undefined;
    if (row.secret.fingerprint === null) await this.storeFingerprint(row.secret, expected);
    return { id: row.id, customerId: row.customerId, answering: row.answering };
  }

  /**
   * Under the key the row is encrypted with (a rotation in progress may not have moved it yet), and
   * only if the row still holds this secret: a rotation since the read wrote its own.
   */
  private async storeFingerprint(row: typeof credentials.$inferSelect, secret: string): Promise<void> {
    const fingerprint = webhookSecretFingerprints(this.keyring, secret)[row.keyVersion];
    if (!fingerprint) return;
    await this.db
      .update(credentials)
      .set({ fingerprint })
      .where(
        and(
          eq(credentials.id, row.id),
          eq(credentials.ciphertext, row.ciphertext),
          isNull(credentials.fingerprint),
        ),
      );
  }
}

import { and, eq, sql } from 'drizzle-orm';
import type { RequestContext } from './actor';
import { agentNotFound, findOwnAgent } from './agents';
import { recordAudit } from './audit';
import {
  credentialBinding,
  DecryptionError,
  decryptSecret,
  encryptSecret,
  type Keyring,
  last4,
  sameSecret,
  secretFingerprint,
  secretFingerprintsByVersion,
} from './crypto';
import type { Database, Queryable } from './db/client';
import { preparedQuery } from './db/prepared';
import { agents, credentials } from './db/schema';
import { AppError } from './errors';
import type { CredentialStatus, CustomerCredentialKind } from './schemas/credentials';

export type CredentialRow = typeof credentials.$inferSelect;
export type CredentialKind = CredentialRow['kind'];

export function toCredentialStatus(
  kind: CustomerCredentialKind,
  row: CredentialRow | undefined,
): CredentialStatus {
  if (!row) {
    return {
      kind,
      configured: false,
      last4: null,
      updatedAt: null,
      validatedAt: null,
      valid: null,
      validation: null,
    };
  }
  return {
    kind,
    configured: true,
    last4: row.last4,
    updatedAt: row.updatedAt.toISOString(),
    validatedAt: row.validatedAt?.toISOString() ?? null,
    // Unreachable says nothing of the secret: like never checked, neither valid nor invalid.
    valid: row.validationStatus === 'valid' ? true : row.validationStatus === 'invalid' ? false : null,
    validation: row.validationStatus ? { status: row.validationStatus, reason: row.validationReason } : null,
  };
}

/**
 * Spread into an update of a credential that leaves its secret as it is (a check, a fingerprint, a
 * master key rotation): `updatedAt` stays when the secret was set, as the API reports it.
 */
export const SECRET_UNCHANGED = { updatedAt: sql`${credentials.updatedAt}` };

/** The fingerprint purposes of the credential kinds that have one. */
const FINGERPRINTED: Partial<Record<CredentialKind, string>> = {
  // Finds the same bot token on two agents.
  telegram: 'telegram-token',
  // Checks a webhook call's secret_token in the statement that stores its update, without decrypting.
  telegram_webhook: 'telegram-webhook-secret',
};

/** The keyed fingerprint stored with a credential of `kind`, or null for a kind that has none. */
export function credentialFingerprint(keyring: Keyring, kind: CredentialKind, secret: string): string | null {
  const purpose = FINGERPRINTED[kind];
  return purpose ? secretFingerprint(keyring, purpose, secret) : null;
}

/** A presented webhook secret_token's fingerprints, by master key version (see secretFingerprintsByVersion). */
export function webhookSecretFingerprints(keyring: Keyring, presented: string): Record<string, string> {
  return secretFingerprintsByVersion(keyring, FINGERPRINTED.telegram_webhook as string, presented);
}

/** Stores (or replaces) an agent's secret of one kind, encrypted; its validation starts over. */
export async function setCredential(
  db: Database,
  context: RequestContext,
  keyring: Keyring,
  input: {
    customerId: string;
    agentId: string;
    kind: CustomerCredentialKind;
    secret: string;
    botUsername?: string | undefined;
  },
): Promise<CredentialStatus> {
  const { customerId, agentId, kind, secret } = input;
  return db.transaction(async (tx) => {
    const agent = await findOwnAgent(tx, customerId, agentId, { forUpdate: true });
    if (!agent) throw agentNotFound(agentId);
    const [stored] = await readCredential(tx).execute({ agentId: agent.id, kind });
    if (stored && rowHoldsSecret(keyring, stored, secret)) {
      // The secret it already has (a configuration sync saving everything again): nothing changes,
      // neither its validation nor a running agent.
      if (kind === 'telegram' && input.botUsername !== undefined) {
        await tx.update(agents).set({ botUsername: input.botUsername }).where(eq(agents.id, agent.id));
      }
      return toCredentialStatus(kind, stored);
    }
    assertChangeableWhileLive(agent, kind, 'set');
    const encrypted = encryptSecret(keyring, credentialBinding(customerId, agent.id, kind), secret);
    const values = {
      ...encrypted,
      last4: last4(secret),
      fingerprint: credentialFingerprint(keyring, kind, secret),
      validatedAt: null,
      validationStatus: null,
      validationReason: null,
      validationDetails: null,
      updatedAt: new Date(),
    };
    const [row] = await tx
      .insert(credentials)
      .values({ agentId, customerId, kind, ...values })
      .onConflictDoUpdate({ target: [credentials.agentId, credentials.kind], set: values })
      .returning();
    if (kind === 'telegram') {
      // A new token may be another bot: what getMe said about the old one no longer holds.
      await tx
        .update(agents)
        .set({
          telegramBotId: null,
          telegramBotUsername: null,
          ...(input.botUsername !== undefined ? { botUsername: input.botUsername } : {}),
        })
        .where(eq(agents.id, agentId));
    }
    await recordAudit(tx, context, {
      action: `credential.${kind}.set`,
      targetType: 'agent',
      targetId: agentId,
      details: { kind, last4: values.last4 },
    });
    return toCredentialStatus(kind, row);
  });
}

/**
 * What a starting or running agent's credentials may not undergo, a 409 each. Its Telegram token
 * does not change under it: the route stops the agent first, and a start that came in between (it
 * passed with the old, validated token) must not leave it running on a token nobody validated. Its
 * Claude key may be replaced (a rotation), not removed: that would fail every message.
 */
function assertChangeableWhileLive(
  agent: { status: string },
  kind: CustomerCredentialKind,
  change: 'set' | 'delete',
): void {
  if (agent.status !== 'starting' && agent.status !== 'running') return;
  const refusal =
    kind === 'telegram'
      ? 'The agent was started while its Telegram token was being changed: stop it, then send the change again'
      : change === 'delete'
        ? 'Stop the agent before removing its Claude key, or PUT a new one'
        : undefined;
  if (refusal) throw new AppError('agent_running', refusal, { details: { status: agent.status } });
}

export async function deleteCredential(
  db: Database,
  context: RequestContext,
  input: { customerId: string; agentId: string; kind: CustomerCredentialKind },
): Promise<void> {
  const { customerId, agentId, kind } = input;
  await db.transaction(async (tx) => {
    const agent = await findOwnAgent(tx, customerId, agentId, { forUpdate: true });
    if (!agent) throw agentNotFound(agentId);
    assertChangeableWhileLive(agent, kind, 'delete');
    const deleted = await tx
      .delete(credentials)
      .where(and(eq(credentials.agentId, agentId), eq(credentials.kind, kind)))
      .returning({ id: credentials.id });
    await recordAudit(tx, context, {
      action: `credential.${kind}.delete`,
      targetType: 'agent',
      targetId: agentId,
      details: { kind, existed: deleted.length > 0 },
    });
  });
}

export async function getCredentialStatuses(
  db: Queryable,
  customerId: string,
  agentId: string,
): Promise<Record<CustomerCredentialKind, CredentialStatus>> {
  const agent = await findOwnAgent(db, customerId, agentId);
  if (!agent) throw agentNotFound(agentId);
  const rows = await db.select().from(credentials).where(eq(credentials.agentId, agentId));
  return credentialStatusesOf(rows);
}

/** The customer-visible status of both credentials, from an agent's credential rows. */
export function credentialStatusesOf(
  rows: CredentialRow[],
): Record<CustomerCredentialKind, CredentialStatus> {
  return {
    telegram: toCredentialStatus(
      'telegram',
      rows.find((row) => row.kind === 'telegram'),
    ),
    claude: toCredentialStatus(
      'claude',
      rows.find((row) => row.kind === 'claude'),
    ),
  };
}

/** The plaintext secret, for the functions that call Telegram or Claude; never for a response. */
export async function readCredentialSecret(
  db: Queryable,
  keyring: Keyring,
  agentId: string,
  kind: CredentialKind,
): Promise<string | undefined> {
  const [row] = await readCredential(db).execute({ agentId, kind });
  if (!row) return undefined;
  return decryptCredentialRow(keyring, row);
}

/** Whether the stored secret is `secret` already (a PUT of it again changes nothing). */
function rowHoldsSecret(keyring: Keyring, row: CredentialRow, secret: string): boolean {
  try {
    return sameSecret(decryptCredentialRow(keyring, row), secret);
  } catch (error) {
    // A secret no master key opens is not this one: the PUT replaces it.
    if (error instanceof DecryptionError) return false;
    throw error;
  }
}

const readCredential = preparedQuery((db) =>
  db
    .select()
    .from(credentials)
    .where(
      and(eq(credentials.agentId, sql.placeholder('agentId')), eq(credentials.kind, sql.placeholder('kind'))),
    )
    .prepare('read_credential'),
);

/**
 * Decrypts a credential row read as part of a larger query (see readCredentialSecret). A secret
 * PUT through the agent id in capitals before path ids were lower-cased is bound to that spelling;
 * all capitals (what macOS `uuidgen` prints) is the one worth trying again, and a master-key
 * rotation rebinds what it finds to the stored id.
 */
export function decryptCredentialRow(keyring: Keyring, row: CredentialRow): string {
  try {
    return decryptSecret(keyring, credentialBinding(row.customerId, row.agentId, row.kind), row);
  } catch (error) {
    const upper = row.agentId.toUpperCase();
    if (!(error instanceof DecryptionError) || upper === row.agentId) throw error;
    try {
      return decryptSecret(keyring, credentialBinding(row.customerId, upper, row.kind), row);
    } catch {
      throw error;
    }
  }
}

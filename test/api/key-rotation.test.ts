import { randomBytes } from 'node:crypto';
import { and, eq } from 'drizzle-orm';
import { describe, expect, it } from 'vitest';
import {
  type CredentialRow,
  credentialFingerprint,
  readCredentialSecret,
  webhookSecretFingerprints,
} from '../../lib/credentials';
import {
  createKeyring,
  credentialBinding,
  decryptSecret,
  encryptSecret,
  webhookSecretBinding,
} from '../../lib/crypto';
import { credentials, customers } from '../../lib/db/schema';
import { rotateMasterKey } from '../../lib/key-rotation';
import { databaseTargets } from '../support/db';
import { TEST_MASTER_KEY } from '../support/services';
import { CLAUDE_KEY, TELEGRAM_TOKEN, useApiHarness } from './harness';

describe.each(databaseTargets())('master key rotation on %s', (target) => {
  const harness = useApiHarness(target);

  it('re-encrypts every credential and webhook secret, resumably and idempotently', async () => {
    const { id: customerId, apiKey } = await harness.createCustomer({ plan: 'pro' });
    const agents = [
      await harness.createAgent(apiKey),
      await harness.createAgent(apiKey),
      await harness.createAgent(apiKey),
    ];
    for (const agentId of agents) {
      await harness.call('PUT', `/api/v1/agents/${agentId}/credentials/telegram`, {
        key: apiKey,
        body: { botToken: TELEGRAM_TOKEN },
      });
      await harness.call('PUT', `/api/v1/agents/${agentId}/credentials/claude`, {
        key: apiKey,
        body: { apiKey: CLAUDE_KEY },
      });
    }
    const oldKeyring = harness.services.keyring;
    const webhook = encryptSecret(oldKeyring, webhookSecretBinding(customerId, 'current'), 'whsec_abc');
    await harness.services.db
      .update(customers)
      .set({
        webhookSecretCiphertext: webhook.ciphertext,
        webhookSecretIv: webhook.iv,
        webhookSecretAuthTag: webhook.authTag,
        webhookSecretKeyVersion: webhook.keyVersion,
      })
      .where(eq(customers.id, customerId));
    // The agent's Telegram webhook secret_token, with its fingerprint under the old key.
    const hookAgent = agents[0] as string;
    await harness.services.db.insert(credentials).values({
      agentId: hookAgent,
      customerId,
      kind: 'telegram_webhook',
      ...encryptSecret(
        oldKeyring,
        credentialBinding(customerId, hookAgent, 'telegram_webhook'),
        'hook-secret',
      ),
      last4: 'cret',
      fingerprint: credentialFingerprint(oldKeyring, 'telegram_webhook', 'hook-secret'),
    });
    const [before] = await harness.services.db
      .select()
      .from(credentials)
      .where(eq(credentials.kind, 'telegram'))
      .limit(1);

    const rotating = createKeyring(randomBytes(32).toString('base64'), TEST_MASTER_KEY);
    // Batches of 4: the run below commits in several transactions, as an interrupted run would have.
    const report = await rotateMasterKey(harness.services.db, rotating, { batchSize: 4 });
    expect(report.credentials).toBeGreaterThanOrEqual(6);
    expect(report.webhookSecrets).toBeGreaterThanOrEqual(1);
    expect(await rotateMasterKey(harness.services.db, rotating, { batchSize: 4 })).toEqual({
      credentials: 0,
      webhookSecrets: 0,
    });

    const rows = await harness.services.db.select().from(credentials);
    expect(rows.every((row) => row.keyVersion === rotating.current.version)).toBe(true);
    const after = rows.find((row) => row.id === before?.id);
    expect(after?.fingerprint).not.toBe(before?.fingerprint);
    // The same secret under a new key: still set when it was.
    expect(after?.updatedAt).toEqual(before?.updatedAt);
    // The webhook secret's fingerprint is made again under the new key, the one its row now names.
    const hook = rows.find((row) => row.agentId === hookAgent && row.kind === 'telegram_webhook');
    expect(hook?.fingerprint).toBe(
      webhookSecretFingerprints(rotating, 'hook-secret')[rotating.current.version],
    );
    expect(hook?.fingerprint).not.toBe(credentialFingerprint(oldKeyring, 'telegram_webhook', 'hook-secret'));

    // Only the new key is needed from now on.
    const newOnly = createKeyring(rotating.current.key.toString('base64'));
    for (const agentId of agents) {
      expect(await readCredentialSecret(harness.services.db, newOnly, agentId, 'telegram')).toBe(
        TELEGRAM_TOKEN,
      );
      expect(await readCredentialSecret(harness.services.db, newOnly, agentId, 'claude')).toBe(CLAUDE_KEY);
    }
    await expect(
      readCredentialSecret(harness.services.db, oldKeyring, agents[0] as string, 'claude'),
    ).rejects.toThrow();
  });

  it('refuses to run without the old key or with the same key twice', async () => {
    await expect(rotateMasterKey(harness.services.db, createKeyring(TEST_MASTER_KEY))).rejects.toThrow(
      /PREVIOUS/,
    );
    await expect(
      rotateMasterKey(harness.services.db, createKeyring(TEST_MASTER_KEY, TEST_MASTER_KEY)),
    ).rejects.toThrow(/same key/);
  });
});

// Its own database: the rotation above leaves rows under a key this one's keyring does not hold.
describe.each(databaseTargets())('a secret bound to an id in capitals, on %s', (target) => {
  const harness = useApiHarness(target);

  it('a secret bound to the agent id in capitals (as stored before ids were lower-cased) still reads, and rotation rebinds it', async () => {
    const { id: customerId, apiKey } = await harness.createCustomer({ plan: 'pro' });
    const agentId = await harness.createAgent(apiKey);
    const { db, keyring } = harness.services;
    await harness.call('PUT', `/api/v1/agents/${agentId}/credentials/claude`, {
      key: apiKey,
      body: { apiKey: CLAUDE_KEY },
    });
    // What a PUT through /agents/<ID IN CAPITALS>/credentials/claude stored before the fix.
    const legacy = encryptSecret(
      keyring,
      credentialBinding(customerId, agentId.toUpperCase(), 'claude'),
      CLAUDE_KEY,
    );
    await db
      .update(credentials)
      .set(legacy)
      .where(and(eq(credentials.agentId, agentId), eq(credentials.kind, 'claude')));
    expect(await readCredentialSecret(db, keyring, agentId, 'claude')).toBe(CLAUDE_KEY);

    const rotating = createKeyring(randomBytes(32).toString('base64'), TEST_MASTER_KEY);
    expect((await rotateMasterKey(db, rotating)).credentials).toBeGreaterThanOrEqual(1);
    const [row] = await db
      .select()
      .from(credentials)
      .where(and(eq(credentials.agentId, agentId), eq(credentials.kind, 'claude')));
    // Bound to the stored id now: it decrypts without the fallback.
    expect(
      decryptSecret(rotating, credentialBinding(customerId, agentId, 'claude'), row as CredentialRow),
    ).toBe(CLAUDE_KEY);
    // Any other spelling of a tampered row is still refused.
    const other = encryptSecret(
      rotating,
      credentialBinding(customerId, 'someone-else', 'claude'),
      CLAUDE_KEY,
    );
    await db
      .update(credentials)
      .set(other)
      .where(eq(credentials.id, (row as CredentialRow).id));
    await expect(readCredentialSecret(db, rotating, agentId, 'claude')).rejects.toThrow(/failed to decrypt/);
  });
});

// Its own database again: these tests leave rows no single keyring reads.
describe.each(databaseTargets())('secrets that no longer decrypt, on %s', (target) => {
  const harness = useApiHarness(target);
  const newKey = randomBytes(32).toString('base64');

  async function agentWithClaudeKey(): Promise<{ customerId: string; agentId: string }> {
    const { id: customerId, apiKey } = await harness.createCustomer({ plan: 'pro' });
    const agentId = await harness.createAgent(apiKey);
    const put = await harness.call('PUT', `/api/v1/agents/${agentId}/credentials/claude`, {
      key: apiKey,
      body: { apiKey: CLAUDE_KEY },
    });
    expect(put.status).toBe(200);
    return { customerId, agentId };
  }

  async function storeClaudeKey(agentId: string, encrypted: ReturnType<typeof encryptSecret>) {
    await harness.services.db
      .update(credentials)
      .set(encrypted)
      .where(and(eq(credentials.agentId, agentId), eq(credentials.kind, 'claude')));
  }

  it('a webhook secret that no longer decrypts is replaced by rotate-secret, not a 500', async () => {
    const { id: customerId, apiKey } = await harness.createCustomer();
    const { db, keyring } = harness.services;
    // Encrypted for another customer and copied here: under the right key, bound to the wrong row.
    await db
      .update(customers)
      .set(
        Object.fromEntries(
          Object.entries(
            encryptSecret(keyring, webhookSecretBinding('someone-else', 'current'), 'whsec_x'),
          ).map(([field, value]) => [`webhookSecret${field[0]?.toUpperCase()}${field.slice(1)}`, value]),
        ),
      )
      .where(eq(customers.id, customerId));
    const res = await harness.call('POST', '/api/v1/webhook/rotate-secret', { key: apiKey });
    expect(res.status).toBe(200);
    const { secret } = (await res.json()) as { secret: string };
    const [row] = await db.select().from(customers).where(eq(customers.id, customerId));
    expect(row?.previousWebhookSecretCiphertext).toBeNull();
    expect(
      decryptSecret(keyring, webhookSecretBinding(customerId, 'current'), {
        ciphertext: row?.webhookSecretCiphertext as string,
        iv: row?.webhookSecretIv as string,
        authTag: row?.webhookSecretAuthTag as string,
        keyVersion: row?.webhookSecretKeyVersion as number,
      }),
    ).toBe(secret);
  });

  it('a secret under a third key stops the rotation before it changes anything, naming its version', async () => {
    const { customerId, agentId } = await agentWithClaudeKey();
    const { db, keyring } = harness.services;
    const third = createKeyring(randomBytes(32).toString('base64'));
    await storeClaudeKey(
      agentId,
      encryptSecret(third, credentialBinding(customerId, agentId, 'claude'), CLAUDE_KEY),
    );
    const before = await db.select().from(customers).orderBy(customers.id);

    const rotating = createKeyring(newKey, TEST_MASTER_KEY);
    await expect(rotateMasterKey(db, rotating)).rejects.toThrow(
      new RegExp(
        `^1 stored secret is under master key version ${third.current.version}, which neither ` +
          `ENCRYPTION_MASTER_KEY \\(version ${rotating.current.version}\\) nor ENCRYPTION_MASTER_KEY_PREVIOUS ` +
          `\\(version ${keyring.current.version}\\) decrypts: set ENCRYPTION_MASTER_KEY_PREVIOUS to the key they were encrypted with\\. Nothing was changed\\.$`,
      ),
    );
    expect(await db.select().from(customers).orderBy(customers.id)).toEqual(before);
    // Put back as the harness's key stores it, for the next test.
    await storeClaudeKey(
      agentId,
      encryptSecret(keyring, credentialBinding(customerId, agentId, 'claude'), CLAUDE_KEY),
    );
  });

  it('a secret that does not decrypt under its own key stops the rotation at its batch, naming the row and the fix', async () => {
    const { customerId, agentId } = await agentWithClaudeKey();
    const { db, keyring } = harness.services;
    await storeClaudeKey(
      agentId,
      encryptSecret(keyring, credentialBinding(customerId, 'someone-else', 'claude'), CLAUDE_KEY),
    );

    const rotating = createKeyring(newKey, TEST_MASTER_KEY);
    await expect(rotateMasterKey(db, rotating, { batchSize: 1 })).rejects.toThrow(
      `the claude credential of agent ${agentId} does not decrypt under its master key (tampered with, or copied from another row): PUT /api/v1/agents/${agentId}/credentials/claude again (or delete the agent), then run the rotation again`,
    );
    // Stored anew, the rotation runs to the end.
    await storeClaudeKey(
      agentId,
      encryptSecret(keyring, credentialBinding(customerId, agentId, 'claude'), CLAUDE_KEY),
    );
    await rotateMasterKey(db, rotating, { batchSize: 1 });
    const versions = await db.select({ version: credentials.keyVersion }).from(credentials);
    expect(new Set(versions.map((row) => row.version))).toEqual(new Set([rotating.current.version]));
  });
});

import { randomBytes } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createKeyring, credentialBinding, encryptSecret, type Keyring } from '../../lib/crypto';
import { createCustomer } from '../../lib/customers';
import { credentials, customers } from '../../lib/db/schema';
import { judgeMasterKey, noReadableSecretsProblem, storedKeyVersions } from '../../lib/master-key-check';
import { createAgent } from '../policy/fixtures';
import { createTestDatabase, databaseTargets, type TestDatabase } from '../support/db';
import { differentKeyOfTheSameVersion } from '../support/master-keys';

const system = { actor: { type: 'system' as const }, requestId: undefined, ip: undefined };
const keyA = randomBytes(32).toString('base64');
const keyB = randomBytes(32).toString('base64');

describe.each(databaseTargets())('the start-up master key check on %s', (target) => {
  let database: TestDatabase;
  beforeEach(async () => {
    database = await createTestDatabase(target);
  });
  afterEach(async () => {
    await database.destroy();
  });

  async function storeSecretsUnder(keyring: Keyring): Promise<void> {
    const { db } = database.handle;
    // A customer holds its webhook signing secret; the agent gets a credential of its own.
    await createCustomer(db, system, keyring, { name: 'Acme' } as never);
    const agent = await createAgent(db);
    await db.insert(credentials).values({
      agentId: agent.id,
      customerId: agent.customerId,
      kind: 'claude',
      ...encryptSecret(keyring, credentialBinding(agent.customerId, agent.id, 'claude'), 'sk-ant-x'),
      last4: 'xxxx',
    });
  }

  it('counts every stored secret by key version, and says ok for an empty database', async () => {
    expect(judgeMasterKey(createKeyring(keyA), await storedKeyVersions(database.handle.db))).toEqual({
      kind: 'ok',
    });
    await storeSecretsUnder(createKeyring(keyA));
    const stored = await storedKeyVersions(database.handle.db);
    expect([...stored.byVersion]).toEqual([[createKeyring(keyA).current.version, 2]]);
    expect(judgeMasterKey(createKeyring(keyA), stored)).toEqual({ kind: 'ok' });
    // Mid-rotation: the old key as ENCRYPTION_MASTER_KEY_PREVIOUS reads them.
    expect(judgeMasterKey(createKeyring(keyB, keyA), stored)).toEqual({ kind: 'ok' });
  });

  it('tells a key that reads none of them from one that misses only some', async () => {
    const a = createKeyring(keyA);
    const b = createKeyring(keyB);
    await storeSecretsUnder(a);
    const onlyA = await storedKeyVersions(database.handle.db);
    const none = judgeMasterKey(b, onlyA);
    expect(none).toEqual({ kind: 'none-readable', total: 2, versions: [a.current.version] });
    if (none.kind !== 'none-readable') throw new Error('unreachable');
    const line = noReadableSecretsProblem(b, none, 'ENCRYPTION_MASTER_KEY');
    expect(line).toContain('ENCRYPTION_MASTER_KEY is not the key');
    expect(line).toContain(
      `decrypts none of its 2 stored secrets (under master key version ${a.current.version};`,
    );
    expect(line).toContain(`this key is version ${b.current.version}`);
    expect(line).toContain('npm run rotate-master-key');
    expect(line).not.toContain(keyA);
    expect(line).not.toContain(keyB);

    await storeSecretsUnder(b);
    expect(judgeMasterKey(b, await storedKeyVersions(database.handle.db))).toEqual({
      kind: 'some-unreadable',
      unreadable: 2,
      total: 4,
      versions: [a.current.version],
    });
  });

  it('tries the key on stored secrets: a wrong key whose version matches by chance reads none', async () => {
    await storeSecretsUnder(createKeyring(keyA));
    const alike = createKeyring(differentKeyOfTheSameVersion(keyA));
    expect(alike.current.version).toBe(createKeyring(keyA).current.version);
    const stored = await storedKeyVersions(database.handle.db);
    expect(stored.samples.get(alike.current.version)).toHaveLength(2);
    const verdict = judgeMasterKey(alike, stored);
    expect(verdict).toEqual({ kind: 'none-readable', total: 2, versions: [alike.current.version] });
    if (verdict.kind !== 'none-readable') throw new Error('unreachable');
    expect(noReadableSecretsProblem(alike, verdict, 'ENCRYPTION_MASTER_KEY')).toContain(
      `this key is version ${alike.current.version} as well, by chance)`,
    );
    // The right key as ENCRYPTION_MASTER_KEY_PREVIOUS, mid-rotation, still reads them.
    expect(judgeMasterKey(createKeyring(keyB, keyA), stored)).toEqual({ kind: 'ok' });
  });

  it('one damaged secret does not fail the key that reads the others', async () => {
    const a = createKeyring(keyA);
    await storeSecretsUnder(a);
    const { db } = database.handle;
    await db.update(credentials).set({ authTag: Buffer.alloc(16).toString('base64') });
    const stored = await storedKeyVersions(db);
    expect(judgeMasterKey(a, stored)).toEqual({ kind: 'ok' });
    // Damaged alone, it reads as a key that decrypts nothing: the check cannot tell the two apart.
    await db.update(customers).set({ webhookSecretAuthTag: Buffer.alloc(16).toString('base64') });
    expect(judgeMasterKey(a, await storedKeyVersions(db)).kind).toBe('none-readable');
  });
});

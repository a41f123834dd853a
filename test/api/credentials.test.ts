import { eq } from 'drizzle-orm';
import { describe, expect, it } from 'vitest';
import { readCredentialSecret } from '../../lib/credentials';
import { credentials } from '../../lib/db/schema';
import { databaseTargets } from '../support/db';
import { captureLogger } from '../support/services';
import { CLAUDE_KEY, json, TELEGRAM_TOKEN, useApiHarness } from './harness';

describe.each(databaseTargets())('credentials on %s', (target) => {
  const harness = useApiHarness(target);

  it('a secret set through the agent id in capitals is bound to the agent and decrypts', async () => {
    const { apiKey } = await harness.createCustomer();
    const agentId = await harness.createAgent(apiKey);
    const upper = agentId.toUpperCase();
    for (const [kind, body] of [
      ['telegram', { botToken: TELEGRAM_TOKEN }],
      ['claude', { apiKey: CLAUDE_KEY }],
    ] as const) {
      const res = await harness.call('PUT', `/api/v1/agents/${upper}/credentials/${kind}`, {
        key: apiKey,
        body,
      });
      expect(res.status, kind).toBe(200);
    }
    const { db, keyring } = harness.services;
    expect(await readCredentialSecret(db, keyring, agentId, 'telegram')).toBe(TELEGRAM_TOKEN);
    expect(await readCredentialSecret(db, keyring, agentId, 'claude')).toBe(CLAUDE_KEY);
  });

  it('a PUT or DELETE of a kind there is none of is a 400 naming param.kind, after the key is checked', async () => {
    const { apiKey } = await harness.createCustomer();
    const agentId = await harness.createAgent(apiKey);
    for (const method of ['PUT', 'DELETE']) {
      const res = await harness.call(method, `/api/v1/agents/${agentId}/credentials/openai`, {
        key: apiKey,
        ...(method === 'PUT' ? { body: { apiKey: CLAUDE_KEY } } : {}),
      });
      expect(res.status, method).toBe(400);
      const body = await json<{ error: { code: string; details: { issues: { field: string }[] } } }>(res);
      expect(body.error.code).toBe('validation_error');
      expect(body.error.details.issues.map((issue) => issue.field)).toEqual(['param.kind']);
      const anonymous = await harness.call(method, `/api/v1/agents/${agentId}/credentials/openai`, {
        key: null,
      });
      expect(anonymous.status, method).toBe(401);
    }
    // The kinds there are still answer, and nothing was stored by the refused call.
    const status = await harness.call('GET', `/api/v1/agents/${agentId}/credentials`, { key: apiKey });
    const credentialsOf = await json<{ credentials: Record<string, { configured: boolean }> }>(status);
    expect(Object.values(credentialsOf.credentials).map((credential) => credential.configured)).toEqual([
      false,
      false,
    ]);
    const put = await harness.call('PUT', `/api/v1/agents/${agentId}/credentials/claude`, {
      key: apiKey,
      body: { apiKey: CLAUDE_KEY },
    });
    expect(put.status).toBe(200);
  });

  it('stores both secrets encrypted and shows only their status', async () => {
    const { apiKey } = await harness.createCustomer();
    const agentId = await harness.createAgent(apiKey);
    const telegram = await harness.call('PUT', `/api/v1/agents/${agentId}/credentials/telegram`, {
      key: apiKey,
      body: { botToken: TELEGRAM_TOKEN, botUsername: '@acme_bot' },
    });
    expect(telegram.status).toBe(200);
    const telegramBody = await telegram.text();
    expect(telegramBody).not.toContain(TELEGRAM_TOKEN.split(':')[1]);
    expect(JSON.parse(telegramBody)).toEqual({
      credential: {
        kind: 'telegram',
        configured: true,
        last4: TELEGRAM_TOKEN.slice(-4),
        updatedAt: expect.any(String),
        validatedAt: null,
        valid: null,
        validation: null,
      },
    });
    const claude = await harness.call('PUT', `/api/v1/agents/${agentId}/credentials/claude`, {
      key: apiKey,
      body: { apiKey: CLAUDE_KEY },
    });
    expect(claude.status).toBe(200);
    expect(await claude.text()).not.toContain(CLAUDE_KEY.slice(0, 20));

    const status = await harness.call('GET', `/api/v1/agents/${agentId}/credentials`, { key: apiKey });
    const text = await status.text();
    expect(text).not.toContain(CLAUDE_KEY.slice(0, 20));
    expect(JSON.parse(text).credentials).toMatchObject({
      telegram: { configured: true, last4: TELEGRAM_TOKEN.slice(-4) },
      claude: { configured: true, last4: CLAUDE_KEY.slice(-4) },
    });

    const rows = await harness.services.db.select().from(credentials).where(eq(credentials.agentId, agentId));
    expect(rows).toHaveLength(2);
    for (const row of rows) {
      expect(JSON.stringify(row)).not.toContain(CLAUDE_KEY.slice(8, 30));
      expect(JSON.stringify(row)).not.toContain(TELEGRAM_TOKEN.split(':')[1]);
      expect(Buffer.from(row.iv, 'base64')).toHaveLength(12);
    }
    const { db, keyring } = harness.services;
    expect(await readCredentialSecret(db, keyring, agentId, 'telegram')).toBe(TELEGRAM_TOKEN);
    expect(await readCredentialSecret(db, keyring, agentId, 'claude')).toBe(CLAUDE_KEY);

    const agent = await json<{ agent: { botUsername: string } }>(
      await harness.call('GET', `/api/v1/agents/${agentId}`, { key: apiKey }),
    );
    expect(agent.agent.botUsername).toBe('acme_bot');
  });

  it('a new key is written with a fresh IV and resets validation, the same key changes nothing; delete removes it', async () => {
    const { apiKey } = await harness.createCustomer();
    const agentId = await harness.createAgent(apiKey);
    const path = `/api/v1/agents/${agentId}/credentials/claude`;
    await harness.call('PUT', path, { key: apiKey, body: { apiKey: CLAUDE_KEY } });
    const [first] = await harness.services.db
      .select()
      .from(credentials)
      .where(eq(credentials.agentId, agentId));
    await harness.services.db
      .update(credentials)
      .set({ validationStatus: 'valid', validatedAt: new Date() })
      .where(eq(credentials.agentId, agentId));
    // The key it has already: nothing is written, the validation stands.
    await harness.call('PUT', path, { key: apiKey, body: { apiKey: CLAUDE_KEY } });
    const [same] = await harness.services.db
      .select()
      .from(credentials)
      .where(eq(credentials.agentId, agentId));
    expect(same).toMatchObject({ iv: first?.iv, ciphertext: first?.ciphertext, validationStatus: 'valid' });
    await harness.call('PUT', path, { key: apiKey, body: { apiKey: `${CLAUDE_KEY}z` } });
    const [second] = await harness.services.db
      .select()
      .from(credentials)
      .where(eq(credentials.agentId, agentId));
    expect(second?.iv).not.toBe(first?.iv);
    expect(second?.ciphertext).not.toBe(first?.ciphertext);
    expect(second?.validationStatus).toBeNull();

    expect((await harness.call('DELETE', path, { key: apiKey })).status).toBe(204);
    const status = await json<{ credentials: { claude: { configured: boolean } } }>(
      await harness.call('GET', `/api/v1/agents/${agentId}/credentials`, { key: apiKey }),
    );
    expect(status.credentials.claude.configured).toBe(false);
  });

  it.each([
    ['telegram', { botToken: 'not-a-token' }, 'body.botToken'],
    ['telegram', { botToken: '123:short' }, 'body.botToken'],
    ['telegram', { botToken: TELEGRAM_TOKEN, extra: 1 }, 'extra'],
    ['telegram', {}, 'body.botToken'],
    ['claude', { apiKey: 'sk-live-123' }, 'body.apiKey'],
    ['claude', { apiKey: 'sk-ant-short' }, 'body.apiKey'],
    ['claude', { key: CLAUDE_KEY }, 'key'],
  ])('rejects a malformed %s credential %j with a clear 400', async (kind, body, field) => {
    const { apiKey } = await harness.createCustomer();
    const agentId = await harness.createAgent(apiKey);
    const res = await harness.call('PUT', `/api/v1/agents/${agentId}/credentials/${kind}`, {
      key: apiKey,
      body,
    });
    expect(res.status).toBe(400);
    const text = await res.text();
    expect(JSON.parse(text).error.message).toContain(field);
    expect(text).not.toContain('short');
  });

  it('never writes a secret to the logs', async () => {
    const capture = captureLogger('trace');
    const services = { ...harness.services, logger: capture.logger };
    const { createApp } = await import('../../api/app');
    const app = createApp(services);
    const { apiKey } = await harness.createCustomer();
    const agentId = await harness.createAgent(apiKey);
    await app.request(`/api/v1/agents/${agentId}/credentials/claude`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({ apiKey: CLAUDE_KEY }),
    });
    expect(capture.lines.length).toBeGreaterThan(0);
    const logged = JSON.stringify(capture.lines);
    expect(logged).not.toContain(CLAUDE_KEY.slice(8, 30));
    expect(logged).not.toContain(apiKey);
  });

  it('a ciphertext copied to another agent fails to decrypt', async () => {
    const { apiKey } = await harness.createCustomer({ plan: 'pro' });
    const source = await harness.createAgent(apiKey);
    const victim = await harness.createAgent(apiKey);
    await harness.call('PUT', `/api/v1/agents/${source}/credentials/claude`, {
      key: apiKey,
      body: { apiKey: CLAUDE_KEY },
    });
    await harness.call('PUT', `/api/v1/agents/${victim}/credentials/claude`, {
      key: apiKey,
      body: { apiKey: 'sk-ant-api03-otherkeyotherkeyotherkey0000' },
    });
    const [row] = await harness.services.db.select().from(credentials).where(eq(credentials.agentId, source));
    if (!row) throw new Error('no row');
    await harness.services.db
      .update(credentials)
      .set({ ciphertext: row.ciphertext, iv: row.iv, authTag: row.authTag })
      .where(eq(credentials.agentId, victim));
    const { db, keyring } = harness.services;
    await expect(readCredentialSecret(db, keyring, victim, 'claude')).rejects.toThrow(/failed to decrypt/);
  });
});

import { describe, expect, it } from 'vitest';
import type { ErrorBody } from '../../lib/errors';
import { DEFAULT_MODELS } from '../../lib/models';
import { databaseTargets } from '../support/db';
import { json, useApiHarness } from './harness';

interface AgentBody {
  agent: Record<string, unknown> & { id: string };
}

describe.each(databaseTargets())('agents on %s', (target) => {
  const harness = useApiHarness(target);

  it('creates an agent with sensible defaults', async () => {
    const { apiKey } = await harness.createCustomer({ plan: 'pro' });
    const res = await harness.call('POST', '/api/v1/agents', { key: apiKey, body: { name: 'Support' } });
    expect(res.status).toBe(201);
    expect((await json<AgentBody>(res)).agent).toEqual({
      id: expect.any(String),
      name: 'Support',
      systemPrompt: 'You are a helpful assistant.',
      model: DEFAULT_MODELS.sonnet,
      maxTokens: 1024,
      temperature: 0.7,
      telegramAllowFrom: [],
      telegramGroupPolicy: 'allowlist',
      telegramDmPolicy: 'pairing',
      botUsername: null,
      dailyTokenBudget: null,
      status: 'stopped',
      statusSince: expect.any(String),
      lastError: null,
      telegramBotUsername: null,
      lastMessageAt: null,
      createdAt: expect.any(String),
      updatedAt: expect.any(String),
    });
  });

  it('keeps temperature 0, normalises allowFrom, resolves the seed model names', async () => {
    const { apiKey } = await harness.createCustomer({ plan: 'pro' });
    const cases = [
      ['claude-sonnet-4-20250514', DEFAULT_MODELS.sonnet],
      ['claude-opus-4-20250514', DEFAULT_MODELS.opus],
      ['claude-haiku-3-5-20241022', DEFAULT_MODELS.haiku],
      [DEFAULT_MODELS.haiku, DEFAULT_MODELS.haiku],
    ] as const;
    for (const [requested, resolved] of cases) {
      const res = await harness.call('POST', '/api/v1/agents', {
        key: apiKey,
        body: {
          name: 'Exact',
          model: requested,
          temperature: 0,
          maxTokens: 256,
          telegramAllowFrom: ['@Alice_Smith', 123456789, '123456789', '@alice_smith'],
          telegramDmPolicy: 'allowlist',
          telegramGroupPolicy: 'disabled',
          dailyTokenBudget: 50000,
        },
      });
      expect(res.status).toBe(201);
      const { agent } = await json<AgentBody>(res);
      expect(agent).toMatchObject({
        model: resolved,
        temperature: 0,
        maxTokens: 256,
        telegramAllowFrom: ['@alice_smith', '123456789'],
        telegramDmPolicy: 'allowlist',
        telegramGroupPolicy: 'disabled',
        dailyTokenBudget: 50000,
      });
      await harness.call('DELETE', `/api/v1/agents/${agent.id}`, { key: apiKey });
    }
  });

  it('accepts a system prompt of exactly 10 KB of UTF-8 and refuses one byte more', async () => {
    const { apiKey } = await harness.createCustomer({ plan: 'pro' });
    // 'é' is two bytes in UTF-8: 5,120 of them are 10,240 bytes but only 5,120 characters.
    const exact = 'é'.repeat(5120);
    const ok = await harness.call('POST', '/api/v1/agents', {
      key: apiKey,
      body: { name: 'A', systemPrompt: exact },
    });
    expect(ok.status).toBe(201);
    const tooLong = await harness.call('POST', '/api/v1/agents', {
      key: apiKey,
      body: { name: 'B', systemPrompt: `${exact}x` },
    });
    expect(tooLong.status).toBe(400);
    expect((await json<ErrorBody>(tooLong)).error.message).toMatch(
      /^body\.systemPrompt: must be at most 10240 bytes/,
    );
  });

  it.each([
    [{ name: 'x', tools: [] }, 'unknown_field', 'tools'],
    [{ name: 'x', skills: ['web'] }, 'unknown_field', 'skills'],
    [{ name: 'x', routing: {} }, 'unknown_field', 'routing'],
    [{ name: 'x', files: ['/etc/passwd'] }, 'unknown_field', 'files'],
    [{ name: 'x', workspacePath: '/tmp' }, 'unknown_field', 'workspacePath'],
    [{ name: 'x', status: 'running' }, 'unknown_field', 'status'],
    [{}, 'validation_error', 'body.name'],
    [{ name: 'x', maxTokens: 255 }, 'validation_error', 'body.maxTokens'],
    [{ name: 'x', maxTokens: 8193 }, 'validation_error', 'body.maxTokens'],
    [{ name: 'x', temperature: 1.01 }, 'validation_error', 'body.temperature'],
    [{ name: 'x', temperature: -0.1 }, 'validation_error', 'body.temperature'],
    [{ name: 'x', temperature: '0.5' }, 'validation_error', 'body.temperature'],
    [{ name: 'x', telegramDmPolicy: 'everyone' }, 'validation_error', 'body.telegramDmPolicy'],
    [{ name: 'x', telegramGroupPolicy: 'pairing' }, 'validation_error', 'body.telegramGroupPolicy'],
    [{ name: 'x', telegramAllowFrom: ['alice'] }, 'validation_error', 'body.telegramAllowFrom.0'],
    [{ name: 'x', telegramAllowFrom: [-5] }, 'validation_error', 'body.telegramAllowFrom.0'],
    // Past 2^53 a JSON number has lost digits before anyone reads it.
    [{ name: 'x', telegramAllowFrom: [2 ** 53] }, 'validation_error', 'body.telegramAllowFrom.0'],
    [{ name: 'x', dailyTokenBudget: 0 }, 'validation_error', 'body.dailyTokenBudget'],
    [{ name: 'x', model: 'gpt-4o' }, 'validation_error', 'body.model'],
  ])('rejects %j', async (body, code, field) => {
    const { apiKey } = await harness.createCustomer({ plan: 'pro' });
    const res = await harness.call('POST', '/api/v1/agents', { key: apiKey, body });
    expect(res.status).toBe(400);
    const { error } = await json<ErrorBody>(res);
    expect(error.code).toBe(code);
    expect(error.message).toContain(field);
  });

  it.each([
    ['@ali', 'expected @username (5-32 letters, digits, _)'],
    ['@', 'expected @username (5-32 letters, digits, _)'],
    ['@1alice', 'expected @username (5-32 letters, digits, _)'],
    ['alice', 'expected a numeric Telegram user id or an @username'],
    ['-5', 'expected a numeric Telegram user id or an @username'],
    ['0123', 'expected a numeric Telegram user id or an @username'],
  ])(
    'telegramAllowFrom entry %j is refused with the message for what it looks like',
    async (entry, message) => {
      const { apiKey } = await harness.createCustomer();
      const { error } = await json<ErrorBody>(
        await harness.call('POST', '/api/v1/agents', {
          key: apiKey,
          body: { name: 'x', telegramAllowFrom: [entry] },
        }),
      );
      expect(error.message).toBe(`body.telegramAllowFrom.0: ${message}`);
    },
  );

  it('names refuse control and bidirectional-override characters, and keep any script and emoji', async () => {
    const { id, apiKey } = await harness.createCustomer();
    const agentId = await harness.createAgent(apiKey, { name: 'Before' });
    for (const name of [
      'bell\u0007',
      'esc\u001b[31m',
      'line\nbreak',
      'tab\there',
      'c1\u0085',
      '\u202Eevil',
      'iso\u2066late',
      'line1\u2028line2',
    ]) {
      for (const [method, path, key, body] of [
        ['POST', '/api/v1/agents', apiKey, { name }],
        ['PATCH', `/api/v1/agents/${agentId}`, apiKey, { name }],
        ['POST', '/api/v1/admin/customers', undefined, { name }],
        ['PATCH', `/api/v1/admin/customers/${id}`, undefined, { name }],
      ] as const) {
        const res = await harness.call(method, path, { key, body });
        expect(res.status, `${method} ${path} ${JSON.stringify(name)}`).toBe(400);
        expect((await json<ErrorBody>(res)).error.message).toBe(
          'body.name: must not contain control characters, line breaks or bidirectional overrides',
        );
      }
    }
    // Nothing a reader can see: a zero-width space, direction marks, a soft hyphen with a BOM.
    for (const name of ['\u200b', '\u200f\u200e', '\u00ad\ufeff\u200b']) {
      const res = await harness.call('POST', '/api/v1/agents', { key: apiKey, body: { name } });
      expect(res.status, JSON.stringify(name)).toBe(400);
      expect((await json<ErrorBody>(res)).error.message).toBe('body.name: must contain a visible character');
    }
    const agent = await json<{ agent: { name: string } }>(
      await harness.call('GET', `/api/v1/agents/${agentId}`, { key: apiKey }),
    );
    expect(agent.agent.name).toBe('Before');
    for (const name of ['مساعد الدعم', 'サポート 🤖', 'Ünïcødé-Bot_2']) {
      expect(
        (await harness.call('PATCH', `/api/v1/agents/${agentId}`, { key: apiKey, body: { name } })).status,
      ).toBe(200);
      expect((await harness.call('PATCH', `/api/v1/admin/customers/${id}`, { body: { name } })).status).toBe(
        200,
      );
    }
  });

  it('an unknown model lists the allowed ones', async () => {
    const { apiKey } = await harness.createCustomer();
    const { error } = await json<ErrorBody>(
      await harness.call('POST', '/api/v1/agents', { key: apiKey, body: { name: 'x', model: 'claude-2' } }),
    );
    expect(error.details?.allowedModels).toEqual(Object.values(DEFAULT_MODELS));
    for (const model of Object.values(DEFAULT_MODELS)) expect(error.message).toContain(model);
  });

  it("a cursor made up with another customer's agent id pages like any unknown id", async () => {
    const mine = await harness.createCustomer({ plan: 'pro' });
    const theirs = await harness.createCustomer({ plan: 'pro' });
    const older = await harness.createAgent(mine.apiKey, { name: 'older' });
    const foreign = await harness.createAgent(theirs.apiKey, { name: 'theirs' });
    const newer = await harness.createAgent(mine.apiKey, { name: 'newer' });
    const listAfter = async (id: string) => {
      const cursor = Buffer.from(`9999-12-31T00:00:00.000Z|${id}`).toString('base64url');
      const res = await harness.call('GET', `/api/v1/agents?cursor=${cursor}`, { key: mine.apiKey });
      return (await json<{ agents: { id: string }[] }>(res)).agents.map((agent) => agent.id);
    };
    const unknown = await listAfter('00000000-0000-4000-8000-000000000000');
    expect(unknown).toEqual([newer, older]);
    expect(await listAfter(foreign)).toEqual(unknown);
  });

  it('gets, lists, patches and deletes', async () => {
    const { apiKey } = await harness.createCustomer({ plan: 'pro' });
    const first = await harness.createAgent(apiKey, { name: 'one' });
    const second = await harness.createAgent(apiKey, { name: 'two' });
    const list = await json<{ agents: { id: string }[]; nextCursor: string | null }>(
      await harness.call('GET', '/api/v1/agents?limit=1', { key: apiKey }),
    );
    expect(list.agents.map((agent) => agent.id)).toEqual([second]);
    const next = await json<{ agents: { id: string }[]; nextCursor: string | null }>(
      await harness.call('GET', `/api/v1/agents?limit=1&cursor=${list.nextCursor}`, { key: apiKey }),
    );
    expect(next.agents.map((agent) => agent.id)).toEqual([first]);
    expect(next.nextCursor).toBeNull();

    const patched = await harness.call('PATCH', `/api/v1/agents/${first}`, {
      key: apiKey,
      body: { temperature: 0, name: 'renamed', botUsername: '@Acme_Bot' },
    });
    expect(patched.status).toBe(200);
    expect((await json<AgentBody>(patched)).agent).toMatchObject({
      temperature: 0,
      name: 'renamed',
      botUsername: 'Acme_Bot',
      maxTokens: 1024,
    });

    const refused = await harness.call('PATCH', `/api/v1/agents/${first}`, {
      key: apiKey,
      body: { tools: ['bash'] },
    });
    expect(refused.status).toBe(400);
    expect((await json<ErrorBody>(refused)).error.code).toBe('unknown_field');

    expect((await harness.call('DELETE', `/api/v1/agents/${first}`, { key: apiKey })).status).toBe(204);
    expect((await harness.call('GET', `/api/v1/agents/${first}`, { key: apiKey })).status).toBe(404);
  });

  it('enforces maxAgents with a clear 409, and records the refusal', async () => {
    const { apiKey } = await harness.createCustomer({ plan: 'free' });
    await harness.createAgent(apiKey);
    const res = await harness.call('POST', '/api/v1/agents', { key: apiKey, body: { name: 'second' } });
    expect(res.status).toBe(409);
    expect((await json<ErrorBody>(res)).error).toMatchObject({
      code: 'max_agents_reached',
      details: { maxAgents: 1 },
    });
    const log = await json<{ entries: { action: string; outcome: string }[] }>(
      await harness.call('GET', '/api/v1/audit-log?action=agent.create', { key: apiKey }),
    );
    expect(log.entries.map((entry) => entry.outcome).sort()).toEqual(['failure', 'success']);
  });

  it('enforces maxAgents under concurrent creates', async () => {
    const { id, apiKey } = await harness.createCustomer({ plan: 'pro', maxAgents: 3 });
    const results = await Promise.all(
      Array.from({ length: 10 }, (_, index) =>
        harness.call('POST', '/api/v1/agents', { key: apiKey, body: { name: `racer-${index}` } }),
      ),
    );
    const statuses = results.map((res) => res.status).sort();
    expect(statuses.filter((status) => status === 201)).toHaveLength(3);
    expect(statuses.filter((status) => status === 409)).toHaveLength(7);
    const list = await json<{ agents: unknown[] }>(
      await harness.call('GET', '/api/v1/agents?limit=100', { key: apiKey }),
    );
    expect(list.agents).toHaveLength(3);
    expect(id).toEqual(expect.any(String));
  });
});

import { describe, expect, it } from 'vitest';
import { buildWebhookEvent, WebhookEventSchema } from '../../lib/webhooks/events';

const agentId = '6f1d7c7e-6b55-4a7e-9d43-1b8f0c6f9a10';
const now = new Date('2026-03-04T05:06:07.089Z');

describe('buildWebhookEvent', () => {
  it('builds exactly { id, type, agentId, timestamp, data } with an ISO 8601 UTC timestamp', () => {
    const { event, body } = buildWebhookEvent('agent.started', agentId, { status: 'running' }, { now });
    expect(Object.keys(JSON.parse(body))).toEqual(['id', 'type', 'agentId', 'timestamp', 'data']);
    expect(JSON.parse(body)).toEqual(event);
    expect(event.timestamp).toBe('2026-03-04T05:06:07.089Z');
    expect(event.id).toMatch(/^[0-9a-f-]{36}$/);
    expect(WebhookEventSchema.parse(event)).toEqual(event);
  });

  it('keeps a given id (the same event retried or redelivered)', () => {
    const { event } = buildWebhookEvent('ping', agentId, {}, { id: 'evt_fixed', now });
    expect(event.id).toBe('evt_fixed');
  });

  it.each([
    ['agent.stopped', {}],
    ['agent.stopped', { reason: 'stopped by customer' }],
    ['agent.error', { code: 'telegram_token_revoked', message: 'Telegram rejected the bot token' }],
    [
      'message.processed',
      {
        chatId: -100123,
        inboundMessageId: '0b6f0a53-8d0c-4d7e-8a59-6a3a2d7c1e01',
        outboundMessageIds: ['0b6f0a53-8d0c-4d7e-8a59-6a3a2d7c1e02'],
        inputTokens: 120,
        outputTokens: 45,
        cacheReadTokens: 1500,
        cacheCreationTokens: 0,
        stopReason: 'end_turn',
        latencyMs: 1830,
      },
    ],
  ] as const)('accepts %s data %j', (type, data) => {
    const { event } = buildWebhookEvent(type, agentId, data as never, { now });
    expect(event.data).toEqual(data);
  });

  it.each([
    ['agent.started', {}],
    ['agent.started', { status: 'running', secret: 'leak' }],
    ['agent.error', { code: 'x' }],
    ['message.processed', { chatId: 1.5 }],
    ['ping', { extra: true }],
  ] as const)('refuses %s data %j', (type, data) => {
    expect(() => buildWebhookEvent(type, agentId, data as never, { now })).toThrow();
  });

  it('refuses an agent id that is not a UUID', () => {
    expect(() => buildWebhookEvent('ping', 'agent-1', {}, { now })).toThrow();
  });
});

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildWebhookEvent } from '../../lib/webhooks/events';
import { sendWebhookAttempt } from '../../lib/webhooks/send';
import { activeSigningSecrets, generateWebhookSecret } from '../../lib/webhooks/sign';
import { startWebhookReceiver, type WebhookReceiver } from '../support/webhook-receiver';

const agentId = '6f1d7c7e-6b55-4a7e-9d43-1b8f0c6f9a10';

describe('sendWebhookAttempt', () => {
  let receiver: WebhookReceiver;
  beforeAll(async () => {
    receiver = await startWebhookReceiver([{ status: 204 }]);
  });
  afterAll(async () => {
    await receiver.close();
  });

  it('signs each attempt at its own time and honours the rotation grace period', async () => {
    const previous = generateWebhookSecret();
    const current = generateWebhookSecret();
    const stored = { current, previous, previousExpiresAt: new Date(Date.now() + 60_000) };
    const { event, body } = buildWebhookEvent(
      'agent.stopped',
      agentId,
      { reason: 'stopped by customer' },
      { now: new Date() },
    );

    const during = await sendWebhookAttempt({
      url: receiver.url,
      id: event.id,
      body,
      secrets: activeSigningSecrets(stored, new Date()),
      allowPrivate: true,
    });
    const after = await sendWebhookAttempt({
      url: receiver.url,
      id: event.id,
      body,
      secrets: activeSigningSecrets(stored, new Date(Date.now() + 120_000)),
      allowPrivate: true,
    });

    expect([during.outcome, after.outcome]).toEqual(['success', 'success']);
    const [first, second] = receiver.requests;
    expect(first!.standardVerifies(previous)).toBe(true);
    expect(first!.standardVerifies(current)).toBe(true);
    expect(first!.seedVerifies(current)).toBe(true);
    expect(second!.standardVerifies(previous)).toBe(false);
    expect(second!.standardVerifies(current)).toBe(true);
    expect(second!.seedVerifies(current)).toBe(true);
    expect(second!.body).toBe(first!.body);
    expect(second!.headers['webhook-id']).toBe(event.id);
  });
});

import { Webhook } from 'standardwebhooks';
import { describe, expect, it } from 'vitest';
import {
  activeSigningSecrets,
  generateWebhookSecret,
  signPayload,
  verifyStandardWebhook,
  verifyWebhook,
  webhookSecretKey,
} from '../../lib/webhooks/sign';

const body = JSON.stringify({
  id: 'evt-1',
  type: 'ping',
  agentId: 'a',
  timestamp: '2026-01-01T00:00:00.000Z',
  data: {},
});

describe('generateWebhookSecret', () => {
  it('is whsec_ + 32 random bytes in base64, different every time', () => {
    const a = generateWebhookSecret();
    const b = generateWebhookSecret();
    expect(a).toMatch(/^whsec_[A-Za-z0-9+/]{43}=$/);
    expect(webhookSecretKey(a)).toHaveLength(32);
    expect(a).not.toBe(b);
  });

  it.each([
    ['no prefix', 'c2VjcmV0'],
    ['not base64', 'whsec_!!!!'],
    ['too short', `whsec_${Buffer.alloc(16).toString('base64')}`],
    ['too long', `whsec_${Buffer.alloc(65).toString('base64')}`],
  ])('refuses a secret with %s without echoing it', (_, secret) => {
    expect(() => webhookSecretKey(secret)).toThrowError(/webhook secret/);
    try {
      webhookSecretKey(secret);
    } catch (error) {
      expect((error as Error).message).not.toContain(secret);
    }
  });
});

describe('signPayload', () => {
  const current = generateWebhookSecret();
  const previous = generateWebhookSecret();
  const timestamp = new Date();

  it('signs the body for the seed snippet and the Standard Webhooks scheme', () => {
    const headers = signPayload({ id: 'evt-1', timestamp, body, secrets: { current } });
    expect(headers['x-openclaw-signature']).toMatch(/^[0-9a-f]{64}$/);
    expect(headers['webhook-id']).toBe('evt-1');
    expect(headers['webhook-timestamp']).toBe(String(Math.floor(timestamp.getTime() / 1000)));
    expect(headers['webhook-signature']).toMatch(/^v1,[A-Za-z0-9+/]{43}=$/);

    expect(verifyWebhook(body, headers['x-openclaw-signature'], current)).toBe(true);
    expect(verifyStandardWebhook({ body, headers, secret: current })).toBe(true);
    // The reference library agrees, byte for byte.
    expect(new Webhook(current).sign('evt-1', timestamp, body)).toBe(headers['webhook-signature']);
    expect(new Webhook(current).verify(body, headers)).toEqual(JSON.parse(body));
  });

  it('fails verification for a changed body, another secret, or a stale timestamp', () => {
    const headers = signPayload({ id: 'evt-1', timestamp, body, secrets: { current } });
    const other = generateWebhookSecret();
    expect(verifyWebhook(`${body} `, headers['x-openclaw-signature'], current)).toBe(false);
    expect(verifyWebhook(body, headers['x-openclaw-signature'], other)).toBe(false);
    expect(verifyWebhook(body, 'short', current)).toBe(false);
    expect(verifyStandardWebhook({ body: `${body} `, headers, secret: current })).toBe(false);
    expect(verifyStandardWebhook({ body, headers, secret: other })).toBe(false);
    expect(
      verifyStandardWebhook({ body, headers: { ...headers, 'webhook-id': 'evt-2' }, secret: current }),
    ).toBe(false);
    const later = new Date(timestamp.getTime() + 6 * 60_000);
    expect(verifyStandardWebhook({ body, headers, secret: current, now: later })).toBe(false);
    expect(() => new Webhook(current).verify(`${body} `, headers)).toThrow();
  });

  it('during a rotation lists both Standard signatures and puts the new secret in X-OpenClaw-Signature', () => {
    const headers = signPayload({ id: 'evt-1', timestamp, body, secrets: { current, previous } });
    expect(headers['webhook-signature'].split(' ')).toHaveLength(2);
    expect(verifyStandardWebhook({ body, headers, secret: current })).toBe(true);
    expect(verifyStandardWebhook({ body, headers, secret: previous })).toBe(true);
    expect(() => new Webhook(previous).verify(body, headers)).not.toThrow();
    expect(() => new Webhook(current).verify(body, headers)).not.toThrow();
    expect(verifyWebhook(body, headers['x-openclaw-signature'], current)).toBe(true);
    expect(verifyWebhook(body, headers['x-openclaw-signature'], previous)).toBe(false);
  });

  it('uses the previous secret only until its grace period ends', () => {
    const expiresAt = new Date('2026-01-02T00:00:00Z');
    const stored = { current, previous, previousExpiresAt: expiresAt };
    expect(activeSigningSecrets(stored, new Date('2026-01-01T23:59:59Z'))).toEqual({ current, previous });
    const after = activeSigningSecrets(stored, expiresAt);
    expect(after).toEqual({ current });
    const headers = signPayload({ id: 'evt-1', timestamp, body, secrets: after });
    expect(headers['webhook-signature'].split(' ')).toHaveLength(1);
    expect(verifyStandardWebhook({ body, headers, secret: previous })).toBe(false);
    expect(activeSigningSecrets({ current, previous: null, previousExpiresAt: null }, expiresAt)).toEqual({
      current,
    });
  });

  it('refuses an id that could be confused with the signed-content separator', () => {
    expect(() => signPayload({ id: 'a.b', timestamp, body, secrets: { current } })).toThrow(/webhook id/);
    expect(() => signPayload({ id: '', timestamp, body, secrets: { current } })).toThrow(/webhook id/);
  });
});

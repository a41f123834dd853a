import { describe, expect, it } from 'vitest';
import { ConfigError, parseConfig } from '../../lib/config';

const production = {
  NODE_ENV: 'production',
  ENCRYPTION_MASTER_KEY: Buffer.alloc(32, 1).toString('base64'),
  ADMIN_API_KEY: 'x'.repeat(32),
};

describe('WEBHOOK_ALLOW_PRIVATE_TARGETS', () => {
  it('defaults to true in development and test, false in production', () => {
    expect(parseConfig({}).webhooks.allowPrivateTargets).toBe(true);
    expect(parseConfig({ NODE_ENV: 'test' }).webhooks.allowPrivateTargets).toBe(true);
    expect(parseConfig(production).webhooks.allowPrivateTargets).toBe(false);
  });

  it('can be set either way', () => {
    expect(
      parseConfig({ ...production, WEBHOOK_ALLOW_PRIVATE_TARGETS: 'true' }).webhooks.allowPrivateTargets,
    ).toBe(true);
    expect(
      parseConfig({ NODE_ENV: 'development', WEBHOOK_ALLOW_PRIVATE_TARGETS: 'false' }).webhooks
        .allowPrivateTargets,
    ).toBe(false);
    expect(parseConfig({ WEBHOOK_ALLOW_PRIVATE_TARGETS: '' }).webhooks.allowPrivateTargets).toBe(true);
  });

  it('names the variable on a bad value', () => {
    expect(() => parseConfig({ WEBHOOK_ALLOW_PRIVATE_TARGETS: 'maybe' })).toThrowError(ConfigError);
    expect(() => parseConfig({ WEBHOOK_ALLOW_PRIVATE_TARGETS: 'maybe' })).toThrowError(
      /WEBHOOK_ALLOW_PRIVATE_TARGETS: expected true or false \(got "maybe"\)/,
    );
  });
});

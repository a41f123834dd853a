import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  createKeyring,
  credentialBinding,
  DecryptionError,
  decryptSecret,
  encryptSecret,
  secretFingerprint,
} from '../../lib/crypto';

const key = () => randomBytes(32).toString('base64');
const customerA = '11111111-1111-4111-8111-111111111111';
const customerB = '22222222-2222-4222-8222-222222222222';
const agent1 = '33333333-3333-4333-8333-333333333333';
const agent2 = '44444444-4444-4444-8444-444444444444';

describe('secrets at rest', () => {
  const keyring = createKeyring(key());

  it('round-trips, with a fresh 96-bit IV every time', () => {
    const binding = credentialBinding(customerA, agent1, 'claude');
    const first = encryptSecret(keyring, binding, 'sk-ant-secret');
    const second = encryptSecret(keyring, binding, 'sk-ant-secret');
    expect(Buffer.from(first.iv, 'base64')).toHaveLength(12);
    expect(first.iv).not.toBe(second.iv);
    expect(first.ciphertext).not.toBe(second.ciphertext);
    expect(decryptSecret(keyring, binding, first)).toBe('sk-ant-secret');
    expect(first.keyVersion).toBe(keyring.current.version);
  });

  it.each([
    ['another agent', credentialBinding(customerA, agent2, 'claude')],
    ['another kind', credentialBinding(customerA, agent1, 'telegram')],
    ['another customer (another derived key)', credentialBinding(customerB, agent1, 'claude')],
    [
      'another purpose (another derived key)',
      { ...credentialBinding(customerA, agent1, 'claude'), purpose: 'webhook-secret' as const },
    ],
  ])('fails to decrypt when moved to %s', (_, binding) => {
    const stored = encryptSecret(keyring, credentialBinding(customerA, agent1, 'claude'), 'sk-ant-secret');
    expect(() => decryptSecret(keyring, binding, stored)).toThrow(DecryptionError);
  });

  it('fails on a tampered ciphertext or tag', () => {
    const binding = credentialBinding(customerA, agent1, 'claude');
    const stored = encryptSecret(keyring, binding, 'sk-ant-secret');
    const flipped = Buffer.from(stored.ciphertext, 'base64');
    flipped[0] = (flipped[0] ?? 0) ^ 1;
    expect(() =>
      decryptSecret(keyring, binding, { ...stored, ciphertext: flipped.toString('base64') }),
    ).toThrow(DecryptionError);
    expect(() =>
      decryptSecret(keyring, binding, { ...stored, authTag: Buffer.alloc(16).toString('base64') }),
    ).toThrow(DecryptionError);
  });

  it('reads a ciphertext of the previous master key while rotating, not after', () => {
    const oldKey = key();
    const newKey = key();
    const binding = credentialBinding(customerA, agent1, 'claude');
    const stored = encryptSecret(createKeyring(oldKey), binding, 'sk-ant-secret');
    expect(decryptSecret(createKeyring(newKey, oldKey), binding, stored)).toBe('sk-ant-secret');
    expect(() => decryptSecret(createKeyring(newKey), binding, stored)).toThrow(/no master key of version/);
  });

  it('fingerprints are stable per key and differ across master keys', () => {
    const other = createKeyring(key());
    expect(secretFingerprint(keyring, 'telegram-token', 'x')).toBe(
      secretFingerprint(keyring, 'telegram-token', 'x'),
    );
    expect(secretFingerprint(keyring, 'telegram-token', 'x')).not.toBe(
      secretFingerprint(other, 'telegram-token', 'x'),
    );
  });
});

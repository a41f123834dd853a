import {
  createCipheriv,
  createDecipheriv,
  createHash,
  createHmac,
  hkdfSync,
  randomBytes,
  timingSafeEqual,
} from 'node:crypto';

/**
 * Secrets at rest: AES-256-GCM under a key derived per customer and purpose by HKDF-SHA256 from the
 * master key, a fresh 96-bit IV per write, and associated data that binds the ciphertext to the row
 * it belongs to (a ciphertext copied to another agent or kind fails to decrypt).
 */

export interface MasterKey {
  /** Identifies the master key a ciphertext was made with; derived from the key, so no state is needed. */
  version: number;
  key: Buffer;
}

export interface Keyring {
  current: MasterKey;
  /** The previous master key while `npm run rotate-master-key` moves everything to the current one. */
  previous?: MasterKey | undefined;
}

export interface EncryptedSecret {
  ciphertext: string;
  iv: string;
  authTag: string;
  keyVersion: number;
}

/** What a secret is bound to. `aad` names the exact row and field; `purpose` separates key uses. */
export interface SecretBinding {
  customerId: string;
  purpose: 'credential' | 'webhook-secret';
  aad: string;
}

/** 1..32767 (a smallint), from the key's own hash. Rotation refuses the rare new key that collides. */
export function masterKeyVersion(key: Buffer): number {
  return (
    (createHash('sha256').update('openclaw:key-version').update(key).digest().readUInt16BE(0) % 32767) + 1
  );
}

/**
 * A master key's 32 bytes, written as base64 (`openssl rand -base64 32`) or as 64 hex digits (what
 * Heroku's `secret` generator in app.json makes); undefined for anything else. The two cannot be
 * confused: 32 bytes are 44 characters of base64, and 64 characters of base64 are 48 bytes.
 */
export function decodeMasterKey(written: string): Buffer | undefined {
  const value = written.trim();
  if (/^[0-9a-fA-F]{64}$/.test(value)) return Buffer.from(value, 'hex');
  if (!/^[A-Za-z0-9+/_-]+={0,2}$/.test(value)) return undefined;
  const key = Buffer.from(value, 'base64');
  return key.length === 32 ? key : undefined;
}

export function masterKeyFrom(written: string): MasterKey {
  const key = decodeMasterKey(written);
  if (!key) throw new Error('master key must be 32 bytes, as base64 or 64 hex digits');
  return { key, version: masterKeyVersion(key) };
}

export function createKeyring(current: string, previous?: string): Keyring {
  return {
    current: masterKeyFrom(current),
    previous: previous ? masterKeyFrom(previous) : undefined,
  };
}

/** Derived keys by master key, then salt and info: HKDF costs ~0.1 ms, and every reply decrypts. */
const derivedKeys = new WeakMap<Buffer, Map<string, Buffer>>();
/** A bound on the cache per master key (two purposes per customer); past it, it starts over. */
const MAX_DERIVED_KEYS = 20_000;

/** HKDF-SHA256 of `master` with `salt` and `info`, 32 bytes, derived once per master key. */
function derivedKey(master: Buffer, salt: string, info: string): Buffer {
  let cache = derivedKeys.get(master);
  if (!cache) {
    cache = new Map();
    derivedKeys.set(master, cache);
  }
  const id = `${salt}\n${info}`;
  const cached = cache.get(id);
  if (cached) return cached;
  const key = Buffer.from(hkdfSync('sha256', master, salt, info, 32));
  if (cache.size >= MAX_DERIVED_KEYS) cache.clear();
  cache.set(id, key);
  return key;
}

function deriveKey(master: Buffer, binding: Pick<SecretBinding, 'customerId' | 'purpose'>): Buffer {
  return derivedKey(master, `openclaw:customer:${binding.customerId}`, `openclaw:v1:${binding.purpose}`);
}

export function encryptSecret(keyring: Keyring, binding: SecretBinding, plaintext: string): EncryptedSecret {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', deriveKey(keyring.current.key, binding), iv);
  cipher.setAAD(Buffer.from(binding.aad));
  const ciphertext = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
  return {
    ciphertext: ciphertext.toString('base64'),
    iv: iv.toString('base64'),
    authTag: cipher.getAuthTag().toString('base64'),
    keyVersion: keyring.current.version,
  };
}

export class DecryptionError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DecryptionError';
  }
}

export function decryptSecret(keyring: Keyring, binding: SecretBinding, stored: EncryptedSecret): string {
  const master = [keyring.current, keyring.previous].find((key) => key?.version === stored.keyVersion);
  if (!master) {
    throw new DecryptionError(`no master key of version ${stored.keyVersion} is configured`);
  }
  try {
    const decipher = createDecipheriv(
      'aes-256-gcm',
      deriveKey(master.key, binding),
      Buffer.from(stored.iv, 'base64'),
    );
    decipher.setAAD(Buffer.from(binding.aad));
    decipher.setAuthTag(Buffer.from(stored.authTag, 'base64'));
    return Buffer.concat([
      decipher.update(Buffer.from(stored.ciphertext, 'base64')),
      decipher.final(),
    ]).toString('utf8');
  } catch {
    // Never include the cause: it could carry key material in a debugger, and says nothing useful.
    throw new DecryptionError('secret failed to decrypt (wrong key or tampered/misplaced ciphertext)');
  }
}

/**
 * A keyed fingerprint of a secret: finds the same bot token on two agents without decrypting. Keyed
 * by the master key, so a leaked table does not allow offline guessing; recomputed on key rotation.
 */
export function secretFingerprint(keyring: Keyring, purpose: string, secret: string): string {
  return fingerprintUnder(keyring.current, purpose, secret);
}

/**
 * `secret`'s fingerprint under each master key of the keyring, by key version: a stored fingerprint
 * was made with the key its row is encrypted with (key rotation redoes both), so a presented secret
 * is compared with the one of the row's `key_version`.
 */
export function secretFingerprintsByVersion(
  keyring: Keyring,
  purpose: string,
  secret: string,
): Record<string, string> {
  const fingerprints: Record<string, string> = {};
  for (const master of [keyring.current, keyring.previous]) {
    if (master) fingerprints[master.version] = fingerprintUnder(master, purpose, secret);
  }
  return fingerprints;
}

function fingerprintUnder(master: MasterKey, purpose: string, secret: string): string {
  const key = derivedKey(master.key, 'openclaw:fingerprint', `openclaw:v1:${purpose}`);
  return createHmac('sha256', key).update(secret).digest('hex');
}

export function last4(secret: string): string {
  return secret.slice(-4);
}

/** The associated data binding an agent credential to its agent and kind. */
export function credentialBinding(customerId: string, agentId: string, kind: string): SecretBinding {
  return { customerId, purpose: 'credential', aad: `agent:${agentId}:credential:${kind}` };
}

/** The associated data binding a customer's webhook signing secret (current or previous slot). */
export function webhookSecretBinding(customerId: string, slot: 'current' | 'previous'): SecretBinding {
  return { customerId, purpose: 'webhook-secret', aad: `customer:${customerId}:webhook-secret:${slot}` };
}

/** Whether two secrets are equal, in time that says nothing of where they differ (hashes equalise lengths). */
export function sameSecret(a: string, b: string): boolean {
  return timingSafeEqual(createHash('sha256').update(a).digest(), createHash('sha256').update(b).digest());
}

import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

/**
 * Webhook signatures. Every delivery carries two schemes over the same raw body:
 *
 * - `X-OpenClaw-Signature`: lowercase hex HMAC-SHA256 of the raw body, keyed with the secret
 *   string exactly as the customer holds it (`whsec_...`), so the documented
 *   `verifyWebhook(payload, signature, secret)` snippet verifies it unchanged. During a rotation
 *   it is made with the NEW secret only (the snippet takes one secret).
 * - Standard Webhooks (https://www.standardwebhooks.com): `webhook-id`, `webhook-timestamp`
 *   (unix seconds) and `webhook-signature`, a space-separated list of `v1,<base64 HMAC-SHA256>`
 *   over `${id}.${timestamp}.${body}`, keyed with the base64-decoded bytes after `whsec_`. During
 *   a rotation it lists the signature under the current and under the previous secret.
 */

export const SECRET_PREFIX = 'whsec_';
const SECRET_BYTES = 32;
/** The spec's bounds for HMAC secrets: at least 24 bytes, at most 64. */
const MIN_SECRET_BYTES = 24;
const MAX_SECRET_BYTES = 64;

export const SIGNATURE_HEADER = 'x-openclaw-signature';
export const STANDARD_HEADERS = {
  id: 'webhook-id',
  timestamp: 'webhook-timestamp',
  signature: 'webhook-signature',
} as const;

/** A new signing secret: `whsec_` + 32 random bytes in base64. Shown to the customer once. */
export function generateWebhookSecret(): string {
  return `${SECRET_PREFIX}${randomBytes(SECRET_BYTES).toString('base64')}`;
}

/** The HMAC key bytes of a `whsec_` secret. Throws on anything else (never echoing the secret). */
export function webhookSecretKey(secret: string): Buffer {
  if (!secret.startsWith(SECRET_PREFIX)) throw new Error('webhook secret must start with whsec_');
  const encoded = secret.slice(SECRET_PREFIX.length);
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(encoded)) throw new Error('webhook secret is not valid base64');
  const key = Buffer.from(encoded, 'base64');
  if (key.length < MIN_SECRET_BYTES || key.length > MAX_SECRET_BYTES) {
    throw new Error(`webhook secret must hold ${MIN_SECRET_BYTES} to ${MAX_SECRET_BYTES} bytes`);
  }
  return key;
}

export interface SigningSecrets {
  current: string;
  /** The secret being rotated out, only while its grace period lasts (see `activeSigningSecrets`). */
  previous?: string | undefined;
}

/** Picks the secrets to sign with at `now`: the previous one only until its grace period ends. */
export function activeSigningSecrets(
  stored: { current: string; previous?: string | null; previousExpiresAt?: Date | null },
  now: Date,
): SigningSecrets {
  const inGrace =
    stored.previous && stored.previousExpiresAt && stored.previousExpiresAt.getTime() > now.getTime();
  return inGrace ? { current: stored.current, previous: stored.previous! } : { current: stored.current };
}

export interface SignInput {
  /** The event id; the same on every retry (`webhook-id`). Must not contain a full stop. */
  id: string;
  /** When this attempt is made; a retry signs again with a new timestamp. */
  timestamp: Date;
  /** The exact bytes sent. */
  body: string;
  secrets: SigningSecrets;
}

export type SignatureHeaders = {
  [SIGNATURE_HEADER]: string;
  'webhook-id': string;
  'webhook-timestamp': string;
  'webhook-signature': string;
};

function standardSignature(secret: string, id: string, seconds: number, body: string): string {
  const mac = createHmac('sha256', webhookSecretKey(secret)).update(`${id}.${seconds}.${body}`);
  return `v1,${mac.digest('base64')}`;
}

/** The signature headers for one delivery attempt. */
export function signPayload({ id, timestamp, body, secrets }: SignInput): SignatureHeaders {
  if (!id || id.includes('.') || /\s/.test(id))
    throw new Error('webhook id must be non-empty without "." or spaces');
  const seconds = Math.floor(timestamp.getTime() / 1000);
  const signatures = [standardSignature(secrets.current, id, seconds, body)];
  if (secrets.previous && secrets.previous !== secrets.current) {
    signatures.push(standardSignature(secrets.previous, id, seconds, body));
  }
  return {
    [SIGNATURE_HEADER]: createHmac('sha256', secrets.current).update(body).digest('hex'),
    'webhook-id': id,
    'webhook-timestamp': String(seconds),
    'webhook-signature': signatures.join(' '),
  };
}

function safeEqual(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

/**
 * The snippet customers use: HMAC-SHA256(secret, raw body) in hex against `X-OpenClaw-Signature`.
 * Identical in result to the documented snippet, but a signature of the wrong length is `false`
 * rather than the exception `timingSafeEqual` throws.
 */
export function verifyWebhook(payload: string, signature: string, secret: string): boolean {
  const expected = createHmac('sha256', secret).update(payload).digest('hex');
  return safeEqual(Buffer.from(signature), Buffer.from(expected));
}

export interface StandardVerifyInput {
  body: string;
  headers: Record<string, string | undefined>;
  secret: string;
  /** Allowed clock difference for `webhook-timestamp`; the spec's libraries use 5 minutes. */
  toleranceSeconds?: number;
  now?: Date;
}

/** Standard Webhooks verification: any listed `v1` signature under `secret`, fresh timestamp. */
export function verifyStandardWebhook(input: StandardVerifyInput): boolean {
  const lower = Object.fromEntries(
    Object.entries(input.headers).map(([name, value]) => [name.toLowerCase(), value]),
  );
  const id = lower[STANDARD_HEADERS.id];
  const timestamp = lower[STANDARD_HEADERS.timestamp];
  const header = lower[STANDARD_HEADERS.signature];
  if (!id || !timestamp || !header || !/^\d+$/.test(timestamp)) return false;
  const seconds = Number(timestamp);
  const now = Math.floor((input.now ?? new Date()).getTime() / 1000);
  if (Math.abs(now - seconds) > (input.toleranceSeconds ?? 300)) return false;
  let key: Buffer;
  try {
    key = webhookSecretKey(input.secret);
  } catch {
    return false;
  }
  const expected = createHmac('sha256', key).update(`${id}.${seconds}.${input.body}`).digest();
  return header.split(' ').some((entry) => {
    const [version, value] = entry.split(',', 2);
    return version === 'v1' && value !== undefined && safeEqual(Buffer.from(value, 'base64'), expected);
  });
}

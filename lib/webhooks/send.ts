import type { Dispatcher } from 'undici';
import { type DeliveryResult, deliverOnce } from './deliver';
import { webhookEventIdFor } from './events';
import { type SigningSecrets, signPayload } from './sign';

export interface WebhookAttemptInput {
  url: string;
  /** The event id (`webhook-id`), the same on every attempt. */
  id: string;
  /** The stored event body (`buildWebhookEvent(...).body`), sent byte for byte. */
  body: string;
  /** `activeSigningSecrets(stored, now)`: the previous secret only during its grace period. */
  secrets: SigningSecrets;
  allowPrivate: boolean;
  /** When the attempt is made; defaults to now. Signed as `webhook-timestamp`. */
  now?: Date;
  timeoutMs?: number;
  dispatcher?: Dispatcher;
}

/**
 * One attempt as the delivery function makes it: sign with a fresh timestamp, then deliver.
 *
 * @example
 * const result = await step.run(`deliver-${attempt}`, () =>
 *   sendWebhookAttempt({ url, id: event.id, body, secrets, allowPrivate: config.webhooks.allowPrivateTargets }),
 * );
 * if (result.outcome === 'retry') {
 *   const wait = webhookRetryDelayMs(attempt + 1, result.retryAfterMs); // Inngest's attempt is 0-based
 *   if (wait !== undefined) throw new RetryAfterError(result.error ?? 'delivery failed', wait);
 * }
 */
export function sendWebhookAttempt(input: WebhookAttemptInput): Promise<DeliveryResult> {
  const headers = signPayload({
    // Rows stored before ids were made safe carry the raw key: signed under its safe form.
    id: webhookEventIdFor(input.id),
    timestamp: input.now ?? new Date(),
    body: input.body,
    secrets: input.secrets,
  });
  return deliverOnce({
    url: input.url,
    body: input.body,
    headers,
    allowPrivate: input.allowPrivate,
    ...(input.timeoutMs !== undefined ? { timeoutMs: input.timeoutMs } : {}),
    ...(input.dispatcher ? { dispatcher: input.dispatcher } : {}),
  });
}

import { createHash } from 'node:crypto';
import { AppError } from './errors';
import { AGENT_SETTING_KEYS, type Agent } from './schemas/agents';
import type { Customer } from './schemas/customers';

/**
 * The strong ETag of an agent's settings (what a PATCH writes): a client that read them sends it
 * back as If-Match, and a PATCH over a change it did not see (a pairing approval adding a sender
 * to telegramAllowFrom, another client's edit) is refused instead of silently undoing it. Status
 * and activity are left out: a message arriving must not fail a settings edit.
 */
export function agentEtag(agent: Agent): string {
  return etagOf(AGENT_SETTING_KEYS.map((key) => [key, agent[key]]));
}

/** What an operator's PATCH sets on a customer; the customer's own webhook URL change counts too. */
const CUSTOMER_SETTING_KEYS = [
  'name',
  'email',
  'plan',
  'maxAgents',
  'status',
  'webhookUrl',
  'limits',
] as const;

/**
 * The strong ETag of a customer's settings, as for an agent: two operators editing one customer (one
 * raising the plan, the other suspending it from an old read) do not silently undo each other.
 */
export function customerEtag(customer: Customer): string {
  return etagOf(CUSTOMER_SETTING_KEYS.map((key) => [key, customer[key]]));
}

function etagOf(settings: unknown[]): string {
  return `"${createHash('sha256').update(JSON.stringify(settings)).digest('base64url').slice(0, 27)}"`;
}

/**
 * Throws 412 precondition_failed unless an If-Match header (RFC 9110 §13.1.1) matches: `*`, or a
 * list holding the current ETag. A weak tag (`W/"…"`) never matches, as the RFC's strong
 * comparison requires.
 */
export function checkIfMatch(
  ifMatch: string | undefined,
  current: string,
  subject: 'agent' | 'customer' = 'agent',
): void {
  if (ifMatch === undefined) return;
  const tags = ifMatch.split(',').map((tag) => tag.trim());
  if (tags.includes('*') || tags.includes(current)) return;
  if (tags.includes(`W/${current}`)) {
    // The current tag, sent weak: nothing changed, the client only marked it so.
    throw new AppError(
      'precondition_failed',
      `If-Match compares strongly, so a weak ETag (W/"…") never matches: send the ETag as the ${subject}'s answer gave it, without W/.`,
      { details: { etag: current } },
    );
  }
  throw new AppError(
    'precondition_failed',
    `The ${subject} changed since you read it: If-Match does not match its ETag. GET it again and re-apply your change.`,
    { details: { etag: current } },
  );
}

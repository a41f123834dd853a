/**
 * Who an agent answers on Telegram: OpenClaw's DM and group policies over one `allowFrom` list.
 *
 * DMs (`telegramDmPolicy`):
 * - `open`: anyone.
 * - `allowlist`: only senders in `allowFrom`; others are ignored.
 * - `pairing` (default): senders in `allowFrom` are answered; an unknown sender gets a pairing code
 *   that the customer approves, which adds the sender's id to `allowFrom`.
 * - `disabled`: no DMs at all.
 *
 * Groups and supergroups (`telegramGroupPolicy`) answer only messages addressed to the bot (mention,
 * reply to the bot, command for it: decided by the Telegram parser and handed in as a boolean):
 * - `open`: anyone in the group.
 * - `allowlist` (default): only senders in `allowFrom`.
 * - `disabled`: never.
 *
 * Channel posts are never answered: a channel has no sender to hold a conversation with.
 *
 * `allowFrom` entries are numeric Telegram user ids (`"123456789"`) or usernames (`"@alice"`): the API
 * stores only these. OpenClaw's other forms (`"*"` for everyone, bare names, `tg:` prefixes, ids as
 * numbers) are understood too, for rows written outside the API. A listed id keeps a sender allowed
 * after they change their username; a listed username follows the name, so ids are the safer entry
 * (a username can be given up and taken by someone else).
 */

export type TelegramDmPolicy = 'pairing' | 'allowlist' | 'open' | 'disabled';
export type TelegramGroupPolicy = 'open' | 'allowlist' | 'disabled';
export type TelegramChatType = 'private' | 'group' | 'supergroup' | 'channel';

export interface AccessSettings {
  telegramDmPolicy: TelegramDmPolicy;
  telegramGroupPolicy: TelegramGroupPolicy;
  telegramAllowFrom: readonly string[];
}

export interface AccessContext {
  chatType: TelegramChatType;
  senderId: number;
  senderUsername?: string | null | undefined;
  /** For group messages: whether the message is meant for the bot. Ignored in DMs. */
  addressedToBot: boolean;
}

export type IgnoreReason = 'dm_disabled' | 'not_allowed' | 'group_disabled' | 'not_addressed' | 'channel';

export type AccessDecision =
  | { action: 'reply' }
  | { action: 'pairing' }
  | { action: 'ignore'; reason: IgnoreReason };

/** Everyone: the OpenClaw wildcard entry. */
export const ALLOW_EVERYONE = '*';

const USER_ID = /^\d{1,20}$/;
/** Telegram usernames: 5 to 32 of a-z, 0-9 and `_`, starting with a letter (4 for auctioned ones). */
const USERNAME = /^[a-z][a-z0-9_]{3,31}$/;
/** OpenClaw accepts `telegram:` and `tg:` in front of an entry, in any case. */
const PREFIX = /^(?:telegram|tg):/i;

/**
 * The canonical form of one `allowFrom` entry, or null when it is not one:
 * `" 0123 "` -> `"123"`, `"@Alice_B"` / `"alice_b"` / `"tg:@alice_b"` -> `"@alice_b"`, `"*"` -> `"*"`.
 */
export function normaliseAllowFromEntry(entry: string | number): string | null {
  // String(): a row written outside the API may hold a number, as OpenClaw configs list ids.
  const trimmed = String(entry).trim().replace(PREFIX, '').trim();
  if (trimmed === ALLOW_EVERYONE) return ALLOW_EVERYONE;
  if (USER_ID.test(trimmed)) {
    const id = trimmed.replace(/^0+(?=\d)/, '');
    return id === '0' ? null : id;
  }
  const name = (trimmed.startsWith('@') ? trimmed.slice(1) : trimmed).toLowerCase();
  return USERNAME.test(name) ? `@${name}` : null;
}

/** Whether the sender is in `allowFrom`: by numeric id, or by username case-insensitively. */
export function matchesAllowFrom(
  allowFrom: readonly (string | number)[],
  senderId: number,
  username?: string | null,
): boolean {
  const id = String(senderId);
  const handle = username ? `@${username.replace(/^@/, '').toLowerCase()}` : undefined;
  for (const raw of allowFrom) {
    const entry = normaliseAllowFromEntry(raw);
    if (entry === null) continue;
    if (entry === ALLOW_EVERYONE || entry === id || (handle !== undefined && entry === handle)) return true;
  }
  return false;
}

/** What to do with one inbound message, before anything else (quota, Claude) is looked at. */
export function decideAccess(settings: AccessSettings, context: AccessContext): AccessDecision {
  const allowed = () =>
    matchesAllowFrom(settings.telegramAllowFrom, context.senderId, context.senderUsername);
  switch (context.chatType) {
    case 'private':
      switch (settings.telegramDmPolicy) {
        case 'open':
          return { action: 'reply' };
        case 'disabled':
          return { action: 'ignore', reason: 'dm_disabled' };
        case 'allowlist':
          return allowed() ? { action: 'reply' } : { action: 'ignore', reason: 'not_allowed' };
        case 'pairing':
          return allowed() ? { action: 'reply' } : { action: 'pairing' };
      }
      break;
    case 'group':
    case 'supergroup':
      if (settings.telegramGroupPolicy === 'disabled') return { action: 'ignore', reason: 'group_disabled' };
      if (!context.addressedToBot) return { action: 'ignore', reason: 'not_addressed' };
      if (settings.telegramGroupPolicy === 'open') return { action: 'reply' };
      return allowed() ? { action: 'reply' } : { action: 'ignore', reason: 'not_allowed' };
    case 'channel':
      return { action: 'ignore', reason: 'channel' };
  }
  // Unreachable for well-typed input; a value from outside the types is refused, never answered.
  return { action: 'ignore', reason: context.chatType === 'private' ? 'dm_disabled' : 'channel' };
}

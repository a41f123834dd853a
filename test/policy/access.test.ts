import { describe, expect, it } from 'vitest';
import {
  type AccessDecision,
  type AccessSettings,
  decideAccess,
  matchesAllowFrom,
  normaliseAllowFromEntry,
  type TelegramDmPolicy,
  type TelegramGroupPolicy,
} from '../../lib/policy/access';

const DM_POLICIES: TelegramDmPolicy[] = ['pairing', 'allowlist', 'open', 'disabled'];
const GROUP_POLICIES: TelegramGroupPolicy[] = ['open', 'allowlist', 'disabled'];

/** allowFrom lists one sender by id and another by username (stored in another case, with a prefix). */
const ALLOW_FROM = ['111', 'tg:@Bob_Smith'];
const SENDERS = {
  'listed by id (username changed)': { senderId: 111, senderUsername: 'renamed_alice' },
  'listed by username': { senderId: 222, senderUsername: 'BOB_smith' },
  unknown: { senderId: 333, senderUsername: 'mallory' },
} as const;
type Sender = keyof typeof SENDERS;

const reply: AccessDecision = { action: 'reply' };
const pairing: AccessDecision = { action: 'pairing' };
const ignore = (reason: Extract<AccessDecision, { action: 'ignore' }>['reason']): AccessDecision => ({
  action: 'ignore',
  reason,
});

// Private chats: only the DM policy and the sender matter.
const DM_TABLE: [TelegramDmPolicy, Sender, AccessDecision][] = [
  ['open', 'listed by id (username changed)', reply],
  ['open', 'listed by username', reply],
  ['open', 'unknown', reply],
  ['allowlist', 'listed by id (username changed)', reply],
  ['allowlist', 'listed by username', reply],
  ['allowlist', 'unknown', ignore('not_allowed')],
  ['pairing', 'listed by id (username changed)', reply],
  ['pairing', 'listed by username', reply],
  ['pairing', 'unknown', pairing],
  ['disabled', 'listed by id (username changed)', ignore('dm_disabled')],
  ['disabled', 'listed by username', ignore('dm_disabled')],
  ['disabled', 'unknown', ignore('dm_disabled')],
];

describe.each(DM_TABLE)('a DM with dm policy %s from a sender %s', (dmPolicy, sender, expected) => {
  it.each(GROUP_POLICIES)(`is ${JSON.stringify(expected)} whatever the group policy (%s)`, (groupPolicy) => {
    const settings: AccessSettings = {
      telegramDmPolicy: dmPolicy,
      telegramGroupPolicy: groupPolicy,
      telegramAllowFrom: ALLOW_FROM,
    };
    for (const addressedToBot of [true, false]) {
      expect(decideAccess(settings, { chatType: 'private', ...SENDERS[sender], addressedToBot })).toEqual(
        expected,
      );
    }
  });
});

// Groups and supergroups: the group policy, the sender, and whether the message is for the bot.
const GROUP_TABLE: [TelegramGroupPolicy, Sender, boolean, AccessDecision][] = [
  ['open', 'listed by id (username changed)', true, reply],
  ['open', 'listed by username', true, reply],
  ['open', 'unknown', true, reply],
  ['open', 'listed by id (username changed)', false, ignore('not_addressed')],
  ['open', 'listed by username', false, ignore('not_addressed')],
  ['open', 'unknown', false, ignore('not_addressed')],
  ['allowlist', 'listed by id (username changed)', true, reply],
  ['allowlist', 'listed by username', true, reply],
  ['allowlist', 'unknown', true, ignore('not_allowed')],
  ['allowlist', 'listed by id (username changed)', false, ignore('not_addressed')],
  ['allowlist', 'listed by username', false, ignore('not_addressed')],
  ['allowlist', 'unknown', false, ignore('not_addressed')],
  ['disabled', 'listed by id (username changed)', true, ignore('group_disabled')],
  ['disabled', 'listed by username', true, ignore('group_disabled')],
  ['disabled', 'unknown', true, ignore('group_disabled')],
  ['disabled', 'listed by id (username changed)', false, ignore('group_disabled')],
  ['disabled', 'listed by username', false, ignore('group_disabled')],
  ['disabled', 'unknown', false, ignore('group_disabled')],
];

describe.each(GROUP_TABLE)(
  'a group message with group policy %s from a sender %s, addressed to the bot: %s',
  (groupPolicy, sender, addressedToBot, expected) => {
    it.each(DM_POLICIES)(
      `is ${JSON.stringify(expected)} in groups and supergroups whatever the dm policy (%s)`,
      (dmPolicy) => {
        const settings: AccessSettings = {
          telegramDmPolicy: dmPolicy,
          telegramGroupPolicy: groupPolicy,
          telegramAllowFrom: ALLOW_FROM,
        };
        for (const chatType of ['group', 'supergroup'] as const) {
          expect(decideAccess(settings, { chatType, ...SENDERS[sender], addressedToBot })).toEqual(expected);
        }
      },
    );
  },
);

describe('channel posts', () => {
  it('are never answered, under every policy, from every sender', () => {
    for (const dmPolicy of DM_POLICIES)
      for (const groupPolicy of GROUP_POLICIES)
        for (const sender of Object.values(SENDERS))
          for (const addressedToBot of [true, false])
            expect(
              decideAccess(
                { telegramDmPolicy: dmPolicy, telegramGroupPolicy: groupPolicy, telegramAllowFrom: ['*'] },
                { chatType: 'channel', ...sender, addressedToBot },
              ),
            ).toEqual(ignore('channel'));
  });
});

describe('allowFrom edge cases', () => {
  const settings = (allowFrom: string[]): AccessSettings => ({
    telegramDmPolicy: 'allowlist',
    telegramGroupPolicy: 'allowlist',
    telegramAllowFrom: allowFrom,
  });

  it('an empty allowFrom allows nobody under allowlist, and sends everyone to pairing', () => {
    const context = {
      chatType: 'private',
      senderId: 1,
      senderUsername: 'alice',
      addressedToBot: false,
    } as const;
    expect(decideAccess(settings([]), context)).toEqual(ignore('not_allowed'));
    expect(decideAccess({ ...settings([]), telegramDmPolicy: 'pairing' }, context)).toEqual(pairing);
  });

  it('"*" allows everyone', () => {
    expect(decideAccess(settings(['*']), { chatType: 'group', senderId: 9, addressedToBot: true })).toEqual(
      reply,
    );
  });

  it('a sender without a username is matched by id only', () => {
    expect(matchesAllowFrom(['@alice'], 5)).toBe(false);
    expect(matchesAllowFrom(['@alice', '5'], 5)).toBe(true);
    expect(matchesAllowFrom(['@alice'], 5, null)).toBe(false);
  });

  it('a username entry does not match a numeric id, nor an id entry a username', () => {
    expect(matchesAllowFrom(['@alice'], 123, 'bob')).toBe(false);
    expect(matchesAllowFrom(['123'], 1234, '123')).toBe(false);
    expect(matchesAllowFrom(['alice'], 1, '@ALICE')).toBe(true);
  });

  it('a numeric entry, as a row written outside the API may hold, matches that id', () => {
    expect(matchesAllowFrom([42, 7], 7)).toBe(true);
    expect(matchesAllowFrom([42], 7, 'bob')).toBe(false);
  });

  it('invalid entries match nobody', () => {
    expect(matchesAllowFrom(['', '   ', '@', '-100123', '12ab', '@a b'], 100123, 'a b')).toBe(false);
  });
});

describe('normaliseAllowFromEntry', () => {
  it.each([
    ['123456789', '123456789'],
    [' 0042 ', '42'],
    ['tg:123', '123'],
    ['TELEGRAM: 123', '123'],
    ['@Alice_B', '@alice_b'],
    ['alice_b', '@alice_b'],
    ['Telegram:@Alice_B', '@alice_b'],
    ['*', '*'],
    ['', null],
    ['0', null],
    ['-1001234', null],
    ['@', null],
    ['@ab', null],
    ['@1alice', null],
    ['@alice-b', null],
    [`@${'a'.repeat(33)}`, null],
    ['123456789012345678901', null],
  ])('%j -> %j', (entry, expected) => {
    expect(normaliseAllowFromEntry(entry)).toBe(expected);
  });
});

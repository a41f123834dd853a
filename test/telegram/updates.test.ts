import { describe, expect, it } from 'vitest';
import {
  attachmentOf,
  isAddressedToBot,
  isBotCommandText,
  messageText,
  parseCommand,
  stripBotMention,
  TelegramUpdateSchema,
  updateMessage,
} from '../../lib/telegram/updates';
import { buildUpdate } from '../support/fake-telegram';

const bot = { id: 777, username: 'Helper_Bot' };
const from = { id: 5, first_name: 'Ann', username: 'ann' };

const messageOf = (update: unknown) => {
  const parsed = TelegramUpdateSchema.parse(update);
  const m = updateMessage(parsed);
  if (!m) throw new Error('no message');
  return m.message;
};

describe('TelegramUpdateSchema', () => {
  it('accepts real updates with extra fields and keeps them', () => {
    const update = { ...buildUpdate.privateText({ from, text: 'hi' }), some_future_field: { x: 1 } };
    const parsed = TelegramUpdateSchema.parse(update);
    expect(parsed.message?.text).toBe('hi');
    expect((parsed as Record<string, unknown>).some_future_field).toEqual({ x: 1 });
  });

  it('reports edited messages as edited', () => {
    const parsed = TelegramUpdateSchema.parse(
      buildUpdate.editedPrivateText({ from, text: 'fixed', messageId: 3 }),
    );
    expect(updateMessage(parsed)).toMatchObject({ edited: true, message: { text: 'fixed', message_id: 3 } });
  });

  it('rejects an update without update_id', () => {
    expect(TelegramUpdateSchema.safeParse({ message: {} }).success).toBe(false);
  });

  it('gives unique update ids', () => {
    const ids = Array.from({ length: 20 }, () => buildUpdate.privateText({ from, text: 'x' }).update_id);
    expect(new Set(ids).size).toBe(20);
  });
});

describe('isAddressedToBot', () => {
  it.each([
    ['private chat', buildUpdate.privateText({ from, text: 'hello' }), true],
    [
      '@mention, other case',
      buildUpdate.groupMention({ chatId: -1, from, botUsername: 'helper_bot', rest: 'hi' }),
      true,
    ],
    [
      'mention of another bot',
      buildUpdate.groupMention({ chatId: -1, from, botUsername: 'other_bot', rest: 'hi' }),
      false,
    ],
    [
      'text_mention of the bot id',
      buildUpdate.groupTextMention({ chatId: -1, from, bot: { id: 777, first_name: 'Helper' }, rest: 'hi' }),
      true,
    ],
    [
      'text_mention of someone else',
      buildUpdate.groupTextMention({ chatId: -1, from, bot: { id: 778, first_name: 'X' }, rest: 'hi' }),
      false,
    ],
    [
      '/command@bot',
      buildUpdate.groupCommand({ chatId: -1, from, command: 'help', botUsername: 'HELPER_BOT' }),
      true,
    ],
    [
      '/command@otherbot',
      buildUpdate.groupCommand({ chatId: -1, from, command: 'help', botUsername: 'other_bot' }),
      false,
    ],
    ['a bare command of the bot', buildUpdate.groupCommand({ chatId: -1, from, command: 'reset' }), true],
    [
      'a bare command the bot does not have',
      buildUpdate.groupCommand({ chatId: -1, from, command: 'weather' }),
      false,
    ],
    [
      'a command of the bot later in the text',
      buildUpdate.groupText({
        chatId: -1,
        from,
        text: 'try /help',
        entities: [{ type: 'bot_command', offset: 4, length: 5 }],
      }),
      false,
    ],
    [
      'reply to the bot',
      buildUpdate.groupReplyToBot({ chatId: -1, from, bot: { id: 777, first_name: 'Helper' }, text: 'and?' }),
      true,
    ],
    [
      'reply to someone else',
      buildUpdate.groupReplyToBot({ chatId: -1, from, bot: { id: 1, first_name: 'Z' }, text: 'and?' }),
      false,
    ],
    ['plain group chatter', buildUpdate.groupText({ chatId: -1, from, text: 'helper_bot is nice' }), false],
  ])('%s', (_name, update, expected) => {
    expect(isAddressedToBot(messageOf(update), bot)).toBe(expected);
  });

  it("in a forum topic the bot created, a message is not addressed to it by Telegram's implicit reply to the topic", () => {
    const botUser = { id: 777, first_name: 'Helper', is_bot: true };
    const inTopic = (text: string, replyTo: Record<string, unknown>) => {
      const update = buildUpdate.groupReplyToBot({ chatId: -1, from, bot: botUser, text });
      return messageOf({
        ...update,
        message: {
          ...update.message,
          chat: { ...update.message.chat, type: 'supergroup', is_forum: true },
          message_thread_id: 55,
          is_topic_message: true,
          reply_to_message: { chat: update.message.chat, date: 1, from: botUser, ...replyTo },
        },
      });
    };
    const opening = { message_id: 55, forum_topic_created: { name: 'Orders', icon_color: 1 } };
    expect(isAddressedToBot(inTopic('chatter in the topic', opening), bot)).toBe(false);
    expect(
      isAddressedToBot(inTopic('a real reply to the bot', { message_id: 60, text: 'an answer' }), bot),
    ).toBe(true);
  });

  it('reads a caption with its caption_entities: a photo captioned @bot is addressed, with /cmd@bot too', () => {
    const mention = buildUpdate.groupMention({
      chatId: -1,
      from,
      botUsername: 'helper_bot',
      rest: 'what is it?',
    });
    const command = buildUpdate.groupCommand({
      chatId: -1,
      from,
      command: 'help',
      botUsername: 'helper_bot',
    });
    const chatter = buildUpdate.groupText({ chatId: -1, from, text: 'look at this' });
    expect(isAddressedToBot(messageOf(buildUpdate.asPhoto(mention)), bot)).toBe(true);
    expect(isAddressedToBot(messageOf(buildUpdate.asPhoto(command)), bot)).toBe(true);
    expect(isAddressedToBot(messageOf(buildUpdate.asPhoto(chatter)), bot)).toBe(false);
    const photo = messageOf(buildUpdate.asPhoto(mention));
    expect(messageText(photo)).toEqual({ text: '@helper_bot what is it?', entities: [expect.anything()] });
    expect(attachmentOf(photo)).toBe('a photo');
    expect(attachmentOf(messageOf(mention))).toBeUndefined();
  });

  it('matches a mention after non-BMP characters (UTF-16 offsets)', () => {
    const text = '😀😀 @helper_bot hi';
    const update = buildUpdate.groupText({
      chatId: -1,
      from,
      text,
      entities: [{ type: 'mention', offset: 5, length: 11 }],
    });
    expect(isAddressedToBot(messageOf(update), bot)).toBe(true);
  });
});

describe('parseCommand', () => {
  it.each([
    ['/start', { command: 'start', args: '' }],
    ['/help', { command: 'help', args: '' }],
    ['/reset now', { command: 'reset', args: 'now' }],
    ['/NEW', { command: 'new', args: '' }],
    ['/start@helper_bot payload', { command: 'start', args: 'payload' }],
    ['/start@other_bot', undefined],
    ['/unknown', undefined],
    ['hello /start', undefined],
    ['', undefined],
    [undefined, undefined],
  ])('%j', (text, expected) => {
    expect(parseCommand(text, 'Helper_Bot')).toEqual(expected);
  });
});

describe('isBotCommandText', () => {
  it('is one of our commands for any bot it names, as ingress stores is_command', () => {
    expect(isBotCommandText('/help@helper_bot')).toBe(true);
    expect(isBotCommandText('/reset@other_bot')).toBe(true);
    expect(isBotCommandText(' /start payload')).toBe(true);
    expect(isBotCommandText('/weather@helper_bot')).toBe(false);
    expect(isBotCommandText('say /help')).toBe(false);
    expect(isBotCommandText(undefined)).toBe(false);
  });
});

describe('stripBotMention', () => {
  it('removes the bot mention only', () => {
    expect(stripBotMention('@Helper_Bot what about @ann?', 'helper_bot')).toBe('what about @ann?');
    expect(stripBotMention('hi @helper_bot, and @helper_bot2 or ann@helper_bot.com', 'helper_bot')).toBe(
      'hi, and @helper_bot2 or ann@helper_bot.com',
    );
    expect(stripBotMention('ask  @helper_bot  this', '@helper_bot')).toBe('ask this');
    expect(stripBotMention('/ask@helper_bot the time', 'helper_bot')).toBe('/ask the time');
  });

  it("keeps the user's newlines and indentation: code pasted in a group reaches Claude as typed", () => {
    const code = 'def f():\n    return  1\n\n\tdone';
    expect(
      stripBotMention(`@helper_bot why does this fail?\n\n\`\`\`py\n${code}\n\`\`\``, 'helper_bot'),
    ).toBe(`why does this fail?\n\n\`\`\`py\n${code}\n\`\`\``);
    expect(stripBotMention('first line @helper_bot\nsecond line', 'helper_bot')).toBe(
      'first line\nsecond line',
    );
  });
});

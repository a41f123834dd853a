import { describe, expect, it } from 'vitest';
import {
  BOT_COMMANDS,
  commandText,
  helpText,
  isBotCommandName,
  resetText,
  startText,
} from '../../lib/conversation/commands';

describe('command texts', () => {
  it('/start greets with the agent name', () => {
    expect(startText('Ada')).toContain("I'm Ada.");
    expect(startText('Ada')).toContain('/help');
    expect(startText('  ')).toContain("I'm your assistant.");
  });

  it('/help lists every command with its description', () => {
    const text = helpText('Ada');
    expect(text).toContain('Ada');
    for (const command of ['/start', '/help', '/reset', '/new']) expect(text).toContain(command);
    expect(text.split('\n').filter((line) => line.startsWith('/'))).toEqual([
      '/start - Say hello',
      '/help - What this bot understands',
      '/reset - Forget the conversation so far',
      '/new - Start a new conversation',
    ]);
  });

  it('/reset and /new confirm that the conversation starts afresh', () => {
    expect(resetText('reset')).toMatch(/^Conversation reset\./);
    expect(resetText('new')).toMatch(/^New conversation started\./);
    expect(resetText()).toBe(resetText('reset'));
  });

  it('answers each known command by name', () => {
    expect(commandText('start', 'Ada')).toBe(startText('Ada'));
    expect(commandText('help', 'Ada')).toBe(helpText('Ada'));
    expect(commandText('reset', 'Ada')).toBe(resetText('reset'));
    expect(commandText('new', 'Ada')).toBe(resetText('new'));
  });

  it('knows exactly its four commands, as setMyCommands wants them', () => {
    expect(BOT_COMMANDS.map((entry) => entry.command)).toEqual(['start', 'help', 'reset', 'new']);
    for (const entry of BOT_COMMANDS) {
      expect(entry.command).toMatch(/^[a-z0-9_]{1,32}$/);
      expect(entry.description.length).toBeGreaterThanOrEqual(1);
      expect(entry.description.length).toBeLessThanOrEqual(256);
    }
    expect(isBotCommandName('reset')).toBe(true);
    expect(isBotCommandName('/reset')).toBe(false);
    expect(isBotCommandName('settings')).toBe(false);
  });
});

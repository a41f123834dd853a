/**
 * What the bot answers to its own commands. Pure: the reply pipeline decides when a message is a
 * command for this bot (lib/telegram) and does what the command does (`resetConversation` for /reset
 * and /new); these are only the words. Plain text, no parse mode.
 */

export type BotCommandName = 'start' | 'help' | 'reset' | 'new';

/** For Telegram's setMyCommands: the menu users see next to the text field. */
export const BOT_COMMANDS: ReadonlyArray<{ command: BotCommandName; description: string }> = [
  { command: 'start', description: 'Say hello' },
  { command: 'help', description: 'What this bot understands' },
  { command: 'reset', description: 'Forget the conversation so far' },
  { command: 'new', description: 'Start a new conversation' },
];

export function isBotCommandName(name: string): name is BotCommandName {
  return BOT_COMMANDS.some((entry) => entry.command === name);
}

export function startText(agentName: string): string {
  return `Hello! I'm ${displayName(agentName)}. Send me a message and I'll answer. Type /help to see what else I understand.`;
}

export function helpText(agentName: string): string {
  return [
    `${displayName(agentName)} answers your messages. In a group, mention me or reply to one of my messages.`,
    '',
    ...BOT_COMMANDS.map((entry) => `/${entry.command} - ${entry.description}`),
  ].join('\n');
}

export function resetText(command: 'reset' | 'new' = 'reset'): string {
  return command === 'new'
    ? 'New conversation started. I no longer remember what we said before.'
    : 'Conversation reset. I no longer remember what we said before.';
}

/** The answer to a command of this bot, by name (without the slash or @botname). */
export function commandText(command: BotCommandName, agentName: string): string {
  switch (command) {
    case 'start':
      return startText(agentName);
    case 'help':
      return helpText(agentName);
    case 'reset':
    case 'new':
      return resetText(command);
  }
}

function displayName(agentName: string): string {
  return agentName.trim() || 'your assistant';
}

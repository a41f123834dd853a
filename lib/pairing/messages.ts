/** What the bot says to a sender during pairing. Plain text (no parse mode), so nothing needs escaping. */

export function pairingCodeMessage(input: {
  agentName: string;
  code: string;
  telegramUserId: number;
  expiresAt: Date;
  now: Date;
}): string {
  const minutes = Math.max(1, Math.ceil((input.expiresAt.getTime() - input.now.getTime()) / 60_000));
  return [
    `${input.agentName} only talks to people its owner has approved.`,
    '',
    `Your pairing code: ${input.code}`,
    `Your Telegram user id: ${input.telegramUserId}`,
    '',
    `Send the code to the owner of this bot; it expires in ${minutes} minute${minutes === 1 ? '' : 's'}.`,
  ].join('\n');
}

export function pairingLimitMessage(agentName: string): string {
  return `${agentName} has too many pending access requests right now. Please try again in an hour.`;
}

export function pairingApprovedMessage(agentName: string): string {
  return `You now have access to ${agentName}. Send a message to start.`;
}

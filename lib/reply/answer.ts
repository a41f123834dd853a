import { and, eq, inArray, sql } from 'drizzle-orm';
import { answerTimeoutMs, createClaudeClient } from '../claude/client';
import { type ClaudeErrorKind, classifyClaudeError } from '../claude/errors';
import { generateReply } from '../claude/reply';
import { buildConversation } from '../conversation/history';
import { decryptCredentialRow, SECRET_UNCHANGED } from '../credentials';
import type { Keyring } from '../crypto';
import type { Database } from '../db/client';
import { preparedQuery } from '../db/prepared';
import { agents, credentials } from '../db/schema';
import type { TelegramChatType } from '../policy/access';
import { createTelegramApi } from '../telegram/api';
import {
  balanceFences,
  formatForTelegram,
  TELEGRAM_MESSAGE_LIMIT,
  type TelegramChunk,
} from '../telegram/chunk';
import { escapeHtml } from '../telegram/format';
import { withTyping } from '../telegram/typing';
import type { InboundRef, ReplyTarget } from './types';

export interface AnswerDeps {
  db: Database;
  keyring: Keyring;
  anthropicBaseUrl: string;
  telegramApiRoot: string;
  /** Per-request timeout of the Claude call (default `answerTimeoutMs` of the agent's maxTokens). */
  timeoutMs?: number | undefined;
}

export interface Answer {
  text: string;
  model: string;
  inputTokens: number;
  outputTokens: number;
  cacheReadTokens: number;
  cacheCreationTokens: number;
  stopReason: string | null;
}

export type AnswerResult = { ok: true; answer: Answer } | { ok: false; error: ClaudeErrorKind };

/** The agent with its Claude key and bot token, in one read (a row per credential). */
const readAgentWithSecrets = preparedQuery((db) =>
  db
    .select({ agent: agents, credential: credentials })
    .from(agents)
    .leftJoin(
      credentials,
      and(eq(credentials.agentId, agents.id), inArray(credentials.kind, ['claude', 'telegram'])),
    )
    .where(eq(agents.id, sql.placeholder('agentId')))
    .prepare('reply_read_agent_with_secrets'),
);

/** What the user reads when Claude answers with no text at all (a refusal, say): never silence. */
export const EMPTY_ANSWER_TEXT = "Sorry, I don't have an answer to that.";

/**
 * Asks Claude for the answer to one inbound message, with "typing…" shown in the chat meanwhile: the
 * agent's model, maxTokens, temperature and system prompt, its decrypted key, and the chat's history
 * within the model's context. Errors come back
 * classified (retry after, retry, invalid credential...) for the caller's retry policy; an invalid key
 * is also recorded on the credential, so the customer sees it in GET /agents/:id/credentials.
 */
export async function generateAnswer(
  deps: AnswerDeps,
  ref: InboundRef,
  input: { text: string; chatType: TelegramChatType; target: ReplyTarget },
): Promise<AnswerResult> {
  const rows = await readAgentWithSecrets(deps.db).execute({ agentId: ref.agentId });
  const agent = rows[0]?.agent;
  if (!agent) return { ok: false, error: { kind: 'fatal', message: 'the agent was deleted' } };
  const secrets: Partial<Record<'claude' | 'telegram', string>> = {};
  for (const { credential } of rows) {
    if (credential)
      secrets[credential.kind as 'claude' | 'telegram'] = decryptCredentialRow(deps.keyring, credential);
  }
  const key = secrets.claude;
  if (!key) return { ok: false, error: { kind: 'invalid_credential', status: 401 } };
  const typingApi = secrets.telegram
    ? createTelegramApi(secrets.telegram, { apiRoot: deps.telegramApiRoot, timeoutMs: 10_000 })
    : undefined;
  const { target } = input;
  const work = askClaude(deps, ref, input, agent, key);
  if (!typingApi) return work;
  return withTyping(
    typingApi,
    target.chatId,
    work,
    target.typingThreadId === undefined ? {} : { messageThreadId: target.typingThreadId },
  );
}

async function askClaude(
  deps: AnswerDeps,
  ref: InboundRef,
  input: { text: string; chatType: TelegramChatType },
  agent: typeof agents.$inferSelect,
  key: string,
): Promise<AnswerResult> {
  const conversation = await buildConversation(deps.db, {
    agentId: ref.agentId,
    chatId: ref.chatId,
    currentMessageId: ref.messageId,
    currentText: input.text,
    chatType: input.chatType,
    botUsername: agent.telegramBotUsername ?? agent.botUsername ?? undefined,
    model: agent.model,
    maxTokens: agent.maxTokens,
    systemPrompt: agent.systemPrompt,
  });
  try {
    const reply = await generateReply({
      client: createClaudeClient(key, {
        baseURL: deps.anthropicBaseUrl,
        timeoutMs: deps.timeoutMs ?? answerTimeoutMs(agent.maxTokens),
      }),
      model: agent.model,
      system: agent.systemPrompt,
      messages: conversation.messages,
      maxTokens: agent.maxTokens,
      temperature: agent.temperature,
    });
    return {
      ok: true,
      answer: {
        text: reply.text === '' ? EMPTY_ANSWER_TEXT : reply.text,
        model: agent.model,
        inputTokens: reply.inputTokens,
        outputTokens: reply.outputTokens,
        cacheReadTokens: reply.cacheReadTokens,
        cacheCreationTokens: reply.cacheCreationTokens,
        stopReason: reply.stopReason,
      },
    };
  } catch (error) {
    const kind = classifyClaudeError(error);
    if (kind.kind === 'invalid_credential') {
      await markClaudeCredentialInvalid(
        deps.db,
        ref.agentId,
        `Anthropic rejected the API key (${kind.status})`,
      );
    }
    return { ok: false, error: kind };
  }
}

/** Records that Anthropic refused the agent's key, as a failed validation would. */
export async function markClaudeCredentialInvalid(
  db: Database,
  agentId: string,
  reason: string,
): Promise<void> {
  await db
    .update(credentials)
    .set({
      validationStatus: 'invalid',
      validationReason: reason,
      validatedAt: new Date(),
      ...SECRET_UNCHANGED,
    })
    .where(and(eq(credentials.agentId, agentId), eq(credentials.kind, 'claude')));
}

/**
 * The Telegram messages of an answer; never none (Markdown that renders to nothing, a lone rule, an
 * empty code block...).
 */
export function answerChunks(text: string, options: { cutShort?: boolean } = {}): TelegramChunk[] {
  const formatted = formatForTelegram(text);
  const chunks =
    formatted.length > 0
      ? formatted
      : [{ html: escapeHtml(EMPTY_ANSWER_TEXT), plain: EMPTY_ANSWER_TEXT, markdown: EMPTY_ANSWER_TEXT }];
  return options.cutShort ? withCutShortNote(chunks) : chunks;
}

/** Said after an answer Claude stopped at the agent's maxTokens, so it does not pass for a whole one. */
export const CUT_SHORT_NOTE = '(answer cut short)';

/**
 * The note after the last chunk's formatting (outside any code block the cut left open), in that
 * chunk while it fits Telegram's limit, else as a chunk of its own.
 */
function withCutShortNote(chunks: TelegramChunk[]): TelegramChunk[] {
  const last = chunks.at(-1) as TelegramChunk;
  const note = { html: `<i>${CUT_SHORT_NOTE}</i>`, plain: CUT_SHORT_NOTE, markdown: `_${CUT_SHORT_NOTE}_` };
  // In the history too, the note is not read as part of a code block the cut left open.
  const closed = balanceFences([last.markdown])[0] ?? last.markdown;
  const before = chunks.slice(0, -1);
  if (last.plain.length + 2 + note.plain.length > TELEGRAM_MESSAGE_LIMIT) {
    return [...before, { ...last, markdown: closed }, note];
  }
  return [
    ...before,
    {
      html: `${last.html}\n\n${note.html}`,
      plain: `${last.plain}\n\n${note.plain}`,
      markdown: `${closed}\n\n${note.markdown}`,
    },
  ];
}

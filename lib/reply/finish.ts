import { and, eq, isNotNull, or } from 'drizzle-orm';
import type { Database } from '../db/client';
import { agents, telegramMessages } from '../db/schema';
import type { SendEvent } from '../jobs';
import { emitCustomerEvent } from '../webhooks/settings';
import { replyTargetOfUpdate, settleInbound } from './decide';
import { type ReplyUsage, type SendDeps, sendReplyChunk, storeOutbound } from './send';
import type { AgentErrorNotice, InboundRef } from './types';

export interface FinishDeps {
  db: Database;
  sendEvent: SendEvent;
}

/**
 * Closes a run that answered (or tried to): the inbound message leaves `processing`, the customer gets
 * `message.processed` for an answer that went out, and `agent.error` when the decision carried one
 * (quota, budget). An answer Claude wrote but Telegram refused (blocked) is kept as a failed outbound
 * row, so its tokens still count against the daily budget. `runId` makes the webhook event ids unique
 * per run and stable across the step's retries.
 */
export async function finishReply(
  deps: FinishDeps,
  input: {
    ref: InboundRef;
    runId: string;
    settle: 'answered' | 'ignored' | 'failed';
    outboundIds: string[];
    /** Claude's usage when an answer was generated; `undelivered` is its text when nothing was sent. */
    usage?: ReplyUsage | undefined;
    undelivered?: string | undefined;
    /** Claude's stop_reason when it answered (`max_tokens`: cut at the agent's maxTokens). */
    stopReason?: string | null | undefined;
    agentError?: AgentErrorNotice | undefined;
    now: Date;
  },
): Promise<{ latencyMs: number }> {
  const { db } = deps;
  const { ref, usage } = input;
  if (usage && input.undelivered !== undefined && input.outboundIds.length === 0) {
    await keepUndeliveredAnswer(db, { ref, text: input.undelivered, usage });
  }
  const receivedAt = await settleInbound(db, ref.messageId, input.settle);
  const latencyMs = Math.max(0, input.now.getTime() - (receivedAt?.getTime() ?? input.now.getTime()));

  if (input.settle === 'answered' && input.outboundIds.length > 0) {
    await emitCustomerEvent(db, deps.sendEvent, {
      customerId: ref.customerId,
      agentId: ref.agentId,
      type: 'message.processed',
      data: {
        chatId: ref.chatId,
        inboundMessageId: ref.messageId,
        outboundMessageIds: input.outboundIds,
        inputTokens: usage?.inputTokens ?? 0,
        outputTokens: usage?.outputTokens ?? 0,
        cacheReadTokens: usage?.cacheReadTokens ?? 0,
        cacheCreationTokens: usage?.cacheCreationTokens ?? 0,
        stopReason: input.stopReason ?? null,
        latencyMs,
      },
      eventId: `message-processed-${input.runId}`,
      occurredAt: input.now,
    });
  }
  if (input.agentError) {
    await emitCustomerEvent(db, deps.sendEvent, {
      customerId: ref.customerId,
      agentId: ref.agentId,
      type: 'agent.error',
      data: input.agentError,
      eventId: `agent-error-${input.runId}`,
      occurredAt: input.now,
    });
  }
  return { latencyMs };
}

/**
 * Keeps an answer Claude wrote that reached nobody (the user blocked the bot, or every send of its first
 * chunk failed) as a failed outbound row with its usage, so its tokens still count against the daily
 * budget and in usage. Once per inbound message: a retried step does not count the tokens twice.
 */
export async function keepUndeliveredAnswer(
  db: Database,
  input: { ref: InboundRef; text: string; usage: ReplyUsage },
): Promise<void> {
  const { ref } = input;
  const [kept] = await db
    .select({ id: telegramMessages.id })
    .from(telegramMessages)
    .where(
      and(
        eq(telegramMessages.agentId, ref.agentId),
        eq(telegramMessages.chatId, ref.chatId),
        eq(telegramMessages.replyToId, ref.messageId),
        isNotNull(telegramMessages.inputTokens),
      ),
    )
    .limit(1);
  if (kept) return;
  await storeOutbound(db, {
    ref,
    telegramMessageId: null,
    text: input.text,
    status: 'failed',
    usage: input.usage,
  });
}

/** Said once when every retry is spent, so the user is not left waiting in silence. */
export const APOLOGY_TEXT = "Sorry, I couldn't answer that just now. Please try again in a little while.";

/**
 * The end of a run whose retries are spent: the agent's last error is set; unless the message was
 * settled meanwhile, it becomes `failed` (claimed atomically, so a retried failure handler apologises
 * at most once) and the user gets one short apology (best effort: a blocked bot or a revoked token just
 * means no apology); then the customer gets `agent.error` (idempotent). The apology comes before the
 * event, so an engine that refuses the event does not keep the user waiting: the retried handler only
 * hands the event over, and past its retries the webhook outbox sweep does.
 */
export async function failReply(
  deps: FinishDeps & SendDeps,
  input: {
    ref: InboundRef;
    runId: string;
    error: AgentErrorNotice;
    now: Date;
  },
): Promise<{ apologised: boolean }> {
  const { db } = deps;
  const { ref, error } = input;
  await db
    .update(agents)
    .set({ lastError: error.message.slice(0, 500), lastErrorCode: error.code, lastErrorAt: input.now })
    .where(eq(agents.id, ref.agentId));
  const [failed] = await db
    .update(telegramMessages)
    .set({ status: 'failed' })
    .where(
      and(
        eq(telegramMessages.id, ref.messageId),
        // Only a message this run holds (or that no run got to claim): an answered one is left alone.
        or(
          eq(telegramMessages.status, 'received'),
          and(eq(telegramMessages.status, 'processing'), eq(telegramMessages.replyRunId, input.runId)),
        ),
      ),
    )
    .returning({ update: telegramMessages.update });
  const target = failed ? replyTargetOfUpdate(failed.update) : undefined;
  const sent = target
    ? await sendReplyChunk(deps, {
        ref,
        target,
        chunk: { plain: APOLOGY_TEXT, markdown: APOLOGY_TEXT },
        first: true,
      }).catch(() => undefined)
    : undefined;

  await emitCustomerEvent(db, deps.sendEvent, {
    customerId: ref.customerId,
    agentId: ref.agentId,
    type: 'agent.error',
    data: { code: error.code, message: error.message.slice(0, 500) },
    eventId: `agent-error-${input.runId}`,
    occurredAt: input.now,
  });
  return { apologised: sent?.status === 'sent' };
}

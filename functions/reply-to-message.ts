import { NonRetriableError, RetryAfterError } from 'inngest';
import type { ClaudeErrorKind } from '../lib/claude/errors';
import { answerChunks, generateAnswer } from '../lib/reply/answer';
import { ALBUM_WAIT_TURNS, decideInbound } from '../lib/reply/decide';
import { replyFailureNotice } from '../lib/reply/failure';
import { failReply, finishReply, keepUndeliveredAnswer } from '../lib/reply/finish';
import { type ChunkResult, sendReplyChunk } from '../lib/reply/send';
import { sendEventVia } from './client';
import { telegramUpdateReceived } from './events';
import type { FunctionDeps } from './index';
import { sendFailureError } from './send-failure';

/** Seconds a message waits for the earlier ones of its chat before it is answered regardless. */
const MAX_TURN_WAITS = 120;

/** A chunk's send as the engine should see it: sent or blocked are results, the rest are errors. */
function settleChunk(result: ChunkResult) {
  if (result.status === 'sent' || result.status === 'blocked') return result;
  throw sendFailureError(result);
}

/** A failed Claude call as the engine should see it (the code before the colon reaches agent.error). */
function claudeError(error: ClaudeErrorKind): Error {
  switch (error.kind) {
    case 'retry_after':
      return new RetryAfterError(`Anthropic answered ${error.status}`, error.seconds * 1000);
    case 'retryable':
      return new Error(`Anthropic could not answer: ${error.message}`);
    case 'invalid_credential':
      return new NonRetriableError(
        `claude_credential_invalid: Anthropic rejected the agent's API key (${error.status})`,
      );
    case 'model_unavailable':
      return new NonRetriableError(`claude_model_unavailable: ${error.message}`);
    case 'bad_request':
      return new NonRetriableError(`claude_request_rejected: ${error.message}`);
    case 'fatal':
      return new Error(`Claude call failed: ${error.message}`);
  }
}

/**
 * Answers one Telegram message: decide (policy, pairing, commands, budget, quota), ask Claude with
 * "typing…" shown, send the answer one step per chunk (a retry never re-sends a chunk that went out),
 * then record it and tell the customer. One run at a time per agent and chat, so a chat's answers go
 * out in the order its messages came; different chats run in parallel. When every retry is spent the
 * user gets one apology and the customer `agent.error`.
 */
export function replyToMessage({ inngest, services }: FunctionDeps) {
  const { db, keyring, config } = services;
  const sendEvent = sendEventVia(inngest);
  const sendDeps = { db, keyring, telegramApiRoot: config.telegram.apiRoot };
  return inngest.createFunction(
    {
      id: 'reply-to-message',
      triggers: [telegramUpdateReceived],
      concurrency: { key: 'event.data.chatKey', limit: 1 },
      retries: 5,
      onFailure: async ({ event, error, step }) => {
        const data = telegramUpdateReceived.schema.parse(event.data.event.data);
        await step.run('fail-reply', () =>
          failReply(
            { ...sendDeps, sendEvent },
            {
              ref: data,
              runId: event.data.run_id,
              error: replyFailureNotice(error.message),
              now: new Date(),
            },
          ),
        );
      },
    },
    async ({ event, step, runId }) => {
      const data = telegramUpdateReceived.schema.parse(event.data);
      const ref = {
        agentId: data.agentId,
        customerId: data.customerId,
        messageId: data.messageId,
        chatId: data.chatId,
      };

      const decideDeps = { db, messageLimiter: services.limits.messages };
      let decision = await step.run('decide', () =>
        decideInbound(decideDeps, ref, runId, new Date(), { albumWait: true }),
      );
      // Wait while an earlier message of the chat is being answered (on Inngest a sleeping run holds no
      // concurrency slot); after MAX_TURN_WAITS seconds answer anyway, so one stuck message cannot
      // silence a chat. An album's uncaptioned item waits ALBUM_WAIT_TURNS for its siblings.
      for (let turn = 1; decision.action === 'wait'; turn += 1) {
        await step.sleep(`wait-for-turn-${turn}`, '1s');
        const options = { keepOrder: turn < MAX_TURN_WAITS, albumWait: turn < ALBUM_WAIT_TURNS };
        decision = await step.run(`decide-${turn}`, () =>
          decideInbound(decideDeps, ref, runId, new Date(), options),
        );
      }
      if (decision.action === 'skip') return { outcome: 'skipped', reason: decision.reason };

      if (decision.action === 'notice') {
        const sent = await step.run('send-notice', async () =>
          settleChunk(
            await sendReplyChunk(sendDeps, {
              ref,
              target: decision.target,
              chunk: { plain: decision.text, markdown: decision.text },
              first: true,
            }),
          ),
        );
        await step.run('finish', () =>
          finishReply(
            { db, sendEvent },
            {
              ref,
              runId,
              settle: decision.settle,
              outboundIds: sent.status === 'sent' ? [sent.outboundId] : [],
              agentError: decision.agentError,
              now: new Date(),
            },
          ),
        );
        return { outcome: decision.kind, delivered: sent.status === 'sent' };
      }

      const { target } = decision;
      const answer = await step.run('call-claude', async () => {
        const result = await generateAnswer(
          {
            db,
            keyring,
            anthropicBaseUrl: config.anthropic.baseUrl,
            telegramApiRoot: config.telegram.apiRoot,
          },
          ref,
          { text: decision.text, chatType: decision.chatType, target },
        );
        if (!result.ok) throw claudeError(result.error);
        return result.answer;
      });

      const usage = {
        model: answer.model,
        inputTokens: answer.inputTokens,
        outputTokens: answer.outputTokens,
        cacheReadTokens: answer.cacheReadTokens,
        // A run that called Claude before this field existed carries no such step result.
        cacheCreationTokens: answer.cacheCreationTokens ?? 0,
      };
      const chunks = answerChunks(answer.text, { cutShort: answer.stopReason === 'max_tokens' });
      const outboundIds: string[] = [];
      let blocked = false;
      try {
        for (const [index, chunk] of chunks.entries()) {
          const sent = await step.run(`send-chunk-${index}`, async () =>
            settleChunk(
              await sendReplyChunk(sendDeps, {
                ref,
                target,
                chunk,
                first: index === 0,
                usage: index === 0 ? usage : undefined,
              }),
            ),
          );
          if (sent.status === 'blocked') {
            blocked = true;
            break;
          }
          outboundIds.push(sent.outboundId);
        }
      } catch (error) {
        // A chunk's retries are spent. The first chunk's row holds the usage; when none went out the
        // tokens are kept on their own, then the run fails (onFailure apologises). Rethrown as it came,
        // the step's error ends the run at once rather than retrying it whole.
        if (outboundIds.length === 0) {
          await step.run('keep-unsent-answer', () =>
            keepUndeliveredAnswer(db, { ref, text: answer.text, usage }),
          );
        }
        throw error;
      }

      const { latencyMs } = await step.run('finish', () =>
        finishReply(
          { db, sendEvent },
          {
            ref,
            runId,
            settle: outboundIds.length > 0 ? 'answered' : 'failed',
            outboundIds,
            usage,
            undelivered: answer.text,
            stopReason: answer.stopReason,
            now: new Date(),
          },
        ),
      );
      return { outcome: blocked ? 'blocked' : 'answered', chunks: outboundIds.length, latencyMs };
    },
  );
}

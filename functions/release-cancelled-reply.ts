import { z } from 'zod';
import { FUNCTION_CANCELLED } from '../lib/executor/events';
import { releaseCancelledReply } from '../lib/reply/cancelled';
import { telegramUpdateReceived } from './events';
import type { FunctionDeps } from './index';

/** What this function reads of `inngest/function.cancelled`: the run, and the event it was answering. */
const CancelledReplySchema = z.object({
  run_id: z.string().min(1),
  event: z.object({ data: telegramUpdateReceived.schema }),
});

/**
 * When a run of reply-to-message is cancelled, its message stops holding the chat's later ones back
 * (see releaseCancelledReply). `replyFunctionId` is reply-to-message's id as Inngest names it, with
 * the app's id in front: the `if` that keeps every other function's cancellations out.
 */
export function releaseCancelledReplyFunction({ inngest, services }: FunctionDeps, replyFunctionId: string) {
  return inngest.createFunction(
    {
      id: 'release-cancelled-reply',
      triggers: [{ event: FUNCTION_CANCELLED, if: `event.data.function_id == '${replyFunctionId}'` }],
      retries: 5,
    },
    async ({ event, step }) => {
      const parsed = CancelledReplySchema.safeParse(event.data);
      if (!parsed.success) return { released: false, reason: 'not a reply run' };
      const { run_id: runId, event: original } = parsed.data;
      const released = await step.run('release-message', () =>
        releaseCancelledReply(services.db, { messageId: original.data.messageId, runId }),
      );
      return { released };
    },
  );
}

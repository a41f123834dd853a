import { eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { telegramMessages } from '../../lib/db/schema';
import { answerChunks, CUT_SHORT_NOTE, EMPTY_ANSWER_TEXT } from '../../lib/reply/answer';
import { releaseCancelledReply } from '../../lib/reply/cancelled';
import { decideInbound, settleInbound } from '../../lib/reply/decide';
import type { Services } from '../../lib/services';
import { createAgent } from '../policy/fixtures';
import { createTestDatabase, databaseTargets, type TestDatabase } from '../support/db';
import { buildUpdate } from '../support/fake-telegram';
import { createTestServices } from '../support/services';

describe.each(databaseTargets())('reply decisions on %s', (target) => {
  let database: TestDatabase;
  let services: Services;
  beforeAll(async () => {
    database = await createTestDatabase(target);
    services = await createTestServices({ database: database.handle });
  });
  afterAll(async () => {
    await services.close();
    await database.destroy();
  });

  async function inbound(agent: { id: string; customerId: string }, chatId: number, text: string, at: Date) {
    const update = buildUpdate.privateText({ from: { id: chatId }, text });
    const [row] = await services.db
      .insert(telegramMessages)
      .values({
        agentId: agent.id,
        customerId: agent.customerId,
        chatId,
        updateId: update.update_id,
        telegramMessageId: update.message.message_id,
        direction: 'inbound',
        fromUserId: chatId,
        text,
        update,
        createdAt: at,
      })
      .returning();
    return { agentId: agent.id, customerId: agent.customerId, messageId: row!.id, chatId };
  }

  it('waits while an earlier message of the chat is unanswered, then answers; other chats never wait', async () => {
    const agent = await createAgent(services.db, { status: 'running', telegramDmPolicy: 'open' });
    const deps = { db: services.db, messageLimiter: services.limits.messages };
    const now = new Date();
    const first = await inbound(agent, 7001, 'first', new Date(now.getTime() - 2_000));
    const second = await inbound(agent, 7001, 'second', new Date(now.getTime() - 1_000));
    const elsewhere = await inbound(agent, 7002, 'elsewhere', new Date(now.getTime() - 500));

    // Not yet claimed by its run (queued behind this one): no reason to wait.
    const third = await inbound(agent, 7001, 'third', new Date(now.getTime() - 900));
    expect((await decideInbound(deps, first, 'run-1', now)).action).toBe('answer');
    // Being answered holds the later ones back; other chats never wait; settled, it holds nothing.
    expect(await decideInbound(deps, second, 'run-2', now)).toEqual({ action: 'wait' });
    expect((await decideInbound(deps, elsewhere, 'run-3', now)).action).toBe('answer');
    await settleInbound(services.db, first.messageId, 'answered');
    expect(await decideInbound(deps, second, 'run-2', now)).toMatchObject({
      action: 'answer',
      text: 'second',
    });
    expect(await decideInbound(deps, third, 'run-4', now)).toEqual({ action: 'wait' });
    await settleInbound(services.db, second.messageId, 'answered');
    expect((await decideInbound(deps, third, 'run-4', now)).action).toBe('answer');

    // A message stuck in processing for longer than the window holds nothing back; keepOrder: false
    // answers regardless.
    const stuck = await inbound(agent, 7003, 'stuck', new Date(now.getTime() - 11 * 60_000));
    await services.db
      .update(telegramMessages)
      .set({ status: 'processing' })
      .where(eq(telegramMessages.id, stuck.messageId));
    const after = await inbound(agent, 7003, 'after', new Date(now.getTime() - 1_000));
    expect((await decideInbound(deps, after, 'run-5', now)).action).toBe('answer');
    const held = await inbound(agent, 7003, 'held', new Date(now.getTime() - 500));
    expect(await decideInbound(deps, held, 'run-6', now)).toEqual({ action: 'wait' });
    expect((await decideInbound(deps, held, 'run-6', now, { keepOrder: false })).action).toBe('answer');
  });

  it('a cancelled run releases the message it claimed or waited with; nothing else', async () => {
    const agent = await createAgent(services.db, { status: 'running', telegramDmPolicy: 'open' });
    const deps = { db: services.db, messageLimiter: services.limits.messages };
    const now = new Date();
    const claimed = await inbound(agent, 7101, 'claimed', new Date(now.getTime() - 3_000));
    const waiting = await inbound(agent, 7101, 'waiting', new Date(now.getTime() - 2_000));
    const later = await inbound(agent, 7101, 'later', new Date(now.getTime() - 1_000));
    expect((await decideInbound(deps, claimed, 'run-a', now)).action).toBe('answer');
    expect(await decideInbound(deps, waiting, 'run-b', now)).toEqual({ action: 'wait' });
    expect(await decideInbound(deps, later, 'run-c', now)).toEqual({ action: 'wait' });

    // Another run's cancellation, or a run id that holds nothing, changes nothing.
    expect(await releaseCancelledReply(services.db, { messageId: claimed.messageId, runId: 'run-b' })).toBe(
      false,
    );
    expect(await releaseCancelledReply(services.db, { messageId: waiting.messageId, runId: 'run-a' })).toBe(
      false,
    );
    expect(await releaseCancelledReply(services.db, { messageId: claimed.messageId, runId: 'run-a' })).toBe(
      true,
    );
    expect(await decideInbound(deps, later, 'run-c', now)).toEqual({ action: 'wait' });
    // The waiting run cancelled too: its mark no longer holds the later message back.
    expect(await releaseCancelledReply(services.db, { messageId: waiting.messageId, runId: 'run-b' })).toBe(
      true,
    );
    expect((await decideInbound(deps, later, 'run-c', now)).action).toBe('answer');
    await settleInbound(services.db, later.messageId, 'answered');
    // A settled message stays as it is.
    expect(await releaseCancelledReply(services.db, { messageId: later.messageId, runId: 'run-c' })).toBe(
      false,
    );
    const statuses = await services.db
      .select({ id: telegramMessages.id, status: telegramMessages.status })
      .from(telegramMessages)
      .where(eq(telegramMessages.agentId, agent.id));
    const statusOf = (id: string) => statuses.find((row) => row.id === id)?.status;
    expect([claimed, waiting, later].map((m) => statusOf(m.messageId))).toEqual([
      'failed',
      'failed',
      'answered',
    ]);
  });

  it('of two runs waiting for their turn, the earlier message goes first', async () => {
    const agent = await createAgent(services.db, { status: 'running', telegramDmPolicy: 'open' });
    const deps = { db: services.db, messageLimiter: services.limits.messages };
    const now = new Date();
    const first = await inbound(agent, 7201, 'first', new Date(now.getTime() - 3_000));
    const second = await inbound(agent, 7201, 'second', new Date(now.getTime() - 2_000));
    const third = await inbound(agent, 7201, 'third', new Date(now.getTime() - 1_000));
    expect((await decideInbound(deps, first, 'run-1', now)).action).toBe('answer');
    // On Inngest both later runs may take the slot between the first run's steps: both wait.
    expect(await decideInbound(deps, second, 'run-2', now)).toEqual({ action: 'wait' });
    expect(await decideInbound(deps, third, 'run-3', now)).toEqual({ action: 'wait' });
    await settleInbound(services.db, first.messageId, 'answered');
    // The third wakes first: the second, whose run is waiting, goes before it.
    expect(await decideInbound(deps, third, 'run-3', now)).toEqual({ action: 'wait' });
    expect((await decideInbound(deps, second, 'run-2', now)).action).toBe('answer');
    await settleInbound(services.db, second.messageId, 'answered');
    expect((await decideInbound(deps, third, 'run-3', now)).action).toBe('answer');
  });

  it('a second run of an answered message stops at once; the same run may decide again after a crash', async () => {
    const agent = await createAgent(services.db, { status: 'running', telegramDmPolicy: 'open' });
    const deps = { db: services.db, messageLimiter: services.limits.messages };
    const message = await inbound(agent, 7101, 'once', new Date());
    expect((await decideInbound(deps, message, 'run-a', new Date())).action).toBe('answer');
    expect((await decideInbound(deps, message, 'run-a', new Date())).action).toBe('answer');
    expect(await decideInbound(deps, message, 'run-b', new Date())).toEqual({
      action: 'skip',
      reason: 'already_handled',
    });
  });

  it("counts a message against the day's quota once: decided again after a crash, or replayed after failing", async () => {
    const agent = await createAgent(services.db, { status: 'running', telegramDmPolicy: 'open' });
    const deps = { db: services.db, messageLimiter: services.limits.messages };
    const counted = async () =>
      (await services.limits.messages.usage(`customer:${agent.customerId}`, 1000)).used;
    const message = await inbound(agent, 7301, 'count me once', new Date());
    expect((await decideInbound(deps, message, 'run-a', new Date())).action).toBe('answer');
    expect((await decideInbound(deps, message, 'run-a', new Date())).action).toBe('answer');
    expect(await counted()).toBe(1);
    // The answer failed; the operator replays the event: a new run answers it, not counted again.
    await settleInbound(services.db, message.messageId, 'failed');
    expect((await decideInbound(deps, message, 'run-replay', new Date())).action).toBe('answer');
    expect(await counted()).toBe(1);
    await settleInbound(services.db, message.messageId, 'answered');
    const next = await inbound(agent, 7301, 'another', new Date());
    expect((await decideInbound(deps, next, 'run-b', new Date())).action).toBe('answer');
    expect(await counted()).toBe(2);
  });
});

describe('answer chunks', () => {
  it('an answer that renders to nothing still gets a message; others get their formatted chunks', () => {
    // A lone link reference definition renders to nothing at all.
    expect(answerChunks('[ref]: https://example.com')).toEqual([
      { html: EMPTY_ANSWER_TEXT, plain: EMPTY_ANSWER_TEXT, markdown: EMPTY_ANSWER_TEXT },
    ]);
    // An empty code block renders as tags around nothing, which Telegram refuses as an empty message.
    for (const blank of ['```\n```', '`` ``']) {
      expect(answerChunks(blank)).toEqual([
        { html: EMPTY_ANSWER_TEXT, plain: EMPTY_ANSWER_TEXT, markdown: EMPTY_ANSWER_TEXT },
      ]);
    }
    expect(answerChunks('**hi**')).toEqual([{ html: '<b>hi</b>', plain: 'hi', markdown: '**hi**' }]);
  });

  it('an answer cut short ends in a note, after a code block the cut left open, in a chunk of its own when full', () => {
    expect(answerChunks('```js\nconst x', { cutShort: true })).toEqual([
      {
        html: `<pre><code class="language-js">const x</code></pre>\n\n<i>${CUT_SHORT_NOTE}</i>`,
        plain: `const x\n\n${CUT_SHORT_NOTE}`,
        markdown: `\`\`\`js\nconst x\n\`\`\`\n\n_${CUT_SHORT_NOTE}_`,
      },
    ]);
    const full = answerChunks('a'.repeat(4090), { cutShort: true });
    expect(full.map((chunk) => chunk.plain)).toEqual(['a'.repeat(4090), CUT_SHORT_NOTE]);
    // A full last chunk cut inside a code block: its stored Markdown closes the block before the note.
    const code = answerChunks(`\`\`\`\n${'a'.repeat(4077)}`, { cutShort: true });
    expect(code.map((chunk) => chunk.plain.length)).toEqual([4077, CUT_SHORT_NOTE.length]);
    expect(
      code
        .map((chunk) => chunk.markdown)
        .join('\n\n')
        .match(/^```/gm),
    ).toHaveLength(2);
    // Cut right after an opening fence: nothing to show but the fallback, which says it was cut too.
    expect(answerChunks('```js\n', { cutShort: true }).map((chunk) => chunk.plain)).toEqual([
      `${EMPTY_ANSWER_TEXT}\n\n${CUT_SHORT_NOTE}`,
    ]);
    expect(answerChunks('whole', { cutShort: false })).toEqual(answerChunks('whole'));
  });
});

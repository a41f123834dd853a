import { eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { telegramMessages } from '../../lib/db/schema';
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

    expect(await decideInbound(deps, second, 'run-2', now)).toEqual({ action: 'wait' });
    expect((await decideInbound(deps, elsewhere, 'run-3', now)).action).toBe('answer');
    expect((await decideInbound(deps, first, 'run-1', now)).action).toBe('answer');
    // Being answered still holds the later one back; settled, it does not.
    expect(await decideInbound(deps, second, 'run-2', now)).toEqual({ action: 'wait' });
    await settleInbound(services.db, first.messageId, 'answered');
    expect(await decideInbound(deps, second, 'run-2', now)).toMatchObject({
      action: 'answer',
      text: 'second',
    });

    // A message stuck for longer than the window no longer holds the chat, and keepOrder: false overrides.
    const stuck = await inbound(agent, 7003, 'stuck', new Date(now.getTime() - 11 * 60_000));
    const after = await inbound(agent, 7003, 'after', new Date(now.getTime() - 1_000));
    expect((await decideInbound(deps, after, 'run-5', now)).action).toBe('answer');
    const held = await inbound(agent, 7003, 'held', new Date(now.getTime() - 500));
    await services.db
      .update(telegramMessages)
      .set({ status: 'received' })
      .where(eq(telegramMessages.id, after.messageId));
    expect(await decideInbound(deps, held, 'run-6', now)).toEqual({ action: 'wait' });
    expect((await decideInbound(deps, held, 'run-6', now, { keepOrder: false })).action).toBe('answer');
    expect(stuck.chatId).toBe(7003);
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
});

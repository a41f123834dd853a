import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { historyStatements } from '../../lib/conversation/history';
import type { Database } from '../../lib/db/client';
import { telegramMessages } from '../../lib/db/schema';
import { decideStatements } from '../../lib/reply/decide';
import { createAgent } from '../policy/fixtures';
import { createTestDatabase, databaseTargets, type TestDatabase } from '../support/db';
import { genericPlanScans, type PlanScan } from '../support/plans';

/**
 * The statements every reply runs are planned once per connection and kept; a new deployment plans
 * them on small tables. Planned so, each must still read one chat's rows, or one row by its primary
 * key: a plan that reads all of an agent's rows grows slower with every message the bot gets.
 */
describe.each(databaseTargets())(
  'the plans of a reply’s statements on %s, made while the tables are small',
  (target) => {
    let database: TestDatabase;
    let db: Database;
    const chatId = 4242;
    let agentId: string;
    let messageId: string;
    let currentAt: string;
    beforeAll(async () => {
      database = await createTestDatabase(target);
      db = database.handle.db;
      const agent = await createAgent(db);
      agentId = agent.id;
      const rows = await db
        .insert(telegramMessages)
        .values(
          [1, 2, 3].map((n) => ({
            agentId,
            customerId: agent.customerId,
            chatId: chatId + (n === 3 ? 1 : 0),
            direction: 'inbound' as const,
            text: `m${n}`,
            updateId: n,
            telegramMessageId: n,
            update: { update_id: n, message: { text: `m${n}` } },
          })),
        )
        .returning({ id: telegramMessages.id, createdAt: telegramMessages.createdAt });
      messageId = rows[1]!.id;
      currentAt = rows[1]!.createdAt.toISOString();
    });
    afterAll(async () => {
      await database?.destroy();
    });

    /** Every read of telegram_messages: by primary key, or within the chat (chat_id in the index condition). */
    function expectOnlyChatOrKeyReads(scans: PlanScan[]) {
      const reads = scans.filter((scan) => scan.relation === 'telegram_messages');
      expect(reads.length).toBeGreaterThan(0);
      for (const read of reads) {
        const byKey = read.index === 'telegram_messages_pkey';
        const inChat = read.index !== undefined && (read.indexCond ?? '').includes('chat_id =');
        expect({ ...read, byKeyOrInChat: byKey || inChat }).toMatchObject({ byKeyOrInChat: true });
      }
    }

    const conversation = () => ({
      agentId,
      chatId,
      topicId: null,
      currentId: messageId,
      currentAt,
      resetAt: null,
    });

    it('claims the message by its primary key', async () => {
      const scans = await genericPlanScans(db, decideStatements.claimMessage(db), {
        runId: 'run-1',
        messageId,
        agentId,
      });
      expect(scans.filter((scan) => scan.relation === 'telegram_messages').map((scan) => scan.index)).toEqual(
        ['telegram_messages_pkey'],
      );
    });

    it('reads the current message by its primary key', async () => {
      const scans = await genericPlanScans(db, historyStatements.readCurrentMessage(db), {
        messageId,
        agentId,
        chatId,
      });
      expect(scans.find((scan) => scan.alias === 'telegram_messages')?.index).toBe('telegram_messages_pkey');
    });

    it('looks for an earlier pending message within the chat and the chats linked to it', async () => {
      const scans = await genericPlanScans(db, decideStatements.readAgentAndTurn(db), {
        agentId,
        chatId,
        messageId,
        waitedSince: new Date(Date.now() - 600_000).toISOString(),
      });
      expectOnlyChatOrKeyReads(scans);
    });

    it('looks for another item of an album within the chat', async () => {
      const scans = await genericPlanScans(db, decideStatements.readAlbumSibling(db), {
        agentId,
        chatId,
        since: new Date(Date.now() - 600_000).toISOString(),
        messageId,
        mediaGroupId: 'album-1',
        telegramMessageId: 10,
      });
      expectOnlyChatOrKeyReads(scans);
    });

    it('reads the history bound and the history rows of the chat only', async () => {
      expectOnlyChatOrKeyReads(
        await genericPlanScans(db, historyStatements.readOldestInboundNeeded(db), {
          ...conversation(),
          boundOffset: 400,
          boundWindow: 4010,
        }),
      );
      expectOnlyChatOrKeyReads(
        await genericPlanScans(db, historyStatements.readHistory(db), {
          ...conversation(),
          since: null,
          limit: 401,
        }),
      );
    });
  },
);

import { and, eq, sql } from 'drizzle-orm';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type App, createApp } from '../../api/app';
import { sendEventVia } from '../../functions/client';
import { createFunctions } from '../../functions/index';
import { helpText, resetText } from '../../lib/conversation/commands';
import { agents, credentials, customers, telegramChats, telegramMessages } from '../../lib/db/schema';
import type { SendEvent } from '../../lib/jobs';
import { QUOTA_NOTICE, tokensUsedToday } from '../../lib/ratelimit/quota';
import { TEXT_ONLY_NOTICE } from '../../lib/reply/decide';
import { APOLOGY_TEXT, failReply } from '../../lib/reply/finish';
import { TelegramIngress } from '../../lib/telegram/ingress';
import { withAttachmentNote } from '../../lib/telegram/updates';
import { createRunningAgent, type RunningAgent, type RunningAgentOptions } from '../support/agents';
import { databaseTargets } from '../support/db';
import { createExecutorHarness, type ExecutorHarness } from '../support/executor';
import { ANTHROPIC_ERRORS, type FakeAnthropic, startFakeAnthropic } from '../support/fake-anthropic';
import { buildUpdate, type FakeTelegram, startFakeTelegram, TELEGRAM_ERRORS } from '../support/fake-telegram';
import { type Loopback, serveOnLoopback } from '../support/loopback';
import { captureLogger, TEST_ADMIN_KEY } from '../support/services';
import { until } from '../support/until';
import { startWebhookReceiver, type WebhookReceiver } from '../support/webhook-receiver';

const PUBLIC_BASE = 'https://bots.example.test';

describe.each(databaseTargets())('reply pipeline on %s', (target) => {
  let telegram: FakeTelegram;
  let anthropic: FakeAnthropic;
  let harness: ExecutorHarness;
  let app: App;
  let receiver: WebhookReceiver;
  let server: Loopback;

  beforeAll(async () => {
    telegram = await startFakeTelegram();
    anthropic = await startFakeAnthropic();
    receiver = await startWebhookReceiver();
    harness = await createExecutorHarness({
      target,
      functions: (inngest, services) => createFunctions({ inngest, services }),
      env: {
        TELEGRAM_API_ROOT: telegram.apiRoot,
        ANTHROPIC_BASE_URL: anthropic.baseURL,
        TELEGRAM_WEBHOOK_BASE_URL: PUBLIC_BASE,
        WEBHOOK_ALLOW_PRIVATE_TARGETS: 'true',
      },
    });
    // As the platform runs on the embedded engine: each update is stored with its event, in one statement.
    app = createApp(harness.services, {
      sendEvent: sendEventVia(harness.inngest),
      eventsStatement: harness.executor.statement,
    });
    server = await serveOnLoopback(app.fetch);
    telegram.routeWebhooks(PUBLIC_BASE, server.origin);
  });
  afterAll(async () => {
    await harness.close();
    await server.close();
    await Promise.all([telegram.stop(), anthropic.stop(), receiver.close()]);
  });
  afterEach(() => {
    anthropic.setDelay(0);
    anthropic.setReply((request) => {
      const last = request.messages.at(-1);
      return `Echo: ${typeof last?.content === 'string' ? last.content : ''}`;
    });
  });

  const agentWith = (options: RunningAgentOptions = {}) =>
    createRunningAgent(harness, telegram, anthropic, {
      ...options,
      agent: { telegramDmPolicy: 'open', ...options.agent },
    });
  const deliver = async (agent: RunningAgent, ...updates: Record<string, unknown>[]) => {
    for (const update of updates) expect(await telegram.deliverUpdate(agent.token, update)).toBe(200);
  };
  const sentBy = (agent: RunningAgent, chatId?: number) =>
    telegram.sent.filter((m) => m.token === agent.token && (chatId === undefined || m.chatId === chatId));
  const textsTo = (agent: RunningAgent, chatId?: number) => sentBy(agent, chatId).map((m) => m.text);
  const rowsOf = (agent: RunningAgent) =>
    harness.services.db
      .select()
      .from(telegramMessages)
      .where(eq(telegramMessages.agentId, agent.agentId))
      .orderBy(telegramMessages.createdAt);
  const claudeCalls = (agent: RunningAgent) => anthropic.messageRequests(agent.claudeKey);
  /** Delivers the updates and runs everything they start to the end. */
  const handleFor =
    (agent: RunningAgent) =>
    async (...updates: Record<string, unknown>[]) => {
      await deliver(agent, ...updates);
      await harness.settle();
    };
  /** The turns' texts of the agent's Claude call number `call` (-1: the last). */
  const conversationOf = (agent: RunningAgent, call: number) =>
    claudeCalls(agent)
      .at(call)
      ?.messages.map((m) => m.content);
  const api = (agent: RunningAgent, path: string, method = 'GET') =>
    app.request(path, { method, headers: { authorization: `Bearer ${agent.apiKey}` } });
  const agentRow = async (agent: RunningAgent) =>
    (await harness.services.db.select().from(agents).where(eq(agents.id, agent.agentId)))[0];
  const webhookEventsOf = (agent: RunningAgent, type: string) =>
    receiver.requests
      .map((r) => JSON.parse(r.body) as { type: string; agentId: string; data: Record<string, unknown> })
      .filter((event) => event.agentId === agent.agentId && event.type === type);

  it('answers a DM once with typing shown, even when Telegram delivers the update twice', async () => {
    const agent = await agentWith({ customer: { webhookUrl: receiver.url } });
    const update = buildUpdate.privateText({ from: { id: 5001, first_name: 'Ann' }, text: 'hello' });
    await deliver(agent, update, update);
    await harness.settle();

    expect(textsTo(agent, 5001)).toEqual(['Echo: hello']);
    expect(sentBy(agent)[0]?.parseMode).toBe('HTML');
    expect(claudeCalls(agent)).toHaveLength(1);
    const typing = telegram.callsOf('sendChatAction', agent.token);
    expect(typing.length).toBeGreaterThanOrEqual(1);
    expect(typing[0]?.params).toMatchObject({ chat_id: 5001, action: 'typing' });

    const rows = await rowsOf(agent);
    expect(rows.map((r) => [r.direction, r.status])).toEqual([
      ['inbound', 'answered'],
      ['outbound', 'sent'],
    ]);
    const outbound = rows[1];
    expect(outbound).toMatchObject({
      text: 'Echo: hello',
      replyToId: rows[0]?.id,
      model: expect.any(String),
    });
    expect(outbound?.inputTokens).toBeGreaterThan(0);
    expect(outbound?.outputTokens).toBeGreaterThan(0);
    expect(outbound?.telegramMessageId).toBe(sentBy(agent)[0]?.messageId);

    const processed = webhookEventsOf(agent, 'message.processed');
    expect(processed).toHaveLength(1);
    expect(processed[0]?.data).toMatchObject({
      chatId: 5001,
      inboundMessageId: rows[0]?.id,
      outboundMessageIds: [outbound?.id],
      inputTokens: outbound?.inputTokens,
      outputTokens: outbound?.outputTokens,
      stopReason: 'end_turn',
    });
  });

  it('an answer cut at maxTokens says so to the user, and message.processed says max_tokens', async () => {
    const agent = await agentWith({ customer: { webhookUrl: receiver.url }, agent: { maxTokens: 10 } });
    anthropic.setReply(
      'The three steps are: first, preheat the oven; second, mix the flour and sugar.',
      agent.claudeKey,
    );
    await handleFor(agent)(buildUpdate.privateText({ from: { id: 5061 }, text: 'recipe?' }));
    const [sent] = sentBy(agent, 5061);
    expect(sent?.text).toMatch(
      /^The three steps are: first, preheat the[\s\S]*\n\n<i>\(answer cut short\)<\/i>$/,
    );
    expect(sent?.parseMode).toBe('HTML');
    const processed = webhookEventsOf(agent, 'message.processed');
    expect(processed.map((event) => event.data.stopReason)).toEqual(['max_tokens']);
  });

  it("counts the system prompt's prompt-cache tokens in the stored usage, the budget and message.processed", async () => {
    // Over the 1,024 tokens Anthropic caches: written to the cache by the first answer, read by the second.
    const systemPrompt = 'You answer questions about the opening hours of a bakery. '.repeat(80);
    const agent = await agentWith({ customer: { webhookUrl: receiver.url }, agent: { systemPrompt } });
    const from = { id: 5051, first_name: 'Ann' };
    await handleFor(agent)(buildUpdate.privateText({ from, text: 'hi' }));
    await handleFor(agent)(buildUpdate.privateText({ from, text: 'again' }));
    expect(textsTo(agent, from.id)).toEqual(['Echo: hi', 'Echo: again']);

    const answers = (await rowsOf(agent)).filter((r) => r.direction === 'outbound');
    expect(answers.map((r) => [r.cacheCreationTokens, r.cacheReadTokens])).toEqual([
      [expect.any(Number), 0],
      [0, expect.any(Number)],
    ]);
    const cached = answers[0]?.cacheCreationTokens ?? 0;
    expect(cached).toBeGreaterThan(1000);
    expect(answers[1]?.cacheReadTokens).toBe(cached);
    expect(answers.every((r) => (r.inputTokens ?? 0) < 100)).toBe(true);

    const processed = webhookEventsOf(agent, 'message.processed');
    expect(processed.map((event) => event.data)).toMatchObject([
      { inputTokens: answers[0]?.inputTokens, cacheCreationTokens: cached, cacheReadTokens: 0 },
      { inputTokens: answers[1]?.inputTokens, cacheCreationTokens: 0, cacheReadTokens: cached },
    ]);
    const all = answers.reduce(
      (sum, r) =>
        sum +
        (r.inputTokens ?? 0) +
        (r.outputTokens ?? 0) +
        (r.cacheReadTokens ?? 0) +
        (r.cacheCreationTokens ?? 0),
      0,
    );
    expect(await tokensUsedToday(harness.services.db, agent.agentId, new Date())).toBe(all);
  });

  it('answers three fast messages of one chat in order, with history, while another chat runs alongside', async () => {
    const agent = await agentWith();
    anthropic.setDelay(150);
    anthropic.maxInFlight = 0;
    const ann = { id: 5101, first_name: 'Ann' };
    const bob = { id: 5102, first_name: 'Bob' };
    await deliver(
      agent,
      buildUpdate.privateText({ from: ann, text: 'one' }),
      buildUpdate.privateText({ from: bob, text: 'other chat' }),
      buildUpdate.privateText({ from: ann, text: 'two' }),
      buildUpdate.privateText({ from: ann, text: 'three' }),
    );
    await harness.settle();

    expect(textsTo(agent, ann.id)).toEqual(['Echo: one', 'Echo: two', 'Echo: three']);
    expect(textsTo(agent, bob.id)).toEqual(['Echo: other chat']);
    // The two chats' Claude calls overlapped; one chat's never do (its runs go one at a time).
    expect(anthropic.maxInFlight).toBeGreaterThanOrEqual(2);
    const annCalls = claudeCalls(agent).filter((r) => JSON.stringify(r.messages).includes('one'));
    expect(annCalls.at(-1)?.messages).toEqual([
      { role: 'user', content: 'one' },
      { role: 'assistant', content: 'Echo: one' },
      { role: 'user', content: 'two' },
      { role: 'assistant', content: 'Echo: two' },
      { role: 'user', content: 'three' },
    ]);
  });

  it('allowlist: answers listed ids and usernames only; disabled: answers no DM', async () => {
    const listed = await agentWith({
      agent: { telegramDmPolicy: 'allowlist', telegramAllowFrom: ['5201', '@Carol_T'] },
    });
    await deliver(
      listed,
      buildUpdate.privateText({ from: { id: 5201 }, text: 'by id' }),
      buildUpdate.privateText({ from: { id: 5202, username: 'carol_t' }, text: 'by name' }),
      buildUpdate.privateText({ from: { id: 5203, username: 'mallory' }, text: 'stranger' }),
    );
    const disabled = await agentWith({ agent: { telegramDmPolicy: 'disabled' } });
    await deliver(disabled, buildUpdate.privateText({ from: { id: 5204 }, text: 'anyone?' }));
    await harness.settle();

    expect(textsTo(listed, 5201)).toEqual(['Echo: by id']);
    expect(textsTo(listed, 5202)).toEqual(['Echo: by name']);
    expect(textsTo(listed, 5203)).toEqual([]);
    expect(textsTo(disabled)).toEqual([]);
    expect(claudeCalls(disabled)).toHaveLength(0);
    const ignored = (await rowsOf(listed)).find((r) => r.fromUserId === 5203);
    expect(ignored?.status).toBe('ignored');
  });

  it('pairing: a code per unknown sender (the same one again), three at most, approval opens the chat', async () => {
    const agent = await createRunningAgent(harness, telegram, anthropic, { agent: { name: 'Concierge' } });
    const senders = [5301, 5302, 5303, 5304].map((id) => ({ id, first_name: `P${id}` }));
    // Different chats are answered in parallel: settle between senders so the fourth is the one refused.
    for (const from of senders) {
      await deliver(agent, buildUpdate.privateText({ from, text: 'hi' }));
      await harness.settle();
    }
    await deliver(agent, buildUpdate.privateText({ from: senders[0]!, text: 'hi again' }));
    await harness.settle();

    expect(claudeCalls(agent)).toHaveLength(0);
    const codeOf = (text: string | undefined) => /pairing code: ([A-Z2-9]{8})/.exec(text ?? '')?.[1];
    const first = textsTo(agent, 5301);
    expect(first).toHaveLength(2);
    expect(codeOf(first[0])).toBeDefined();
    expect(codeOf(first[1])).toBe(codeOf(first[0]));
    expect(codeOf(textsTo(agent, 5302)[0])).toBeDefined();
    expect(codeOf(textsTo(agent, 5303)[0])).toBeDefined();
    expect(textsTo(agent, 5304)[0]).toMatch(/too many pending access requests/);

    const listed = await api(agent, `/api/v1/agents/${agent.agentId}/pairing-requests?status=pending`);
    expect(listed.status).toBe(200);
    const body = (await listed.json()) as { pairingRequests: { code: string; telegramUserId: number }[] };
    expect(body.pairingRequests.map((r) => r.telegramUserId).sort()).toEqual([5301, 5302, 5303]);

    const bad = await api(agent, `/api/v1/agents/${agent.agentId}/pairing-requests?status=granted`);
    expect(bad.status).toBe(400);
    expect(JSON.stringify(await bad.json())).toContain('status');
    const unknown = await api(
      agent,
      `/api/v1/agents/${agent.agentId}/pairing-requests/not-a-code/approve`,
      'POST',
    );
    expect(unknown.status).toBe(404);

    const code = codeOf(first[0]) as string;
    const approved = await api(
      agent,
      `/api/v1/agents/${agent.agentId}/pairing-requests/${code.toLowerCase()}/approve`,
      'POST',
    );
    expect(approved.status).toBe(200);
    expect(((await approved.json()) as { pairingRequest: { status: string } }).pairingRequest.status).toBe(
      'approved',
    );
    const again = await api(
      agent,
      `/api/v1/agents/${agent.agentId}/pairing-requests/${code}/approve`,
      'POST',
    );
    // Approving again is the same approval (idempotent), not a second one.
    expect(again.status).toBe(200);
    expect(((await again.json()) as { pairingRequest: { status: string } }).pairingRequest.status).toBe(
      'approved',
    );
    const rejectCode = codeOf(textsTo(agent, 5302)[0]) as string;
    expect(
      (await api(agent, `/api/v1/agents/${agent.agentId}/pairing-requests/${rejectCode}/reject`, 'POST'))
        .status,
    ).toBe(200);
    await harness.settle();

    expect((await agentRow(agent))?.telegramAllowFrom).toEqual(['5301']);
    expect(textsTo(agent, 5301).at(-1)).toMatch(/You now have access to Concierge/);
    expect(textsTo(agent, 5301).filter((text) => /You now have access/.test(text ?? ''))).toHaveLength(1);
    await deliver(agent, buildUpdate.privateText({ from: senders[0]!, text: 'finally' }));
    await deliver(agent, buildUpdate.privateText({ from: senders[1]!, text: 'me too?' }));
    await harness.settle();
    expect(textsTo(agent, 5301).at(-1)).toBe('Echo: finally');
    expect(claudeCalls(agent)).toHaveLength(1);
    // The rejected sender may ask again: a new code, not an answer.
    expect(codeOf(textsTo(agent, 5302).at(-1))).toBeDefined();
    expect(codeOf(textsTo(agent, 5302).at(-1))).not.toBe(rejectCode);
  });

  it('groups: answers only when addressed, as a reply to the message, without the mention', async () => {
    const agent = await agentWith({ agent: { telegramGroupPolicy: 'open' } });
    const chatId = -1005400;
    const from = { id: 5401, first_name: 'Gus' };
    const bot = { id: agent.botId, first_name: 'Agent', username: agent.botUsername };
    const mention = buildUpdate.groupMention({
      chatId,
      from,
      botUsername: agent.botUsername,
      rest: 'what time?',
    });
    await deliver(
      agent,
      buildUpdate.groupText({ chatId, from, text: 'just chatting' }),
      mention,
      buildUpdate.groupText({
        chatId,
        from,
        text: '@someone_else_bot hi',
        entities: [{ type: 'mention', offset: 0, length: 17 }],
      }),
      buildUpdate.groupReplyToBot({ chatId, from, bot, text: 'thanks' }),
      buildUpdate.groupTextMention({ chatId, from, bot, rest: 'and you?' }),
      buildUpdate.groupCommand({ chatId, from, command: 'help', botUsername: agent.botUsername }),
      buildUpdate.groupCommand({ chatId, from, command: 'help', botUsername: 'someone_else_bot' }),
      // From the command menu of a group with one bot: a bare command of the bot's, and one it lacks.
      buildUpdate.groupCommand({ chatId, from, command: 'help' }),
      buildUpdate.groupCommand({ chatId, from, command: 'weather' }),
      // A photo's caption carries its mention in caption_entities.
      buildUpdate.asPhoto(
        buildUpdate.groupMention({ chatId, from, botUsername: agent.botUsername, rest: 'what is this?' }),
      ),
      buildUpdate.asPhoto(buildUpdate.groupText({ chatId, from, text: 'holiday pictures' })),
    );
    await harness.settle();

    const sent = sentBy(agent, chatId);
    expect(sent.map((m) => m.text)).toEqual([
      'Echo: [Gus]: what time?',
      'Echo: [Gus]: thanks',
      'Echo: [Gus]: Agent and you?',
      helpText('Helper'),
      helpText('Helper'),
      `Echo: [Gus]: ${withAttachmentNote('what is this?', 'a photo')}`,
    ]);
    expect(sent[0]?.params.reply_parameters).toMatchObject({ message_id: mention.message.message_id });
    for (const message of sent) expect(message.params.reply_parameters).toBeDefined();
  });

  it('groups: a bare /reset, as the command menu sends it, forgets the group history', async () => {
    const agent = await agentWith({ agent: { telegramGroupPolicy: 'open' } });
    const chatId = -1005420;
    const from = { id: 5421, first_name: 'Gus' };
    const mention = (rest: string) =>
      buildUpdate.groupMention({ chatId, from, botUsername: agent.botUsername, rest });
    await deliver(agent, mention('my name is Gus'));
    await deliver(agent, buildUpdate.groupCommand({ chatId, from, command: 'reset' }));
    await deliver(agent, mention('what is my name?'));
    await harness.settle();

    expect(sentBy(agent, chatId).map((m) => m.text)).toEqual([
      'Echo: [Gus]: my name is Gus',
      resetText('reset'),
      'Echo: [Gus]: what is my name?',
    ]);
    expect(claudeCalls(agent).at(-1)?.messages).toEqual([
      { role: 'user', content: '[Gus]: what is my name?' },
    ]);
  });

  it('groups: /help@bot stays out of the history; an anonymous admin is answered, a channel repost is not', async () => {
    const agent = await agentWith({ agent: { telegramGroupPolicy: 'open' } });
    const chatId = -1005450;
    const from = { id: 5451, first_name: 'Gus' };
    const group = { id: chatId, type: 'supergroup', title: 'Opening hours club' };
    const mention = (rest: string) =>
      buildUpdate.groupMention({ chatId, from, botUsername: agent.botUsername, rest });
    /** The same mention sent on behalf of a chat: `from` is Telegram's stand-in bot, `sender_chat` the chat. */
    const onBehalfOf = (senderChat: Record<string, unknown>, rest: string, extra = {}) => {
      const update = mention(rest);
      const stand_in = { id: 1087968824, is_bot: true, first_name: 'Group', username: 'GroupAnonymousBot' };
      return {
        ...update,
        message: { ...update.message, from: stand_in, sender_chat: senderChat, ...extra },
      };
    };
    await deliver(
      agent,
      buildUpdate.groupCommand({ chatId, from, command: 'help', botUsername: agent.botUsername }),
    );
    await harness.settle();
    await deliver(agent, mention('hi'));
    await harness.settle();
    expect(claudeCalls(agent).at(-1)?.messages).toEqual([{ role: 'user', content: '[Gus]: hi' }]);

    await deliver(agent, onBehalfOf(group, 'when do you open?'));
    await harness.settle();
    const channel = { id: -1009999, type: 'channel', title: 'News' };
    // Telegram sends a channel's automatic forward from its service user 777000, which is no bot.
    const service = { id: 777000, is_bot: false, first_name: 'Telegram' };
    await deliver(agent, onBehalfOf(channel, 'reposted', { from: service, is_automatic_forward: true }));
    await harness.settle();
    expect(textsTo(agent, chatId)).toEqual([
      helpText('Helper'),
      'Echo: [Gus]: hi',
      'Echo: [Opening hours club]: when do you open?',
    ]);
  });

  it('forum topics: each topic is a conversation of its own, with its own /reset, answered in its thread', async () => {
    const agent = await agentWith({ agent: { telegramGroupPolicy: 'open' } });
    const chatId = -1005495;
    const from = { id: 5495, first_name: 'Gus' };
    /** A mention in topic `topic` of a forum supergroup; undefined: its General topic. */
    const inTopic = (topic: number | undefined, update: ReturnType<typeof buildUpdate.groupText>) => ({
      ...update,
      message: {
        ...update.message,
        chat: { ...update.message.chat, is_forum: true },
        ...(topic === undefined ? {} : { message_thread_id: topic, is_topic_message: true }),
      },
    });
    const ask = (topic: number | undefined, rest: string) =>
      inTopic(topic, buildUpdate.groupMention({ chatId, from, botUsername: agent.botUsername, rest }));
    const reset = (topic: number | undefined) =>
      inTopic(
        topic,
        buildUpdate.groupCommand({ chatId, from, command: 'reset', botUsername: agent.botUsername }),
      );
    const handle = handleFor(agent);
    const conversationOfLastCall = () => conversationOf(agent, -1);

    await handle(ask(undefined, 'I am in General'));
    await handle(ask(7, 'I like tea'));
    await handle(ask(9, 'what do I like?'));
    expect(conversationOfLastCall()).toEqual(['[Gus]: what do I like?']);
    await handle(ask(7, 'what do I like?'));
    expect(conversationOfLastCall()).toEqual([
      '[Gus]: I like tea',
      'Echo: [Gus]: I like tea',
      '[Gus]: what do I like?',
    ]);

    // A /reset in one topic forgets that topic only; General keeps its conversation.
    await handle(reset(7));
    await handle(ask(7, 'anything?'));
    expect(conversationOfLastCall()).toEqual(['[Gus]: anything?']);
    await handle(ask(9, 'still here?'));
    expect(conversationOfLastCall()).toEqual([
      '[Gus]: what do I like?',
      'Echo: [Gus]: what do I like?',
      '[Gus]: still here?',
    ]);
    await handle(ask(undefined, 'where am I?'));
    expect(conversationOfLastCall()).toEqual([
      '[Gus]: I am in General',
      'Echo: [Gus]: I am in General',
      '[Gus]: where am I?',
    ]);
    // And a /reset in General leaves the topics theirs.
    await handle(reset(undefined));
    await handle(ask(9, 'and now?'));
    expect(conversationOfLastCall()?.at(0)).toBe('[Gus]: what do I like?');

    // Typing showed in each topic, and in General under its thread id, which sendMessage refuses.
    const typingThreads = telegram
      .callsOf('sendChatAction', agent.token)
      .map((call) => call.params.message_thread_id);
    expect(new Set(typingThreads)).toEqual(new Set([1, 7, 9]));
    // Every answer went to the thread it was asked in; General's without a thread id.
    const threads = sentBy(agent, chatId).map((m) => [m.text.slice(0, 40), m.params.message_thread_id]);
    expect(threads).toEqual([
      ['Echo: [Gus]: I am in General', undefined],
      ['Echo: [Gus]: I like tea', 7],
      ['Echo: [Gus]: what do I like?', 9],
      ['Echo: [Gus]: what do I like?', 7],
      [resetText().slice(0, 40), 7],
      ['Echo: [Gus]: anything?', 7],
      ['Echo: [Gus]: still here?', 9],
      ['Echo: [Gus]: where am I?', undefined],
      [resetText().slice(0, 40), undefined],
      ['Echo: [Gus]: and now?', 9],
    ]);
  });

  it('a group upgraded to a supergroup: the answer follows to the new chat id, and so does the history', async () => {
    const agent = await agentWith({ agent: { telegramGroupPolicy: 'open' } });
    const from = { id: 5471, first_name: 'Gus' };
    const mention = (chatId: number, rest: string, chatType: 'group' | 'supergroup') => {
      const update = buildUpdate.groupMention({ chatId, from, botUsername: agent.botUsername, rest });
      return { ...update, message: { ...update.message, chat: { ...update.message.chat, type: chatType } } };
    };
    const conversationOfLastCall = () => conversationOf(agent, -1);
    const handle = handleFor(agent);
    const reset = (chatId: number) =>
      buildUpdate.groupCommand({ chatId, from, command: 'reset', botUsername: agent.botUsername });

    // Upgraded while a message of the old group was waiting for its answer: Telegram refuses the old id.
    const [oldA, newA] = [-5470, -1005470];
    await handle(mention(oldA, 'my name is Gus', 'group'));
    telegram.migrateChat(oldA, newA);
    const pending = mention(oldA, 'what is my name?', 'group');
    await handle(pending);
    expect(textsTo(agent, oldA)).toEqual(['Echo: [Gus]: my name is Gus']);
    const moved = sentBy(agent, newA);
    expect(moved.map((m) => m.text)).toEqual(['Echo: [Gus]: what is my name?']);
    // The old chat's message id means nothing in the new chat: no reply to it.
    expect(moved[0]?.params.reply_parameters).toBeUndefined();

    const upgradeA = buildUpdate.chatMigration({ fromChatId: oldA, toChatId: newA, from });
    await handle(upgradeA.inOldChat, upgradeA.inNewChat);
    await handle(mention(newA, 'and now?', 'supergroup'));
    expect(conversationOfLastCall()).toEqual([
      '[Gus]: my name is Gus',
      'Echo: [Gus]: my name is Gus',
      '[Gus]: what is my name?',
      'Echo: [Gus]: what is my name?',
      '[Gus]: and now?',
    ]);
    expect(textsTo(agent, newA)).toHaveLength(2);

    // Upgraded between messages: the service messages alone carry the history over, from its last /reset.
    const [oldB, newB] = [-5480, -1005480];
    await handle(mention(oldB, 'forget this', 'group'));
    await handle(reset(oldB));
    await handle(mention(oldB, 'I like tea', 'group'));
    const upgradeB = buildUpdate.chatMigration({ fromChatId: oldB, toChatId: newB, from });
    await handle(upgradeB.inNewChat, upgradeB.inOldChat);
    await handle(mention(newB, 'what do I like?', 'supergroup'));
    expect(conversationOfLastCall()).toEqual([
      '[Gus]: I like tea',
      'Echo: [Gus]: I like tea',
      '[Gus]: what do I like?',
    ]);
    expect(textsTo(agent, newB)).toEqual(['Echo: [Gus]: what do I like?']);

    // A /reset of the old group handled after the move was recorded (it waited in the old chat's lane).
    const [oldC, newC] = [-5485, -1005485];
    await handle(mention(oldC, 'my code is 1234', 'group'));
    const upgradeC = buildUpdate.chatMigration({ fromChatId: oldC, toChatId: newC, from });
    await handle(upgradeC.inNewChat);
    telegram.migrateChat(oldC, newC);
    await handle(reset(oldC));
    await handle(mention(newC, 'what is my code?', 'supergroup'));
    expect(conversationOfLastCall()).toEqual(['[Gus]: what is my code?']);

    const serviceRows = (await rowsOf(agent)).filter((r) =>
      [upgradeA, upgradeB].some((u) =>
        [u.inOldChat.update_id, u.inNewChat.update_id].includes(Number(r.updateId)),
      ),
    );
    expect(serviceRows.map((r) => r.status)).toEqual(['ignored', 'ignored', 'ignored', 'ignored']);
    // The service messages alone recorded the second move (the first was also seen through the 400).
    const [chatB] = await harness.services.db
      .select()
      .from(telegramChats)
      .where(and(eq(telegramChats.agentId, agent.agentId), eq(telegramChats.chatId, newB)));
    expect(Number(chatB?.migratedFromChatId)).toBe(oldB);
  });

  it('a group upgraded to a supergroup: messages pending across the move each see the answers before them', async () => {
    const agent = await agentWith({ agent: { telegramGroupPolicy: 'open' } });
    const from = { id: 5475, first_name: 'Gus' };
    const mention = (chatId: number, rest: string, chatType: 'group' | 'supergroup') => {
      const update = buildUpdate.groupMention({ chatId, from, botUsername: agent.botUsername, rest });
      return { ...update, message: { ...update.message, chat: { ...update.message.chat, type: chatType } } };
    };

    // Two messages of the old group pending at the upgrade: the first one's answer goes to the new chat,
    // and the second one's conversation still holds it.
    const [oldA, newA] = [-5475, -1005475];
    await deliver(agent, mention(oldA, 'my name is Gus', 'group'));
    await harness.settle();
    telegram.migrateChat(oldA, newA);
    await deliver(agent, mention(oldA, 'what is my name?', 'group'), mention(oldA, 'say it again', 'group'));
    await harness.settle();
    expect(textsTo(agent, newA)).toEqual(['Echo: [Gus]: what is my name?', 'Echo: [Gus]: say it again']);
    expect(conversationOf(agent, 2)).toEqual([
      '[Gus]: my name is Gus',
      'Echo: [Gus]: my name is Gus',
      '[Gus]: what is my name?',
      'Echo: [Gus]: what is my name?',
      '[Gus]: say it again',
    ]);

    // A message in the new chat waits while the old group's last message is being answered.
    const [oldB, newB] = [-5476, -1005476];
    telegram.migrateChat(oldB, newB);
    anthropic.setDelay(400);
    const before = claudeCalls(agent).length;
    await deliver(agent, mention(oldB, 'first', 'group'));
    const answeringFirst = harness.settle();
    await until(() => claudeCalls(agent).length > before, 'the old group message to reach Claude');
    const upgrade = buildUpdate.chatMigration({ fromChatId: oldB, toChatId: newB, from });
    await deliver(agent, upgrade.inNewChat, mention(newB, 'second', 'supergroup'));
    // A second driver takes the new chat's runs while the first answer is still with Claude.
    await harness.drain();
    await answeringFirst;
    await harness.settle();
    expect(textsTo(agent, newB)).toEqual(['Echo: [Gus]: first', 'Echo: [Gus]: second']);
    expect(conversationOf(agent, before + 1)).toEqual([
      '[Gus]: first',
      'Echo: [Gus]: first',
      '[Gus]: second',
    ]);
  });

  it('a group upgraded to a supergroup: a database error while recording the move is retried, not a failure', async () => {
    const agent = await agentWith({ agent: { telegramGroupPolicy: 'open' } });
    const from = { id: 5491, first_name: 'Ida' };
    const [oldChat, newChat] = [-5490, -1005490];
    const db = harness.services.db;
    // The first write of the move fails, as a dropped connection would (a sequence is not rolled back).
    await db.execute(sql`create sequence move_write_attempts`);
    await db.execute(sql`create function refuse_first_move() returns trigger language plpgsql as $$
      begin
        if new.migrated_from_chat_id is not null and nextval('move_write_attempts') = 1 then
          raise exception 'connection lost';
        end if;
        return new;
      end $$`);
    await db.execute(sql`create trigger refuse_first_move before insert or update on telegram_chats
      for each row execute function refuse_first_move()`);
    try {
      telegram.migrateChat(oldChat, newChat);
      await deliver(
        agent,
        buildUpdate.groupMention({ chatId: oldChat, from, botUsername: agent.botUsername, rest: 'hello' }),
      );
      await harness.settle();
    } finally {
      await db.execute(sql`drop trigger refuse_first_move on telegram_chats`);
      await db.execute(sql`drop function refuse_first_move()`);
      await db.execute(sql`drop sequence move_write_attempts`);
    }
    expect(textsTo(agent, newChat)).toEqual(['Echo: [Ida]: hello']);
    expect(textsTo(agent, oldChat)).toEqual([]);
    const outbound = (await rowsOf(agent)).filter((r) => r.direction === 'outbound');
    expect(outbound.map((r) => [r.status, Number(r.chatId)])).toEqual([['sent', newChat]]);
  });

  it('a database error storing a chunk Telegram accepted is waited out: the answer is sent once', async () => {
    const agent = await agentWith();
    const db = harness.services.db;
    // The first store of an answer fails, as a dropped connection would (a sequence is not rolled back).
    await db.execute(sql`create sequence outbound_write_attempts`);
    await db.execute(sql`create function refuse_first_outbound() returns trigger language plpgsql as $$
      begin
        if new.direction = 'outbound' and nextval('outbound_write_attempts') = 1 then
          raise exception 'connection lost';
        end if;
        return new;
      end $$`);
    await db.execute(sql`create trigger refuse_first_outbound before insert on telegram_messages
      for each row execute function refuse_first_outbound()`);
    try {
      await deliver(agent, buildUpdate.privateText({ from: { id: 6201 }, text: 'hello' }));
      await harness.settle();
    } finally {
      await db.execute(sql`drop trigger refuse_first_outbound on telegram_messages`);
      await db.execute(sql`drop function refuse_first_outbound()`);
      await db.execute(sql`drop sequence outbound_write_attempts`);
    }
    expect(textsTo(agent, 6201)).toEqual(['Echo: hello']);
    const outbound = (await rowsOf(agent)).filter((r) => r.direction === 'outbound');
    expect(outbound.map((r) => r.status)).toEqual(['sent']);
  });

  it('a service message in a DM (a pin) gets no answer, and no pairing code', async () => {
    const agent = await agentWith({ agent: { telegramDmPolicy: 'pairing' } });
    const from = { id: 5461, first_name: 'Pia' };
    const base = buildUpdate.privateText({ from, text: 'x' });
    const {
      text: _text,
      entities: _entities,
      ...rest
    } = base.message as typeof base.message & {
      entities?: unknown;
    };
    await deliver(agent, {
      update_id: base.update_id,
      message: { ...rest, pinned_message: { ...base.message, message_id: 1, text: 'remember this' } },
    });
    await harness.settle();
    expect(textsTo(agent, 5461)).toEqual([]);
    const [row] = (await rowsOf(agent)).filter((r) => r.direction === 'inbound');
    expect(row?.status).toBe('ignored');
  });

  it('/reset and /new forget the history; /start greets', async () => {
    const agent = await agentWith();
    const from = { id: 5501, first_name: 'Rae' };
    await deliver(agent, buildUpdate.privateText({ from, text: '/start' }));
    await deliver(agent, buildUpdate.privateText({ from, text: 'my name is Rae' }));
    await deliver(agent, buildUpdate.privateText({ from, text: '/reset' }));
    await deliver(agent, buildUpdate.privateText({ from, text: 'what is my name?' }));
    await harness.settle();

    const texts = textsTo(agent, 5501);
    expect(texts[0]).toMatch(/^Hello! I'm Helper/);
    expect(texts.slice(1)).toEqual(['Echo: my name is Rae', resetText('reset'), 'Echo: what is my name?']);
    expect(claudeCalls(agent).at(-1)?.messages).toEqual([{ role: 'user', content: 'what is my name?' }]);
  });

  it('a /reset stored in one batch with the message sent just after it forgets only what came before', async () => {
    const agent = await agentWith();
    const from = { id: 5502, first_name: 'Sam' };
    await deliver(agent, buildUpdate.privateText({ from, text: 'my name is Rae' }));
    await harness.settle();
    const ingress = new TelegramIngress({
      db: harness.services.db,
      keyring: harness.services.keyring,
      sendEvent: sendEventVia(harness.inngest),
      logger: captureLogger().logger,
      eventsStatement: harness.executor.statement,
    });
    // Two other chats' updates take both batches in flight; the /reset and the message after it
    // wait, and are then stored together, by one statement.
    const updates = [
      buildUpdate.privateText({ from: { id: 5503 }, text: 'filler one' }),
      buildUpdate.privateText({ from: { id: 5504 }, text: 'filler two' }),
      buildUpdate.privateText({ from, text: '/reset' }),
      buildUpdate.privateText({ from, text: 'call me Sam' }),
    ];
    await Promise.all(updates.map((update) => ingress.ingest({ id: agent.agentId }, update)));
    await harness.settle();
    await deliver(agent, buildUpdate.privateText({ from, text: 'what is my name?' }));
    await harness.settle();

    expect(textsTo(agent, 5502)).toEqual([
      'Echo: my name is Rae',
      resetText('reset'),
      'Echo: call me Sam',
      'Echo: what is my name?',
    ]);
    expect(conversationOf(agent, -1)).toEqual(['call me Sam', 'Echo: call me Sam', 'what is my name?']);
  });

  it('splits a 5,000-character answer at a paragraph, one step per chunk, never re-sending a sent chunk', async () => {
    const agent = await agentWith({ agent: { maxTokens: 4096 } });
    const paragraph = (n: number) => `${'word '.repeat(99)}end ${n}.`;
    const long = Array.from({ length: 10 }, (_, i) => paragraph(i)).join('\n\n');
    expect(long.length).toBeGreaterThan(5_000);
    anthropic.setReply(long, agent.claudeKey);
    // The second chunk's first try fails (Telegram 500): the run retries that step only.
    telegram.failNext('sendMessage', 1, TELEGRAM_ERRORS.internal(), agent.token, 1);
    await deliver(agent, buildUpdate.privateText({ from: { id: 5601 }, text: 'tell me a lot' }));
    await harness.settle();

    const sent = sentBy(agent, 5601);
    expect(sent).toHaveLength(2);
    for (const message of sent) expect(message.text.length).toBeLessThanOrEqual(4096);
    expect(sent.map((m) => m.text).join('\n\n')).toBe(long);
    expect(telegram.callsOf('sendMessage', agent.token)).toHaveLength(3);
    const outbound = (await rowsOf(agent)).filter((r) => r.direction === 'outbound');
    expect(outbound).toHaveLength(2);
    expect(outbound[0]?.outputTokens).toBeGreaterThan(0);
    expect(outbound[1]?.outputTokens).toBeNull();
  });

  it("keeps every chunk of a long answer in a discussion group's comment thread, as a reply", async () => {
    const agent = await agentWith({ agent: { maxTokens: 4096, telegramGroupPolicy: 'open' } });
    const chatId = -1002468;
    const paragraph = (n: number) => `${'word '.repeat(99)}end ${n}.`;
    anthropic.setReply(Array.from({ length: 10 }, (_, i) => paragraph(i)).join('\n\n'), agent.claudeKey);
    const from = { id: 5651, first_name: 'Gus' };
    const comment = buildUpdate.groupMention({
      chatId,
      from,
      botUsername: agent.botUsername,
      rest: 'explain',
    });
    // A comment under a channel post: in the post's reply thread, which is not a forum topic.
    await handleFor(agent)({
      ...comment,
      message: {
        ...comment.message,
        message_thread_id: 500,
        reply_to_message: {
          message_id: 500,
          from: { id: 777000, is_bot: false, first_name: 'Telegram' },
          sender_chat: { id: -100777, type: 'channel', title: 'MyChan' },
          chat: comment.message.chat,
          date: 1,
          text: 'post',
          is_automatic_forward: true,
        },
      },
    });
    const sent = sentBy(agent, chatId);
    expect(sent).toHaveLength(2);
    for (const message of sent) {
      expect(message.params.reply_parameters).toMatchObject({ message_id: comment.message.message_id });
      expect(message.params.message_thread_id).toBeUndefined();
    }
  });

  it('retries Claude after 529 and 500, honouring retry-after, and answers once', async () => {
    const agent = await agentWith();
    anthropic.failNext(1, ANTHROPIC_ERRORS.overloaded(20), agent.claudeKey);
    anthropic.failNext(1, ANTHROPIC_ERRORS.apiError(), agent.claudeKey);
    await deliver(agent, buildUpdate.privateText({ from: { id: 5701 }, text: 'patience' }));
    const before = harness.clock.now();
    await harness.settle();

    expect(textsTo(agent, 5701)).toEqual(['Echo: patience']);
    expect(claudeCalls(agent)).toHaveLength(3);
    expect(harness.clock.now() - before).toBeGreaterThanOrEqual(20_000);
    expect((await rowsOf(agent))[0]?.status).toBe('answered');
  });

  it('a reply run the operator cancels releases its message: the chat is answered again at once', async () => {
    const agent = await agentWith();
    // Claude is overloaded for ten minutes: the run holds its message (claimed) while it waits to retry.
    anthropic.failNext(1, ANTHROPIC_ERRORS.overloaded(600), agent.claudeKey);
    await deliver(agent, buildUpdate.privateText({ from: { id: 5751 }, text: 'first' }));
    await harness.drain();
    expect((await rowsOf(agent)).map((r) => r.status)).toEqual(['processing']);
    const [run] = (await harness.runsOf('openclaw-platform-reply-to-message')).filter(
      (r) => (r.event.data as { agentId: string }).agentId === agent.agentId,
    );

    const cancelled = await app.request(`/api/v1/admin/runs/${run?.id}/cancel`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TEST_ADMIN_KEY}` },
    });
    expect(cancelled.status).toBe(200);
    await harness.drain();
    expect((await rowsOf(agent)).map((r) => r.status)).toEqual(['failed']);

    // The next message does not wait for the cancelled one (up to two minutes otherwise): answered
    // with the clock standing still. The unanswered question stays in the history, in one user turn.
    const before = harness.clock.now();
    await deliver(agent, buildUpdate.privateText({ from: { id: 5751 }, text: 'second' }));
    await harness.drain();
    expect(textsTo(agent, 5751)).toEqual(['Echo: first\n\nsecond']);
    expect(harness.clock.now()).toBe(before);
    const [release] = (await harness.runsOf('openclaw-platform-release-cancelled-reply')).filter(
      (r) => (r.event.data as { run_id: string }).run_id === run?.id,
    );
    expect(release?.status).toBe('completed');
    expect(release?.output).toEqual({ released: true });
  });

  it('Claude 401: the credential is marked invalid, the user gets one apology, the customer agent.error', async () => {
    const agent = await agentWith({ customer: { webhookUrl: receiver.url } });
    anthropic.failNext(1, ANTHROPIC_ERRORS.unauthorized(), agent.claudeKey);
    await deliver(agent, buildUpdate.privateText({ from: { id: 5801 }, text: 'hello?' }));
    await harness.settle();

    expect(textsTo(agent, 5801)).toEqual([APOLOGY_TEXT]);
    expect(claudeCalls(agent)).toHaveLength(1);
    const [claude] = await harness.services.db
      .select()
      .from(credentials)
      .where(and(eq(credentials.agentId, agent.agentId), eq(credentials.kind, 'claude')));
    expect(claude?.validationStatus).toBe('invalid');
    expect(claude?.validationReason).toMatch(/401/);
    const row = await agentRow(agent);
    expect(row?.lastErrorCode).toBe('claude_credential_invalid');
    expect(row?.status).toBe('running');
    expect(webhookEventsOf(agent, 'agent.error').map((e) => e.data.code)).toEqual([
      'claude_credential_invalid',
    ]);
    expect((await rowsOf(agent))[0]?.status).toBe('failed');
  });

  it('a user who blocked the bot ends the run quietly; Telegram 429 waits retry_after; bad entities fall back to plain text', async () => {
    const agent = await agentWith({ customer: { webhookUrl: receiver.url } });
    telegram.failNext('sendMessage', 1, TELEGRAM_ERRORS.blocked(), agent.token);
    await deliver(agent, buildUpdate.privateText({ from: { id: 5901 }, text: 'bye' }));
    await harness.settle();
    expect(textsTo(agent, 5901)).toEqual([]);
    expect(telegram.callsOf('sendMessage', agent.token)).toHaveLength(1);
    expect(webhookEventsOf(agent, 'agent.error')).toEqual([]);
    const rows = await rowsOf(agent);
    expect(rows.map((r) => [r.direction, r.status])).toEqual([
      ['inbound', 'failed'],
      ['outbound', 'failed'],
    ]);
    expect(rows[1]?.inputTokens).toBeGreaterThan(0);

    telegram.failNext('sendMessage', 1, TELEGRAM_ERRORS.tooManyRequests(7), agent.token);
    const before = harness.clock.now();
    await deliver(agent, buildUpdate.privateText({ from: { id: 5902 }, text: 'slow' }));
    await harness.settle();
    expect(textsTo(agent, 5902)).toEqual(['Echo: slow']);
    expect(harness.clock.now() - before).toBeGreaterThanOrEqual(7_000);

    anthropic.setReply('**bold** answer', agent.claudeKey);
    telegram.failNext(
      'sendMessage',
      1,
      { error_code: 400, description: "Bad Request: can't parse entities: unsupported start tag" },
      agent.token,
    );
    await deliver(agent, buildUpdate.privateText({ from: { id: 5903 }, text: 'format' }));
    await harness.settle();
    const plain = sentBy(agent, 5903);
    expect(plain.map((m) => [m.text, m.parseMode])).toEqual([['bold answer', undefined]]);
  });

  it.each([
    [
      'refuses the answer (400)',
      1,
      { error_code: 400, description: 'Bad Request: TOPIC_CLOSED' },
      'telegram_send_failed',
    ],
    ['fails it until the retries are spent (500)', 6, TELEGRAM_ERRORS.internal(), 'reply_failed'],
  ] as const)(
    "when Telegram %s the user gets one apology and the answer's tokens are still counted",
    async (_, failures, error, code) => {
      const agent = await agentWith({ customer: { webhookUrl: receiver.url } });
      telegram.failNext('sendMessage', failures, error, agent.token);
      await deliver(agent, buildUpdate.privateText({ from: { id: 5951 }, text: 'are you there?' }));
      const before = harness.clock.now();
      await harness.settle();
      // A refusal ends the run at once: no backoff, neither of the step nor of the whole run.
      if (failures === 1) expect(harness.clock.now() - before).toBeLessThan(1_000);

      expect(textsTo(agent, 5951)).toEqual([APOLOGY_TEXT]);
      expect(telegram.callsOf('sendMessage', agent.token)).toHaveLength(failures + 1);
      expect(webhookEventsOf(agent, 'agent.error').map((e) => e.data.code)).toEqual([code]);
      const rows = await rowsOf(agent);
      expect(rows.map((r) => [r.direction, r.status, r.text])).toEqual([
        ['inbound', 'failed', 'are you there?'],
        ['outbound', 'failed', 'Echo: are you there?'],
        ['outbound', 'sent', APOLOGY_TEXT],
      ]);
      const unsent = rows[1];
      expect(unsent?.inputTokens).toBeGreaterThan(0);
      expect(await tokensUsedToday(harness.services.db, agent.agentId, new Date())).toBe(
        (unsent?.inputTokens ?? 0) + (unsent?.outputTokens ?? 0),
      );
    },
  );

  it('quota: one notice per chat per day past the limit, and agent.error quota_exceeded', async () => {
    const agent = await agentWith({ customer: { webhookUrl: receiver.url, limits: { messagesPerDay: 1 } } });
    const from = { id: 6001 };
    for (const text of ['first', 'second', 'third']) {
      await deliver(agent, buildUpdate.privateText({ from, text }));
    }
    await harness.settle();
    expect(textsTo(agent, 6001)).toEqual(['Echo: first', QUOTA_NOTICE]);
    expect(claudeCalls(agent)).toHaveLength(1);
    expect(webhookEventsOf(agent, 'agent.error').map((e) => e.data.code)).toEqual(['quota_exceeded']);
  });

  it('does not answer for a suspended customer, a stopped agent or an edit; says it reads text only', async () => {
    const agent = await agentWith();
    await deliver(agent, buildUpdate.privateText({ from: { id: 6101 }, text: 'original', messageId: 77 }));
    await harness.settle();
    await deliver(
      agent,
      buildUpdate.editedPrivateText({ from: { id: 6101 }, text: 'edited', messageId: 77 }),
    );
    await harness.settle();
    const sticker = buildUpdate.privateText({ from: { id: 6101 }, text: 'x' });
    const { text: _text, ...stickerMessage } = sticker.message;
    await deliver(agent, {
      update_id: sticker.update_id,
      message: {
        ...stickerMessage,
        sticker: { file_id: 'CAAC', width: 512, height: 512, is_animated: false },
      },
    });
    await harness.settle();
    // Stored while all was well, answered after the customer was suspended / the agent stopped: no answer.
    const { db } = harness.services;
    await deliver(agent, buildUpdate.privateText({ from: { id: 6101 }, text: 'while suspended' }));
    await db.update(customers).set({ status: 'suspended' }).where(eq(customers.id, agent.customerId));
    await harness.settle();
    await db.update(customers).set({ status: 'active' }).where(eq(customers.id, agent.customerId));
    await deliver(agent, buildUpdate.privateText({ from: { id: 6101 }, text: 'while stopping' }));
    await db.update(agents).set({ status: 'stopped' }).where(eq(agents.id, agent.agentId));
    await harness.settle();
    expect(textsTo(agent, 6101)).toEqual(['Echo: original', TEXT_ONLY_NOTICE]);
    const statuses = (await rowsOf(agent)).filter((r) => r.direction === 'inbound').map((r) => r.status);
    expect(statuses).toEqual(['answered', 'ignored', 'ignored', 'ignored', 'ignored']);
  });

  /** An album in a DM as Telegram sends it: one message per photo, sharing a media_group_id. */
  const album = (from: { id: number }, groupId: string, captions: (string | undefined)[]) =>
    captions.map((caption) => {
      const { text: _text, ...message } = buildUpdate.privateText({ from, text: 'x' }).message;
      return {
        update_id: buildUpdate.privateText({ from, text: 'x' }).update_id,
        message: {
          ...message,
          media_group_id: groupId,
          photo: [{ file_id: `p-${groupId}`, file_unique_id: `u-${groupId}`, width: 90, height: 60 }],
          ...(caption ? { caption } : {}),
        },
      };
    });

  it('a DM naming another bot in a command is answered by Claude and kept in the history', async () => {
    const agent = await agentWith();
    const from = { id: 6401 };
    const say = handleFor(agent);
    await say(buildUpdate.privateText({ from, text: 'first' }));
    await say(buildUpdate.privateText({ from, text: '/reset@another_bot' }));
    await say(buildUpdate.privateText({ from, text: 'third' }));
    expect(textsTo(agent, 6401)).toEqual(['Echo: first', 'Echo: /reset@another_bot', 'Echo: third']);
    expect(conversationOf(agent, -1)).toEqual([
      'first',
      'Echo: first',
      '/reset@another_bot',
      'Echo: /reset@another_bot',
      'third',
    ]);
  });

  it('answers a photo album once: the caption, or one notice when none has one', async () => {
    const agent = await agentWith();
    await handleFor(agent)(...album({ id: 6201 }, 'album-1', ['what are these?', undefined, undefined]));
    expect(textsTo(agent, 6201)).toEqual([`Echo: ${withAttachmentNote('what are these?', 'a photo')}`]);
    await handleFor(agent)(...album({ id: 6202 }, 'album-2', [undefined, undefined, undefined, undefined]));
    expect(textsTo(agent, 6202)).toEqual([TEXT_ONLY_NOTICE]);
    // The album's items are all settled: the next message is answered as usual.
    await handleFor(agent)(buildUpdate.privateText({ from: { id: 6202 }, text: 'and now?' }));
    expect(textsTo(agent, 6202)).toEqual([TEXT_ONLY_NOTICE, 'Echo: and now?']);
    const statuses = (await rowsOf(agent)).filter((r) => r.direction === 'inbound').map((r) => r.status);
    expect(statuses.filter((status) => status !== 'answered' && status !== 'ignored')).toEqual([]);
  });

  it("keeps a caption's photo note when the caption is history, as Claude read it when it was new", async () => {
    const agent = await agentWith();
    const from = { id: 6211 };
    await handleFor(agent)(
      buildUpdate.asPhoto(buildUpdate.privateText({ from, text: 'what breed is this?' })),
      buildUpdate.privateText({ from, text: 'and how big do they get?' }),
    );
    const captioned = withAttachmentNote('what breed is this?', 'a photo');
    expect(conversationOf(agent, -1)).toEqual([captioned, `Echo: ${captioned}`, 'and how big do they get?']);
  });

  it.each([
    ['after the first', [undefined, 'what is this?'], [0, 1]],
    ['before the rest, delivered last', ['what is this?', undefined], [1, 0]],
  ] as const)(
    'answers an album once when its captioned item is stored %s, while an uncaptioned one waits',
    async (_, captions, order) => {
      const agent = await agentWith();
      const from = { id: 6251 + order[0] };
      const items = album(from, `album-late-${order[0]}`, [...captions]);
      // Telegram's connections deliver the items a moment apart: the first to arrive is decided (and
      // waits) before the other is stored.
      await deliver(agent, items[order[0]] as Record<string, unknown>);
      await harness.drain();
      await deliver(agent, items[order[1]] as Record<string, unknown>);
      await harness.settle();
      expect(textsTo(agent, from.id)).toEqual([`Echo: ${withAttachmentNote('what is this?', 'a photo')}`]);
      const statuses = (await rowsOf(agent)).filter((r) => r.direction === 'inbound').map((r) => r.status);
      expect(statuses.sort()).toEqual(['answered', 'ignored']);
    },
  );

  it('an uncaptioned album in a group, not addressed to the bot, is let go at once, not waited on', async () => {
    const agent = await agentWith({ agent: { telegramGroupPolicy: 'open' } });
    const {
      text: _text,
      entities: _entities,
      ...message
    } = buildUpdate.groupText({
      chatId: -6271,
      from: { id: 6271 },
      text: 'x',
    }).message as Record<string, unknown>;
    const item = {
      update_id: buildUpdate.groupText({ chatId: -6271, from: { id: 6271 }, text: 'x' }).update_id,
      message: {
        ...message,
        media_group_id: 'album-group',
        photo: [{ file_id: 'p-group', file_unique_id: 'u-group', width: 90, height: 60 }],
      },
    };
    await deliver(agent, item);
    await harness.drain();
    expect((await rowsOf(agent)).map((row) => row.status)).toEqual(['ignored']);
    expect(textsTo(agent, -6271)).toEqual([]);
  });

  it('gives a stranger one pairing code for an album whose items arrive a moment apart', async () => {
    const agent = await createRunningAgent(harness, telegram, anthropic, { agent: { name: 'Concierge' } });
    const [first, second] = album({ id: 6311 }, 'album-apart', [undefined, undefined]);
    await deliver(agent, second as Record<string, unknown>);
    await harness.drain();
    await deliver(agent, first as Record<string, unknown>);
    await harness.settle();
    expect(textsTo(agent, 6311)).toHaveLength(1);
  });

  it('gives a stranger who sends an album one pairing code, not one per photo', async () => {
    const agent = await createRunningAgent(harness, telegram, anthropic, { agent: { name: 'Concierge' } });
    await handleFor(agent)(...album({ id: 6301 }, 'album-3', [undefined, undefined, undefined]));
    const texts = textsTo(agent, 6301);
    expect(texts).toHaveLength(1);
    expect(texts[0]).toMatch(/pairing code: [A-Z2-9]{8}/);
  });

  /** Posts an update to `application` with the agent's webhook secret, as Telegram would. */
  const postUpdate = async (application: App, agent: RunningAgent, update: Record<string, unknown>) => {
    const { db, keyring } = harness.services;
    const { readCredentialSecret } = await import('../../lib/credentials');
    const secret = (await readCredentialSecret(db, keyring, agent.agentId, 'telegram_webhook')) as string;
    return application.request(`/telegram/${agent.agentId}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-telegram-bot-api-secret-token': secret },
      body: JSON.stringify(update),
    });
  };
  /** Ingress as with Inngest: the update is stored, then its event sent, then the row marked sent. */
  const sendAfterStoreApp = () => createApp(harness.services, { sendEvent: sendEventVia(harness.inngest) });

  it('an update whose event went out but whose row was never marked sent is answered once, then marked by the sweeper', async () => {
    const agent = await agentWith();
    const { db } = harness.services;
    // Marking this row fails, as when the process dies between the send and the mark.
    await db.execute(
      sql`alter table telegram_messages add constraint test_refuse_mark check (event_sent_at is null or text is distinct from 'unmarked')`,
    );
    try {
      const update = buildUpdate.privateText({ from: { id: 6301 }, text: 'unmarked' });
      expect((await postUpdate(sendAfterStoreApp(), agent, update)).status).toBe(200);
      await harness.settle();
      expect(textsTo(agent, 6301)).toEqual(['Echo: unmarked']);
      expect((await rowsOf(agent))[0]?.eventSentAt).toBeNull();
    } finally {
      await db.execute(sql`alter table telegram_messages drop constraint test_refuse_mark`);
    }
    for (let tick = 0; tick < 2; tick += 1) {
      await harness.advance(60_000);
      await harness.settle();
    }
    expect(textsTo(agent, 6301)).toEqual(['Echo: unmarked']);
    const [row] = await rowsOf(agent);
    expect(row).toMatchObject({ direction: 'inbound', status: 'answered', eventSentAt: expect.any(Date) });
  });

  it('an update whose event cannot be stored is not stored either: 5xx, and the redelivery is answered once', async () => {
    const agent = await agentWith();
    const { db } = harness.services;
    // The event's insert fails inside the statement that also stores the update.
    await db.execute(
      sql`alter table executor_events add constraint test_refuse_events check (false) not valid`,
    );
    const update = buildUpdate.privateText({ from: { id: 6401 }, text: 'all or nothing' });
    try {
      const refused = await postUpdate(app, agent, update);
      expect(refused.status).toBeGreaterThanOrEqual(500);
      expect(await rowsOf(agent)).toHaveLength(0);
    } finally {
      await db.execute(sql`alter table executor_events drop constraint test_refuse_events`);
    }

    // Telegram delivers it again; this time the statement commits.
    expect((await postUpdate(app, agent, update)).status).toBe(200);
    await harness.settle();
    expect(textsTo(agent, 6401)).toEqual(['Echo: all or nothing']);
    const rows = await rowsOf(agent);
    expect(rows.map((row) => [row.direction, row.status])).toEqual([
      ['inbound', 'answered'],
      ['outbound', 'sent'],
    ]);
    expect(rows[0]?.eventSentAt).toBeInstanceOf(Date);
  });

  it('the outbox sweeper sends the event of an update stored when the engine was down, answered once', async () => {
    const agent = await agentWith();
    const failing = createApp(harness.services, {
      sendEvent: async () => {
        throw new Error('engine down');
      },
    });
    const update = buildUpdate.privateText({ from: { id: 6201 }, text: 'lost?' });
    expect((await postUpdate(failing, agent, update)).status).toBe(200);
    await harness.settle();
    expect(textsTo(agent, 6201)).toEqual([]);
    expect((await rowsOf(agent))[0]?.eventSentAt).toBeNull();

    // The next cron tick of sweep-telegram-outbox (the clock is ahead of the row by far more than the grace).
    await harness.advance(60_000);
    await harness.settle();
    await harness.advance(60_000);
    await harness.settle();
    expect(textsTo(agent, 6201)).toEqual(['Echo: lost?']);
    const [row] = await rowsOf(agent);
    expect(row?.eventSentAt).toBeInstanceOf(Date);
    expect(row?.status).toBe('answered');
  });

  it("the apology does not wait for an engine that refuses the customer's agent.error", async () => {
    const agent = await agentWith({ customer: { webhookUrl: receiver.url } });
    const unsent = createApp(harness.services, {
      sendEvent: async () => {
        throw new Error('engine down');
      },
    });
    const update = buildUpdate.privateText({ from: { id: 6301 }, text: 'anyone?' });
    expect((await postUpdate(unsent, agent, update)).status).toBe(200);
    const [stored] = await rowsOf(agent);
    const ref = { agentId: agent.agentId, customerId: agent.customerId, messageId: stored!.id, chatId: 6301 };
    const deps = (sendEvent: SendEvent) => ({
      db: harness.services.db,
      keyring: harness.services.keyring,
      telegramApiRoot: harness.services.config.telegram.apiRoot,
      sendEvent,
    });
    const failure = {
      ref,
      runId: 'run-6301',
      error: { code: 'reply_failed', message: 'spent' },
      now: new Date(),
    };

    // The failure handler's event is refused: the user has the apology all the same, once.
    await expect(
      failReply(
        deps(async () => Promise.reject(new Error('engine down'))),
        failure,
      ),
    ).rejects.toThrow('engine down');
    expect(textsTo(agent, 6301)).toEqual([APOLOGY_TEXT]);
    // Its retry hands the event over and apologises no more.
    expect(await failReply(deps(sendEventVia(harness.inngest)), failure)).toEqual({ apologised: false });
    await harness.settle();
    expect(textsTo(agent, 6301)).toEqual([APOLOGY_TEXT]);
    expect(webhookEventsOf(agent, 'agent.error').map((event) => event.data.code)).toEqual(['reply_failed']);
  });
});

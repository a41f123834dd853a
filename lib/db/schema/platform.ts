import { sql } from 'drizzle-orm';
import {
  bigint,
  boolean,
  date,
  doublePrecision,
  index,
  integer,
  json,
  jsonb,
  pgEnum,
  pgTable,
  primaryKey,
  smallint,
  text,
  uniqueIndex,
  uuid,
} from 'drizzle-orm/pg-core';
import { createdAt, id, tz, updatedAt } from './columns';

export const planEnum = pgEnum('plan', ['free', 'pro', 'enterprise']);
export const customerStatusEnum = pgEnum('customer_status', ['active', 'suspended']);
export const agentStatusEnum = pgEnum('agent_status', [
  'stopped',
  'starting',
  'running',
  'stopping',
  'error',
]);
export const dmPolicyEnum = pgEnum('telegram_dm_policy', ['pairing', 'allowlist', 'open', 'disabled']);
export const groupPolicyEnum = pgEnum('telegram_group_policy', ['open', 'allowlist', 'disabled']);
/** `telegram_webhook` holds the per-agent secret_token Telegram echoes in X-Telegram-Bot-Api-Secret-Token. */
export const credentialKindEnum = pgEnum('credential_kind', ['telegram', 'claude', 'telegram_webhook']);
export const validationStatusEnum = pgEnum('validation_status', ['valid', 'invalid', 'unreachable']);
export const messageDirectionEnum = pgEnum('message_direction', ['inbound', 'outbound']);
export const messageStatusEnum = pgEnum('message_status', [
  'received',
  'processing',
  'answered',
  'ignored',
  'failed',
  'sent',
]);
export const pairingStatusEnum = pgEnum('pairing_status', ['pending', 'approved', 'rejected', 'expired']);
export const deliveryStatusEnum = pgEnum('webhook_delivery_status', [
  'pending',
  'retrying',
  'succeeded',
  'failed',
]);
export const actorTypeEnum = pgEnum('audit_actor_type', ['admin', 'customer', 'system']);
export const auditOutcomeEnum = pgEnum('audit_outcome', ['success', 'failure']);

export const customers = pgTable(
  'customers',
  {
    id: id(),
    name: text('name').notNull(),
    email: text('email'),
    plan: planEnum('plan').notNull().default('free'),
    maxAgents: integer('max_agents').notNull().default(1),
    status: customerStatusEnum('status').notNull().default('active'),
    /** Per-customer overrides of the plan's limits (null = the plan's). */
    apiRequestsPerHour: integer('api_requests_per_hour'),
    messagesPerDay: integer('messages_per_day'),
    webhookUrl: text('webhook_url'),
    /** Webhook signing secret, encrypted like credentials. */
    webhookSecretCiphertext: text('webhook_secret_ciphertext'),
    webhookSecretIv: text('webhook_secret_iv'),
    webhookSecretAuthTag: text('webhook_secret_auth_tag'),
    webhookSecretKeyVersion: smallint('webhook_secret_key_version'),
    /** The secret before the last rotation keeps signing until this time (grace period). */
    previousWebhookSecretCiphertext: text('previous_webhook_secret_ciphertext'),
    previousWebhookSecretIv: text('previous_webhook_secret_iv'),
    previousWebhookSecretAuthTag: text('previous_webhook_secret_auth_tag'),
    previousWebhookSecretKeyVersion: smallint('previous_webhook_secret_key_version'),
    previousWebhookSecretExpiresAt: tz('previous_webhook_secret_expires_at'),
    suspendedAt: tz('suspended_at'),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
  (t) => [
    index('customers_created_idx').on(t.createdAt, t.id),
    index('customers_plan_status_idx').on(t.plan, t.status, t.createdAt),
  ],
);

export const apiKeys = pgTable(
  'api_keys',
  {
    id: id(),
    customerId: uuid('customer_id')
      .notNull()
      .references(() => customers.id, { onDelete: 'cascade' }),
    /** `oc_` + the first 8 characters: shown to people, never enough to authenticate. */
    prefix: text('prefix').notNull(),
    /** Hex SHA-256 of the whole key. */
    hash: text('hash').notNull(),
    lastUsedAt: tz('last_used_at'),
    revokedAt: tz('revoked_at'),
    createdAt: createdAt(),
  },
  (t) => [uniqueIndex('api_keys_hash_idx').on(t.hash), index('api_keys_customer_idx').on(t.customerId)],
);

export const agents = pgTable(
  'agents',
  {
    id: id(),
    customerId: uuid('customer_id')
      .notNull()
      .references(() => customers.id, { onDelete: 'cascade' }),
    name: text('name').notNull(),
    systemPrompt: text('system_prompt').notNull().default(''),
    model: text('model').notNull(),
    maxTokens: integer('max_tokens').notNull().default(1024),
    temperature: doublePrecision('temperature').notNull().default(0.7),
    telegramAllowFrom: jsonb('telegram_allow_from').$type<string[]>().notNull().default([]),
    telegramGroupPolicy: groupPolicyEnum('telegram_group_policy').notNull().default('allowlist'),
    telegramDmPolicy: dmPolicyEnum('telegram_dm_policy').notNull().default('pairing'),
    /** Username the customer says the bot has; checked against getMe at validation. */
    botUsername: text('bot_username'),
    /** Input + output tokens per UTC day after which the agent stops calling Claude (null = none). */
    dailyTokenBudget: integer('daily_token_budget'),
    status: agentStatusEnum('status').notNull().default('stopped'),
    statusSince: tz('status_since').notNull().defaultNow(),
    /**
     * When the agent was stopped for a Telegram credential change, while the customer's agent.stopped
     * event for it is not yet handed to the engine: the retried request or the reconcile cron sends it.
     */
    unsentStopEventAt: tz('unsent_stop_event_at'),
    lastError: text('last_error'),
    lastErrorCode: text('last_error_code'),
    lastErrorAt: tz('last_error_at'),
    /** From Telegram's getMe at validation. */
    telegramBotId: bigint('telegram_bot_id', { mode: 'number' }),
    telegramBotUsername: text('telegram_bot_username'),
    /** Which delivery the running agent uses: Telegram webhook or the worker's long polling. */
    telegramDelivery: text('telegram_delivery', { enum: ['webhook', 'polling'] }),
    lastMessageAt: tz('last_message_at'),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
  (t) => [
    index('agents_customer_created_idx').on(t.customerId, t.createdAt, t.id),
    index('agents_status_idx').on(t.status),
    // One Telegram bot answers through one running agent at most.
    uniqueIndex('agents_running_bot_idx')
      .on(t.telegramBotId)
      .where(sql`${t.status} in ('starting', 'running') and ${t.telegramBotId} is not null`),
  ],
);

export const credentials = pgTable(
  'credentials',
  {
    id: id(),
    agentId: uuid('agent_id')
      .notNull()
      .references(() => agents.id, { onDelete: 'cascade' }),
    customerId: uuid('customer_id')
      .notNull()
      .references(() => customers.id, { onDelete: 'cascade' }),
    kind: credentialKindEnum('kind').notNull(),
    ciphertext: text('ciphertext').notNull(),
    iv: text('iv').notNull(),
    authTag: text('auth_tag').notNull(),
    keyVersion: smallint('key_version').notNull(),
    last4: text('last4').notNull(),
    /**
     * HMAC of the secret under a key derived from the master key of `key_version`: finds the same bot
     * token on two agents, and checks a webhook call's secret_token, without decrypting.
     */
    fingerprint: text('fingerprint'),
    validatedAt: tz('validated_at'),
    validationStatus: validationStatusEnum('validation_status'),
    validationReason: text('validation_reason'),
    validationDetails: jsonb('validation_details').$type<Record<string, unknown>>(),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
  (t) => [
    uniqueIndex('credentials_agent_kind_idx').on(t.agentId, t.kind),
    index('credentials_fingerprint_idx').on(t.kind, t.fingerprint),
    index('credentials_key_version_idx').on(t.keyVersion),
  ],
);

/**
 * The Idempotency-Key of a request that succeeded and must not happen twice (an agent's creation, a
 * webhook secret rotation), for 24 hours: the same request sent again with it (a retry after a
 * timeout or a lost answer) gets the first answer back. Per customer: one tenant's keys never meet
 * another's.
 */
export const idempotencyKeys = pgTable(
  'idempotency_keys',
  {
    customerId: uuid('customer_id')
      .notNull()
      .references(() => customers.id, { onDelete: 'cascade' }),
    key: text('key').notNull(),
    /** What the key was used for (`agent.create`, `webhook.rotate_secret`): another operation is refused. */
    operation: text('operation').notNull(),
    /** SHA-256 of the validated request body: the same key with another body is refused. */
    requestHash: text('request_hash').notNull(),
    /** What the first answer needs to be given again (json, not jsonb: its keys keep their order). */
    response: json('response').notNull(),
    createdAt: createdAt(),
  },
  (t) => [primaryKey({ columns: [t.customerId, t.key] })],
);

/**
 * The operator's Idempotency-Keys for creating customers (an admin request has no customer to file
 * them under). The answer carried an API key kept only as a hash, so it cannot be stored to give
 * again: a retry gets the customer with a new key instead, while the key issued is still unused.
 */
export const adminIdempotencyKeys = pgTable('admin_idempotency_keys', {
  key: text('key').primaryKey(),
  operation: text('operation').notNull(),
  /** SHA-256 of the validated request body: the same key with another body is refused. */
  requestHash: text('request_hash').notNull(),
  /** The customer created; null once it is deleted, which a retry is told. */
  customerId: uuid('customer_id').references(() => customers.id, { onDelete: 'set null' }),
  /** The API key the latest answer carried: a retry replaces it only while it is unused and active. */
  apiKeyId: uuid('api_key_id').references(() => apiKeys.id, { onDelete: 'set null' }),
  createdAt: createdAt(),
});

export const telegramChats = pgTable(
  'telegram_chats',
  {
    id: id(),
    agentId: uuid('agent_id')
      .notNull()
      .references(() => agents.id, { onDelete: 'cascade' }),
    chatId: bigint('chat_id', { mode: 'number' }).notNull(),
    type: text('type').notNull(),
    title: text('title'),
    username: text('username'),
    /** Messages before this time are not part of the conversation (/reset, /new). */
    historyResetAt: tz('history_reset_at'),
    /**
     * The same for each forum topic (topic id → ISO time), and `"*"`: the floor of every topic (a /reset
     * made before topics had their own). `history_reset_at` is the General topic's.
     */
    topicHistoryResetAt: jsonb('topic_history_reset_at').$type<Record<string, string>>(),
    /** UTC day (YYYY-MM-DD) on which the quota notice was last sent to this chat. */
    quotaNoticeDay: text('quota_notice_day'),
    budgetNoticeDay: text('budget_notice_day'),
    /**
     * The inbound message whose decision claimed that day's notice: its decision, run again after a
     * crash lost the first one's result, still sends it (any other message of the day does not).
     */
    quotaNoticeMessageId: uuid('quota_notice_message_id'),
    budgetNoticeMessageId: uuid('budget_notice_message_id'),
    blockedAt: tz('blocked_at'),
    /**
     * The basic group this supergroup was upgraded from (Telegram gives it a new chat id): its messages
     * are part of this chat's conversation.
     */
    migratedFromChatId: bigint('migrated_from_chat_id', { mode: 'number' }),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
  (t) => [
    uniqueIndex('telegram_chats_agent_chat_idx').on(t.agentId, t.chatId),
    // The supergroup a basic group became, found from the old group's messages.
    index('telegram_chats_migrated_from_idx')
      .on(t.agentId, t.migratedFromChatId)
      .where(sql`${t.migratedFromChatId} is not null`),
  ],
);

export const telegramMessages = pgTable(
  'telegram_messages',
  {
    id: id(),
    agentId: uuid('agent_id')
      .notNull()
      .references(() => agents.id, { onDelete: 'cascade' }),
    customerId: uuid('customer_id')
      .notNull()
      .references(() => customers.id, { onDelete: 'cascade' }),
    chatId: bigint('chat_id', { mode: 'number' }).notNull(),
    /** Telegram's update_id for inbound messages; unique per agent, so a redelivery is a no-op. */
    updateId: bigint('update_id', { mode: 'number' }),
    telegramMessageId: bigint('telegram_message_id', { mode: 'number' }),
    direction: messageDirectionEnum('direction').notNull(),
    fromUserId: bigint('from_user_id', { mode: 'number' }),
    fromUsername: text('from_username'),
    text: text('text'),
    /** The raw update (inbound) as Telegram sent it. */
    update: jsonb('update').$type<Record<string, unknown>>(),
    status: messageStatusEnum('status').notNull().default('received'),
    /** Outbox: when the Inngest event for this update was accepted; null = not yet (the sweeper re-sends). */
    eventSentAt: tz('event_sent_at'),
    /** For outbound rows: the inbound message this answers. */
    replyToId: uuid('reply_to_id'),
    /** Claude's usage, on the first outbound row of an answer; input as Anthropic counts it (not cached). */
    inputTokens: integer('input_tokens'),
    outputTokens: integer('output_tokens'),
    cacheReadTokens: integer('cache_read_tokens'),
    cacheCreationTokens: integer('cache_creation_tokens'),
    model: text('model'),
    isCommand: boolean('is_command').notNull().default(false),
    /**
     * Inbound: the reply run that claimed the message (status `processing`). The same run may claim it
     * again after a crash that lost its step result; another run (a duplicate, a replay) may not.
     */
    replyRunId: text('reply_run_id'),
    /**
     * Inbound: when the message was counted against its customer's messages per day. Counted once,
     * however often its decision runs (a step run again, an admin replay of a failed answer).
     */
    quotaCountedAt: tz('quota_counted_at'),
    createdAt: createdAt(),
  },
  (t) => [
    uniqueIndex('telegram_messages_agent_update_idx').on(t.agentId, t.updateId),
    index('telegram_messages_history_idx').on(t.agentId, t.chatId, t.createdAt),
    // The user messages a conversation can hold: how far back a history read goes (lib/conversation/history.ts).
    index('telegram_messages_history_turns_idx')
      .on(t.agentId, t.chatId, t.createdAt)
      .where(sql`${t.direction} = 'inbound' and ${t.status} <> 'ignored' and ${t.isCommand} = false`),
    index('telegram_messages_customer_day_idx').on(t.customerId, t.createdAt),
    // The answers that used Claude tokens, by agent and time: today's token budget and the month's usage
    // read only those, not every message the agent ever stored (lib/ratelimit/quota.ts, lib/usage.ts).
    index('telegram_messages_token_usage_idx')
      .on(t.agentId, t.createdAt)
      .where(sql`${t.inputTokens} is not null or ${t.outputTokens} is not null`),
    index('telegram_messages_outbox_idx')
      .on(t.createdAt)
      .where(sql`${t.eventSentAt} is null and ${t.direction} = 'inbound'`),
  ],
);

export const pairingRequests = pgTable(
  'pairing_requests',
  {
    id: id(),
    agentId: uuid('agent_id')
      .notNull()
      .references(() => agents.id, { onDelete: 'cascade' }),
    code: text('code').notNull(),
    telegramUserId: bigint('telegram_user_id', { mode: 'number' }).notNull(),
    username: text('username'),
    firstName: text('first_name'),
    chatId: bigint('chat_id', { mode: 'number' }).notNull(),
    status: pairingStatusEnum('status').notNull().default('pending'),
    expiresAt: tz('expires_at').notNull(),
    decidedAt: tz('decided_at'),
    /** When the user was told of the approval: an approval is announced once. */
    notifiedAt: tz('notified_at'),
    createdAt: createdAt(),
  },
  (t) => [
    uniqueIndex('pairing_requests_agent_code_idx').on(t.agentId, t.code),
    index('pairing_requests_agent_status_idx').on(t.agentId, t.status, t.expiresAt),
    // One pending request per sender per agent: asking again returns the same code.
    uniqueIndex('pairing_requests_pending_sender_idx')
      .on(t.agentId, t.telegramUserId)
      .where(sql`${t.status} = 'pending'`),
  ],
);

/**
 * The Claude tokens of a deleted agent, by UTC day: its messages go with it, and the month's usage (what
 * the customer is billed on) must not shrink. Written in the transaction that deletes the agent.
 */
export const deletedAgentTokenUsage = pgTable(
  'deleted_agent_token_usage',
  {
    customerId: uuid('customer_id')
      .notNull()
      .references(() => customers.id, { onDelete: 'cascade' }),
    agentId: uuid('agent_id').notNull(),
    /** The agent's name when it was deleted. */
    name: text('name').notNull(),
    day: date('day', { mode: 'string' }).notNull(),
    inputTokens: bigint('input_tokens', { mode: 'number' }).notNull(),
    outputTokens: bigint('output_tokens', { mode: 'number' }).notNull(),
    cacheReadTokens: bigint('cache_read_tokens', { mode: 'number' }).notNull(),
    cacheCreationTokens: bigint('cache_creation_tokens', { mode: 'number' }).notNull(),
    deletedAt: tz('deleted_at').notNull(),
  },
  (t) => [
    primaryKey({ columns: [t.agentId, t.day] }),
    index('deleted_agent_token_usage_customer_day_idx').on(t.customerId, t.day),
  ],
);

export const webhookDeliveries = pgTable(
  'webhook_deliveries',
  {
    id: id(),
    customerId: uuid('customer_id')
      .notNull()
      .references(() => customers.id, { onDelete: 'cascade' }),
    /** The payload's unique event id (also the Standard Webhooks `webhook-id`). */
    eventId: text('event_id').notNull(),
    eventType: text('event_type').notNull(),
    agentId: uuid('agent_id'),
    payload: jsonb('payload').$type<Record<string, unknown>>().notNull(),
    /** The exact bytes sent and signed (jsonb reorders keys): the same on every attempt and redelivery. */
    body: text('body').notNull(),
    url: text('url'),
    status: deliveryStatusEnum('status').notNull().default('pending'),
    attempts: integer('attempts').notNull().default(0),
    lastStatusCode: integer('last_status_code'),
    lastDurationMs: integer('last_duration_ms'),
    lastResponseExcerpt: text('last_response_excerpt'),
    lastError: text('last_error'),
    nextAttemptAt: tz('next_attempt_at'),
    deliveredAt: tz('delivered_at'),
    /** Set on a redelivery: the delivery it repeats. */
    redeliveryOf: uuid('redelivery_of'),
    /**
     * When the jobs engine took the delivery's event (or the outbox sweep found the row ended without
     * it). Empty while it has not (the send failed, or the process died between the write and the
     * send): the webhook outbox sweep sends it then.
     */
    eventSentAt: tz('event_sent_at'),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
  (t) => [
    index('webhook_deliveries_unsent_idx').on(t.createdAt).where(sql`${t.eventSentAt} is null`),
    // One original delivery per event of a customer; redeliveries repeat the event id (receivers
    // dedupe on it). Per customer: one tenant's event id never stands in the way of another's.
    uniqueIndex('webhook_deliveries_customer_event_idx')
      .on(t.customerId, t.eventId)
      .where(sql`${t.redeliveryOf} is null`),
    index('webhook_deliveries_customer_created_idx').on(t.customerId, t.createdAt, t.id),
  ],
);

export const webhookDeliveryAttempts = pgTable(
  'webhook_delivery_attempts',
  {
    id: id(),
    deliveryId: uuid('delivery_id')
      .notNull()
      .references(() => webhookDeliveries.id, { onDelete: 'cascade' }),
    attempt: integer('attempt').notNull(),
    statusCode: integer('status_code'),
    durationMs: integer('duration_ms').notNull(),
    responseExcerpt: text('response_excerpt'),
    error: text('error'),
    nextAttemptAt: tz('next_attempt_at'),
    createdAt: createdAt(),
  },
  (t) => [index('webhook_delivery_attempts_delivery_idx').on(t.deliveryId, t.attempt)],
);

export const auditLog = pgTable(
  'audit_log',
  {
    id: id(),
    actorType: actorTypeEnum('actor_type').notNull(),
    /** Customer id for a customer, 'admin' or 'system' otherwise. */
    actorId: text('actor_id').notNull(),
    actorKeyPrefix: text('actor_key_prefix'),
    /** The tenant the entry belongs to (what a customer may list); null for platform-wide actions. */
    customerId: uuid('customer_id'),
    action: text('action').notNull(),
    targetType: text('target_type').notNull(),
    targetId: text('target_id'),
    requestId: text('request_id'),
    ip: text('ip'),
    outcome: auditOutcomeEnum('outcome').notNull().default('success'),
    details: jsonb('details').$type<Record<string, unknown>>(),
    createdAt: createdAt(),
  },
  (t) => [
    index('audit_log_customer_created_idx').on(t.customerId, t.createdAt, t.id),
    index('audit_log_created_idx').on(t.createdAt, t.id),
  ],
);

import { z } from '@hono/zod-openapi';
import { displayName, hasAField, NO_FIELDS_MESSAGE, PageQuerySchema, Timestamp } from './common';

export const SYSTEM_PROMPT_MAX_BYTES = 10 * 1024;
/** Entries `telegramAllowFrom` may hold, through the agent API and through pairing approvals alike. */
export const MAX_ALLOW_FROM_ENTRIES = 1000;

const TELEGRAM_USER_ID = /^[1-9]\d{0,15}$/;
const TELEGRAM_USERNAME = /^@[A-Za-z][A-Za-z0-9_]{3,31}$/;

/**
 * A numeric Telegram user id, or an @username (normalised to lower case; Telegram's are
 * case-insensitive). A refused entry gets the message for what it looks like: a union's would
 * name the first branch whatever was sent.
 */
export const AllowFromEntrySchema = z
  .union([z.string(), z.number()])
  .transform((value, ctx) => {
    if (typeof value === 'number' && !Number.isSafeInteger(value)) {
      // JSON.parse has already rounded it (9007199254740993 reads as …992): the id sent is lost.
      ctx.issues.push({
        code: 'custom',
        input: value,
        message: 'a user id this large loses digits as a JSON number: send it as a string',
      });
      return z.NEVER;
    }
    const entry = String(value).trim();
    if (TELEGRAM_USER_ID.test(entry)) return entry;
    if (TELEGRAM_USERNAME.test(entry)) return entry.toLowerCase();
    ctx.issues.push({
      code: 'custom',
      input: value,
      message: entry.startsWith('@')
        ? 'expected @username (5-32 letters, digits, _)'
        : 'expected a numeric Telegram user id or an @username',
    });
    return z.NEVER;
  })
  .openapi({ example: '@alice', description: 'Numeric Telegram user id, or @username' });

export const DmPolicySchema = z
  .enum(['pairing', 'allowlist', 'open', 'disabled'])
  .openapi({ description: 'Who may talk to the bot in private chats' });
export const GroupPolicySchema = z
  .enum(['open', 'allowlist', 'disabled'])
  .openapi({ description: 'Who may address the bot in groups' });
export const AgentStatusSchema = z.enum(['stopped', 'starting', 'running', 'stopping', 'error']);

const settings = {
  name: displayName(100).openapi({ example: 'Support bot' }),
  systemPrompt: z
    .string()
    .refine((value) => Buffer.byteLength(value, 'utf8') <= SYSTEM_PROMPT_MAX_BYTES, {
      error: `must be at most ${SYSTEM_PROMPT_MAX_BYTES} bytes of UTF-8`,
    })
    .openapi({ example: 'You are the friendly support assistant of Acme.' }),
  model: z.string().min(1).max(100).openapi({ example: 'claude-sonnet-5-5' }),
  maxTokens: z.number().int().min(256).max(8192).openapi({ example: 1024 }),
  temperature: z.number().min(0).max(1).openapi({ example: 0.7 }),
  telegramAllowFrom: z.array(AllowFromEntrySchema).max(MAX_ALLOW_FROM_ENTRIES),
  telegramGroupPolicy: GroupPolicySchema,
  telegramDmPolicy: DmPolicySchema,
  botUsername: z
    .string()
    .regex(/^@?[A-Za-z][A-Za-z0-9_]{3,31}$/, { error: 'expected the bot username' })
    .transform((value) => value.replace(/^@/, ''))
    .nullable(),
  dailyTokenBudget: z.number().int().min(1).max(1_000_000_000).nullable().openapi({
    description:
      'Input + output Claude tokens per UTC day, after which the agent stops calling Claude (null = none)',
  }),
};

/** The fields a PATCH writes: what an agent's ETag versions (status and activity are not settings). */
export const AGENT_SETTING_KEYS = Object.keys(settings) as (keyof typeof settings)[];

export const AGENT_DEFAULTS = {
  systemPrompt: 'You are a helpful assistant.',
  maxTokens: 1024,
  temperature: 0.7,
  telegramAllowFrom: [] as string[],
  telegramGroupPolicy: 'allowlist' as const,
  telegramDmPolicy: 'pairing' as const,
};

export const CreateAgentSchema = z
  .object({
    ...settings,
    systemPrompt: settings.systemPrompt.optional(),
    model: settings.model.optional(),
    maxTokens: settings.maxTokens.optional(),
    temperature: settings.temperature.optional(),
    telegramAllowFrom: settings.telegramAllowFrom.optional(),
    telegramGroupPolicy: settings.telegramGroupPolicy.optional(),
    telegramDmPolicy: settings.telegramDmPolicy.optional(),
    botUsername: settings.botUsername.optional(),
    dailyTokenBudget: settings.dailyTokenBudget.optional(),
  })
  .strict()
  .openapi('CreateAgent');
export type CreateAgentInput = z.infer<typeof CreateAgentSchema>;

export const UpdateAgentSchema = z
  .object(settings)
  .partial()
  .strict()
  .refine(hasAField, { error: NO_FIELDS_MESSAGE })
  .openapi('UpdateAgent');
export type UpdateAgentInput = z.infer<typeof UpdateAgentSchema>;

export const AgentSchema = z
  .object({
    id: z.uuid(),
    name: z.string(),
    systemPrompt: z.string(),
    model: z.string(),
    maxTokens: z.number().int(),
    temperature: z.number(),
    telegramAllowFrom: z.array(z.string()),
    telegramGroupPolicy: GroupPolicySchema,
    telegramDmPolicy: DmPolicySchema,
    botUsername: z.string().nullable(),
    dailyTokenBudget: z.number().int().nullable(),
    status: AgentStatusSchema,
    statusSince: Timestamp,
    lastError: z.string().nullable(),
    telegramBotUsername: z.string().nullable().openapi({ description: "The bot's username from Telegram" }),
    lastMessageAt: Timestamp.nullable(),
    createdAt: Timestamp,
    updatedAt: Timestamp,
  })
  .openapi('Agent');
export type Agent = z.infer<typeof AgentSchema>;

export const ListAgentsQuerySchema = PageQuerySchema.extend({ status: AgentStatusSchema.optional() });

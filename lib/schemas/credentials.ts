import { z } from '@hono/zod-openapi';
import { Timestamp } from './common';

/** `<bot id>:<secret>` as BotFather issues it. */
export const TELEGRAM_TOKEN_PATTERN = /^\d{5,16}:[A-Za-z0-9_-]{30,64}$/;
export const ANTHROPIC_KEY_PATTERN = /^sk-ant-[A-Za-z0-9_-]{20,250}$/;

export const SetTelegramCredentialSchema = z
  .object({
    botToken: z
      .string()
      .trim()
      .regex(TELEGRAM_TOKEN_PATTERN, {
        error: 'expected a Telegram bot token (<bot id>:<secret>) from @BotFather',
      })
      .openapi({ example: '123456789:AAE...' }),
    botUsername: z
      .string()
      .regex(/^@?[A-Za-z][A-Za-z0-9_]{3,31}$/, { error: 'expected the bot username' })
      .transform((value) => value.replace(/^@/, ''))
      .optional()
      .openapi({ description: 'Checked against Telegram at validation', example: 'acme_support_bot' }),
  })
  .strict()
  .openapi('SetTelegramCredential');

export const SetClaudeCredentialSchema = z
  .object({
    apiKey: z
      .string()
      .trim()
      .regex(ANTHROPIC_KEY_PATTERN, { error: 'expected an Anthropic API key (sk-ant-...)' })
      .openapi({ example: 'sk-ant-api03-...' }),
  })
  .strict()
  .openapi('SetClaudeCredential');

export const CredentialKindSchema = z.enum(['telegram', 'claude']);
export type CustomerCredentialKind = z.infer<typeof CredentialKindSchema>;

export const CredentialStatusSchema = z
  .object({
    kind: CredentialKindSchema,
    configured: z.boolean(),
    last4: z.string().nullable().openapi({ description: 'Last 4 characters of the secret, never more' }),
    updatedAt: Timestamp.nullable().openapi({
      description: 'When the secret was last set; a check or a master key rotation leaves it',
    }),
    validatedAt: Timestamp.nullable(),
    valid: z.boolean().nullable().openapi({
      description:
        'true or false once Telegram or Anthropic answered the last check; null when never checked or when the provider could not be reached (validation.status says which)',
    }),
    validation: z
      .object({ status: z.enum(['valid', 'invalid', 'unreachable']), reason: z.string().nullable() })
      .nullable(),
  })
  .openapi('CredentialStatus');
export type CredentialStatus = z.infer<typeof CredentialStatusSchema>;

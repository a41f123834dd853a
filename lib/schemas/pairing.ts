import { z } from '@hono/zod-openapi';
import { IdParamsSchema, PageQuerySchema, Timestamp } from './common';

export const PairingStatusSchema = z.enum(['pending', 'approved', 'rejected', 'expired']);

export const PairingRequestSchema = z
  .object({
    id: z.uuid(),
    code: z
      .string()
      .openapi({ description: 'What the Telegram user was given; 8 characters', example: 'K7QM4RZP' }),
    status: PairingStatusSchema,
    telegramUserId: z.number().int().openapi({ description: 'Added to telegramAllowFrom on approval' }),
    username: z.string().nullable().openapi({ description: 'Telegram @username without the @, if any' }),
    firstName: z.string().nullable(),
    chatId: z.number().int(),
    expiresAt: Timestamp,
    decidedAt: Timestamp.nullable(),
    createdAt: Timestamp,
  })
  .openapi('PairingRequest');
export type PairingRequestView = z.infer<typeof PairingRequestSchema>;

export const ListPairingRequestsQuerySchema = PageQuerySchema.extend({
  status: PairingStatusSchema.optional().openapi({ description: 'Only requests in this status' }),
});

export const PairingCodeParamsSchema = IdParamsSchema.extend({
  code: z
    .string()
    .min(1)
    .max(32)
    .openapi({
      param: { name: 'code', in: 'path' },
      description: 'Any case; spaces and dashes ignored',
      example: 'K7QM4RZP',
    }),
});

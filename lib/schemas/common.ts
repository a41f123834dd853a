import { z } from '@hono/zod-openapi';

export const ErrorSchema = z
  .object({
    error: z.object({
      code: z.string().openapi({ example: 'agent_not_found' }),
      message: z.string().openapi({ example: 'No agent with id 4f1c...' }),
      details: z.record(z.string(), z.unknown()).optional(),
      requestId: z.string().openapi({ example: '6f1d0c9e-2a7b-4c55-9d8e-0f3b1a2c4d5e' }),
    }),
  })
  .openapi('Error');

const json = { 'application/json': { schema: ErrorSchema } };
const retryAfter = {
  'Retry-After': { description: 'Seconds to wait before trying again', schema: { type: 'integer' } },
} as const;

/** The error responses every authenticated route may give, for the OpenAPI document. */
export const commonErrors = {
  400: { description: 'Invalid input (the message names the field)', content: json },
  401: { description: 'Missing or invalid API key', content: json },
  403: { description: 'The customer is suspended', content: json },
  429: { description: 'Rate limited', headers: retryAfter, content: json },
  503: {
    description: 'service_unavailable: the database is not answering; try again after Retry-After seconds',
    headers: retryAfter,
    content: json,
  },
} as const;

/** A route that hands work to the jobs engine (lib/jobs `unavailableOnFailure`). */
export const jobsUnavailableError = {
  503: {
    description:
      'service_unavailable: the jobs engine did not take the work (what the call stored stays); try again after Retry-After seconds',
    headers: retryAfter,
    content: json,
  },
} as const;

export const notFoundError = {
  404: { description: 'No such resource (or not yours)', content: json },
} as const;
export const conflictError = {
  409: { description: 'Conflicts with the current state', content: json },
} as const;
export const preconditionFailedError = {
  412: {
    description: 'If-Match does not match: the resource changed since the client read it',
    content: json,
  },
} as const;
export const bodyErrors = {
  413: { description: 'Body too large', content: json },
  415: { description: 'Body is not application/json', content: json },
} as const;

const PAGE_LIMIT_MESSAGE = 'expected one whole number from 1 to 100';

/**
 * `?limit=`: decimal digits only. A coerced number would take `0x10`, `1e1`, ` 5` and `2.0`, and
 * call a repeated `?limit=1&limit=2` "NaN".
 */
const PageLimitSchema = z
  .string({ error: PAGE_LIMIT_MESSAGE })
  .regex(/^[0-9]{1,6}$/, { error: PAGE_LIMIT_MESSAGE })
  .transform(Number)
  .pipe(z.number().int().min(1, { error: PAGE_LIMIT_MESSAGE }).max(100, { error: PAGE_LIMIT_MESSAGE }))
  .default(20)
  .openapi({
    type: 'integer',
    minimum: 1,
    maximum: 100,
    default: 20,
    description: 'Page size (1-100)',
    example: 20,
  });

/** A list's query; strict like every body, so a misspelt filter is refused instead of matching everything. */
export const PageQuerySchema = z
  .object({
    limit: PageLimitSchema,
    cursor: z.string().min(1).optional().openapi({ description: 'The nextCursor of the previous page' }),
  })
  .strict();

/**
 * A resource id from the path, in lower case: a UUID is the same id in capitals, and everything
 * keyed by it as text (encryption bindings, limiter keys, audit targets, event ids) must see one
 * spelling. Any other short string is left to each lookup to answer 404.
 */
export const IdParamsSchema = z.object({
  id: z
    .string()
    // Ids are 36 characters; a longer one is refused rather than echoed back in a 404's message.
    .max(100)
    .toLowerCase()
    .openapi({ param: { name: 'id', in: 'path' }, example: '0b4f2d0e-8a3c-4a7e-9f0e-6f7f6f0b1c2d' }),
});

/**
 * A name people read (an agent's, shown to Telegram users in its messages; a customer's): one line
 * of text without the control and bidirectional-override characters that can hide or reorder what
 * they see. A NUL is left to the validation hook, which names it in every field alike.
 */
export function displayName(maxLength: number) {
  return (
    z
      .string()
      .trim()
      .min(1)
      .max(maxLength)
      // biome-ignore lint/suspicious/noControlCharactersInRegex: refusing them is the point.
      .regex(/^[^\u0001-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]*$/, {
        error: 'must not contain control characters, line breaks or bidirectional overrides',
      })
      // Made only of invisible characters (zero-width space, direction marks, BOM), it reads as no name.
      .refine((name) => /[^\s\u00ad\u061c\u180e\u200b-\u200f\u2060-\u2064\ufeff]/u.test(name), {
        error: 'must contain a visible character',
      })
  );
}

/** A PATCH changes something: an empty (or missing) body is a mistake to report, not a no-op to audit. */
export const NO_FIELDS_MESSAGE = 'send at least one field to change';
export const hasAField = (value: object) => Object.keys(value).length > 0;

export const Timestamp = z.string().openapi({ format: 'date-time', example: '2026-01-01T00:00:00.000Z' });

/** `If-Match` on a PATCH or DELETE of something with an ETag of its settings (an agent, a customer). */
export const IfMatchHeaders = z.object({
  'if-match': z.string().max(1000).optional().openapi({
    description:
      'The ETag the client read: a PATCH or DELETE is refused with 412 if the settings changed since',
  }),
});

/** The optional Idempotency-Key of a request that must not happen twice (a retry after a lost answer sends it again). */
export const IdempotencyHeaders = z.object({
  'idempotency-key': z
    .string()
    .min(1)
    .max(255)
    .regex(/^[\x21-\x7e]+$/, 'must be printable ASCII without spaces')
    .optional()
    .openapi({
      description:
        'A key of your choosing (a UUID, say), up to 255 printable ASCII characters: the same request sent again ' +
        'with it in the next 24 hours answers what the first did (with Idempotent-Replayed: true) instead of ' +
        'doing it twice; the key with another body is a 422',
    }),
});

/** The response header of an answer replayed for an Idempotency-Key. */
export const IdempotentReplayedHeaders = z.object({
  'Idempotent-Replayed': z.literal('true').optional().openapi({
    description: 'Present when this is the stored answer to an earlier request with the same Idempotency-Key',
  }),
});

/** The answer to a request whose Idempotency-Key was used for another request. */
export const idempotencyKeyReusedError = {
  422: {
    description:
      'idempotency_key_reused: the Idempotency-Key was used for another request in the last 24 hours',
    content: json,
  },
} as const;

/** The answers of a DELETE that honours `If-Match`. */
export const deleteWithIfMatchResponses = {
  204: { description: 'Deleted' },
  ...commonErrors,
  ...notFoundError,
  ...preconditionFailedError,
} as const;

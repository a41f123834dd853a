import type { Hook } from '@hono/zod-openapi';
import type { Context, ErrorHandler, NotFoundHandler } from 'hono';
import { HTTPException } from 'hono/http-exception';
import type { ZodError } from 'zod';
import { isDatabaseUnavailable } from '../../lib/db/unavailable';
import {
  AppError,
  type ErrorCode,
  errorBody,
  serviceUnavailable,
  type ValidationIssue,
  validationError,
} from '../../lib/errors';
import { findJsonFaults, isNulStorageError, JSON_FAULT_MESSAGES, NUL_MESSAGE } from '../../lib/json-faults';
import type { AppEnv } from '../env';
import { loggerFor } from '../request-context';

function render(c: Context<AppEnv>, error: AppError) {
  const requestId = c.get('requestId') ?? 'unknown';
  if (error.headers) for (const [name, value] of Object.entries(error.headers)) c.header(name, value);
  return c.json(errorBody(error, requestId), error.status);
}

const HTTP_EXCEPTION_CODES: Partial<Record<number, ErrorCode>> = {
  400: 'validation_error',
  401: 'unauthorized',
  403: 'forbidden',
  404: 'not_found',
  405: 'method_not_allowed',
  413: 'payload_too_large',
  415: 'unsupported_media_type',
  429: 'rate_limited',
  503: 'service_unavailable',
};

/** Turns anything thrown into our one error body; a 500 never shows a stack or an internal message. */
export const handleError: ErrorHandler<AppEnv> = (error, c) => {
  if (error instanceof AppError) {
    // A 5xx of ours (the jobs engine away, say) keeps what caused it in the log, not in the answer.
    if (error.status >= 500 && error.cause !== undefined) {
      loggerFor(c).error({ err: error.cause, code: error.code }, error.message);
    }
    return render(c, error);
  }
  if (error instanceof HTTPException) {
    const code = HTTP_EXCEPTION_CODES[error.status];
    if (code) {
      const isJson = error.status === 400 && /json/i.test(error.message);
      return render(
        c,
        new AppError(
          isJson ? 'invalid_json' : code,
          isJson ? 'The request body is not valid JSON' : error.message || code.replaceAll('_', ' '),
        ),
      );
    }
  }
  if (isNulStorageError(error)) {
    // Validation refuses a NUL in any body, query or path value; one that still reached PostgreSQL
    // came from the request all the same, and is the caller's to fix, not a 500.
    loggerFor(c).warn({ err: error }, 'a NUL character reached the database');
    return render(c, validationError([{ field: 'request', message: NUL_MESSAGE }]));
  }
  if (isDatabaseUnavailable(error)) {
    loggerFor(c).error({ err: error }, 'the database did not answer');
    return render(c, serviceUnavailable('The database is not answering; try again shortly'));
  }
  loggerFor(c).error({ err: error }, 'unhandled error');
  return render(c, new AppError('internal_error', 'An internal error occurred'));
};

/**
 * No route answered: a 405 with `Allow` when the path has routes for other methods, else a 404.
 *
 * @example app.notFound(notFoundHandler(allowedMethods(() => app.routes)))
 */
export function notFoundHandler(allowedOn: (path: string) => string[]): NotFoundHandler<AppEnv> {
  return (c) => {
    const allowed = allowedOn(c.req.path);
    if (allowed.length > 0) {
      return render(
        c,
        new AppError(
          'method_not_allowed',
          `${c.req.method} is not allowed on ${c.req.path}; use ${allowed.join(', ')}`,
          {
            headers: { Allow: allowed.join(', ') },
            details: { allowed },
          },
        ),
      );
    }
    return render(c, new AppError('not_found', `No route for ${c.req.method} ${c.req.path}`));
  };
}

/** `body.name`, `query.limit`, `param.id`: where the bad value was, for people reading the error. */
export function fieldName(target: string | undefined, path: readonly PropertyKey[]): string {
  return [target === 'json' || target === 'form' ? 'body' : target, ...path]
    .filter((part) => part !== undefined && part !== '')
    .map(String)
    .join('.');
}

/**
 * One issue per bad value, each named by where it is. zod reports unknown keys as one issue on the
 * object that holds them: here each key is its own issue, named as itself (`body.foo`, `query.foo`).
 */
export function zodIssues(error: ZodError, target?: string): ValidationIssue[] {
  return error.issues.flatMap((issue) =>
    issue.code === 'unrecognized_keys'
      ? issue.keys.map((key) => ({ field: fieldName(target, [...issue.path, key]), message: UNKNOWN_FIELD }))
      : [{ field: fieldName(target, issue.path), message: issue.message }],
  );
}

const UNKNOWN_FIELD = 'not a field this endpoint takes';

/**
 * Each value in a validated body, query or path that the database cannot keep as sent (a NUL, a
 * lone surrogate, nesting too deep to serialise): refused here once for every route instead of
 * failing its statement with a 500 or storing U+FFFD in its place. A key holding one is named by
 * its object (`body` for a top-level key).
 */
export function jsonFaultIssues(data: unknown, target?: string): ValidationIssue[] {
  return findJsonFaults(data).map((found) => ({
    field: fieldName(target, found.path),
    message:
      found.in === 'key' ? `keys ${JSON_FAULT_MESSAGES[found.fault]}` : JSON_FAULT_MESSAGES[found.fault],
  }));
}

/** zod-openapi's hook: every validation failure becomes the same error body as every other error. */
export const validationHook: Hook<unknown, AppEnv, string, unknown> = (result, c) => {
  if (result.success) {
    const issues = jsonFaultIssues(result.data, result.target);
    return issues.length > 0 ? render(c, validationError(issues)) : undefined;
  }
  const issues = zodIssues(result.error, result.target);
  // Every unknown key, at whatever depth, by its name (each issue names it by its full path).
  const unknown = result.error.issues.flatMap((issue) =>
    issue.code === 'unrecognized_keys' ? issue.keys : [],
  );
  if (unknown.length > 0) {
    return render(
      c,
      new AppError('unknown_field', `Unknown field${unknown.length > 1 ? 's' : ''}: ${unknown.join(', ')}`, {
        details: { fields: unknown, issues },
      }),
    );
  }
  return render(c, validationError(issues));
};

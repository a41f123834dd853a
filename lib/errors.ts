import type { ContentfulStatusCode } from 'hono/utils/http-status';

/** Every error code the API can answer with, and the HTTP status it maps to. */
export const ERROR_STATUS = {
  validation_error: 400,
  bad_request: 400,
  invalid_json: 400,
  unknown_field: 400,
  unauthorized: 401,
  forbidden: 403,
  customer_suspended: 403,
  not_found: 404,
  customer_not_found: 404,
  agent_not_found: 404,
  credential_not_found: 404,
  run_not_found: 404,
  event_not_found: 404,
  pairing_request_not_found: 404,
  delivery_not_found: 404,
  method_not_allowed: 405,
  conflict: 409,
  max_agents_reached: 409,
  agent_not_ready: 409,
  agent_running: 409,
  bot_in_use: 409,
  allowlist_full: 409,
  request_timeout: 408,
  precondition_failed: 412,
  payload_too_large: 413,
  unsupported_media_type: 415,
  idempotency_key_reused: 422,
  rate_limited: 429,
  headers_too_large: 431,
  internal_error: 500,
  method_not_implemented: 501,
  service_unavailable: 503,
  upstream_unavailable: 502,
} as const satisfies Record<string, ContentfulStatusCode>;

export type ErrorCode = keyof typeof ERROR_STATUS;

export interface AppErrorOptions {
  details?: Record<string, unknown> | undefined;
  cause?: unknown;
  /** Extra response headers (Retry-After on a 429, for example). */
  headers?: Record<string, string>;
}

/** The one error type of the platform: a code from `ERROR_STATUS`, a message a person can act on. */
export class AppError extends Error {
  readonly code: ErrorCode;
  readonly status: ContentfulStatusCode;
  readonly details: Record<string, unknown> | undefined;
  readonly headers: Record<string, string> | undefined;

  constructor(code: ErrorCode, message: string, options: AppErrorOptions = {}) {
    super(message, { cause: options.cause });
    this.name = 'AppError';
    this.code = code;
    this.status = ERROR_STATUS[code];
    this.details = options.details;
    this.headers = options.headers;
  }
}

export interface ValidationIssue {
  /** Where the bad value was: `body.name`, `query.limit`, `param.id`. */
  field: string;
  message: string;
}

/** The 400 every validation failure answers: each issue in `details.issues`, the message the first's. */
export function validationError(issues: ValidationIssue[]): AppError {
  const first = issues[0];
  return new AppError('validation_error', first ? `${first.field}: ${first.message}` : 'Invalid request', {
    details: { issues },
  });
}

/** The one error shape of the API; validation errors list their issues in `details.issues`. */
export interface ErrorBody {
  error: {
    code: ErrorCode;
    message: string;
    details?: { issues?: ValidationIssue[]; [key: string]: unknown };
    requestId: string;
  };
}

export function errorBody(error: AppError, requestId: string): ErrorBody {
  return {
    error: {
      code: error.code,
      message: error.message,
      ...(error.details ? { details: error.details } : {}),
      requestId,
    },
  };
}

/**
 * An error and the errors it wraps (`cause`), outermost first, as far as five deep: a driver's error
 * arrives wrapped (drizzle's "Failed query: …"), and what it says is in the inner one.
 */
export function* errorChain(error: unknown): Generator<{ code?: unknown; message?: unknown }> {
  for (let current = error, depth = 0; current && typeof current === 'object' && depth < 5; depth++) {
    yield current as { code?: unknown; message?: unknown };
    current = (current as { cause?: unknown }).cause;
  }
}

/** A 503 a client may retry after a few seconds (a part the request needs is away); `cause` goes to the log only. */
export function serviceUnavailable(message: string, cause?: unknown): AppError {
  return new AppError('service_unavailable', message, { cause, headers: { 'Retry-After': '5' } });
}

import { every } from 'hono/combine';
import { createMiddleware } from 'hono/factory';
import { AppError, validationError } from '../../lib/errors';
import type { AppEnv } from '../env';
import { limitBody } from './body-limit';

export interface BodyGuardOptions {
  /** Largest accepted body in bytes. */
  maxBytes?: number;
  /** Whether the route for a method and path takes no body: one sent anyway is refused, not ignored. */
  takesNoBody?: (method: string, path: string) => boolean;
}

// DELETE too: no route here takes a body on it, and one sent (`{"confirm": false}`) must not be ignored.
const BODY_METHODS = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

const TOKEN = "[!#$%&'*+.^_`|~0-9a-z-]+";
/** A quoted string with its quoted pairs (`\"`), RFC 9110 §5.6.4. */
const QUOTED = '"(?:[^"\\\\]|\\\\.)*"';
const PARAMETER = `(${TOKEN})=(${TOKEN}|${QUOTED})`;

/**
 * `application/json` with RFC 9110 §8.3.1 parameters: `*( OWS ";" OWS [ name=value ] )`, so spaces
 * around `;` and an empty parameter are allowed. A value is a token or a quoted string.
 */
// The spaces after a ";" belong to the parameter alone: were they also the next repetition's, a failing
// match would try every split of a run of " ; " (seconds for 70 bytes, before any API key is checked).
export const JSON_TYPE = new RegExp(`^application/json((?:[ \\t]*;(?:[ \\t]*${PARAMETER})?)*)[ \\t]*$`, 'i');
/** Longer than any Content-Type a client sends: refused before a regular expression reads it. */
const MAX_CONTENT_TYPE_LENGTH = 1024;
const PARAMETERS = new RegExp(PARAMETER, 'gi');

/** JSON is UTF-8 text (RFC 8259 §8.1): a charset naming anything else is refused, not misread. */
function isJsonType(contentType: string): boolean {
  if (contentType.length > MAX_CONTENT_TYPE_LENGTH) return false;
  const match = JSON_TYPE.exec(contentType.trim());
  if (!match) return false;
  // Parameter by parameter, so a quoted value holding "; charset=..." is read as the value it is.
  for (const [, name, value] of (match[1] ?? '').matchAll(PARAMETERS)) {
    if (name?.toLowerCase() !== 'charset') continue;
    const charset = value?.startsWith('"') ? value.slice(1, -1).replace(/\\(.)/g, '$1') : value;
    if (!/^utf-?8$/i.test((charset ?? '').trim())) return false;
  }
  return true;
}

/**
 * The request as the route's own parser gets it: `Content-Type` as exactly what it checks for, or
 * none (with no body).
 */
function withContentType(request: Request, contentType: string | undefined, bytes?: Uint8Array): Request {
  const headers = new Headers(request.headers);
  if (contentType === undefined) headers.delete('content-type');
  else headers.set('content-type', contentType);
  return new Request(request.url, { method: request.method, headers, ...(bytes ? { body: bytes } : {}) });
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * A body sent to a route that takes none: the caller meant something by it, so it is refused
 * rather than ignored. An empty object is what some clients send for "no body", and is let be.
 */
function refuseBody(text: string): void {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new AppError('invalid_json', 'The request body is not valid JSON');
  }
  const isEmptyObject =
    typeof value === 'object' && value !== null && !Array.isArray(value) && Object.keys(value).length === 0;
  if (isEmptyObject) return;
  throw validationError([{ field: 'body', message: 'this endpoint takes no body: send none (or {})' }]);
}

/**
 * API bodies are JSON and small: anything else is a 415, a 413 or a 400 in the one error shape,
 * before a handler or a parser sees it. A body whose bytes are not UTF-8 is refused rather than
 * parsed with U+FFFD in place of what was sent.
 *
 * @example app.use('/api/v1/*', bodyGuard({ maxBytes: 64 * 1024 }))
 */
export function bodyGuard(options: BodyGuardOptions = {}) {
  const maxBytes = options.maxBytes ?? 64 * 1024;
  const limit = limitBody({
    maxBytes,
    onTooLarge: () => {
      throw new AppError('payload_too_large', `The body is larger than ${maxBytes} bytes`, {
        details: { maxBytes },
      });
    },
  });
  const requireJson = createMiddleware<AppEnv>(async function requireJsonBody(c, next) {
    if (!BODY_METHODS.has(c.req.method) || c.req.raw.body === null) return next();
    const bytes = new Uint8Array(await c.req.arrayBuffer());
    if (bytes.byteLength === 0) {
      // An empty body is no body, whatever Content-Type a client library put on it: the route's
      // validation then sees none (an optional body is absent; a required one names its fields)
      // rather than failing to parse '' as JSON.
      if (c.req.header('content-type') !== undefined) c.req.raw = withContentType(c.req.raw, undefined);
      return next();
    }
    const encoding = c.req.header('content-encoding')?.trim().toLowerCase();
    if (encoding !== undefined && encoding !== '' && encoding !== 'identity') {
      // RFC 9110 §15.5.16: a content coding the server does not decode is a 415, not a body to parse.
      throw new AppError(
        'unsupported_media_type',
        'Send the body uncompressed: no Content-Encoding is accepted',
        {
          details: { contentEncoding: encoding.slice(0, 200) },
        },
      );
    }
    const contentType = c.req.header('content-type');
    if (contentType === undefined || !isJsonType(contentType)) {
      throw new AppError(
        'unsupported_media_type',
        'Send the body as application/json (UTF-8; no parameters other than charset=utf-8 are needed)',
        { details: { contentType: contentType?.slice(0, 200) ?? null } },
      );
    }
    let text: string;
    try {
      // The parsers downstream decode the cached bytes again, after this check passed.
      text = utf8.decode(bytes);
    } catch {
      throw new AppError('invalid_json', 'The request body is not valid UTF-8, so it is not valid JSON');
    }
    if (options.takesNoBody?.(c.req.method, c.req.path)) refuseBody(text);
    // @hono/zod-openapi reads JSON only under a narrower grammar (no space before ";"); what passed
    // here is JSON in UTF-8, so it is handed on as plain `application/json`.
    if (contentType.trim().toLowerCase() !== 'application/json') {
      c.req.raw = withContentType(c.req.raw, 'application/json', bytes);
    }
    await next();
  });
  return every(limit, requireJson);
}

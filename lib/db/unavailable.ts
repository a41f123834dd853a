import { errorChain } from '../errors';
import { QUERY_TIMEOUT_MESSAGE } from './pool-clients';

/**
 * Whether an error means the database could not be reached or is not taking work right now (the
 * driver's error, or one wrapping it as drizzle's "Failed query: …" does), rather than a statement
 * being wrong: a request that met it may be sent again shortly, so it answers 503, not 500.
 */
export function isDatabaseUnavailable(error: unknown): boolean {
  for (const { code, message } of errorChain(error)) {
    if (typeof code === 'string' && (NETWORK_CODES.has(code) || isUnavailableSqlState(code))) return true;
    if (typeof message === 'string' && POOL_MESSAGES.some((text) => message.includes(text))) return true;
  }
  return false;
}

const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EPIPE',
]);

/**
 * SQLSTATE class 08 (connection exception), 53300 too many connections, 57P01-57P03 (the server
 * shutting down or starting up).
 */
function isUnavailableSqlState(code: string): boolean {
  return /^08[0-9A-Z]{3}$/.test(code) || code === '53300' || /^57P0[123]$/.test(code);
}

/**
 * What pg says, without a code, of a connection that went away, a pool with none to give, a query
 * with no answer in time, and what was queued on a connection closed for it.
 */
const POOL_MESSAGES = [
  'Connection terminated',
  'timeout exceeded when trying to connect',
  QUERY_TIMEOUT_MESSAGE,
  'is not queryable',
];

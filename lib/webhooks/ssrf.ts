import { promises as dns, type LookupAddress } from 'node:dns';
import type { LookupFunction } from 'node:net';
import { Agent, buildConnector, type Dispatcher } from 'undici';
import { validationError } from '../errors';
import { type AddressPolicyOptions, checkAddress, isIpLiteral } from './address-policy';

/**
 * The SSRF guard for customer webhook URLs.
 *
 * Saving a URL only checks its shape (`validateWebhookUrl`). The decision that matters is taken
 * when connecting: the dispatcher from `createWebhookDispatcher` resolves the host itself, checks
 * EVERY address the name resolves to, and hands the socket only those checked addresses. There is
 * no second lookup between the check and the connect, so a DNS answer that changes in between
 * (rebinding) cannot smuggle in an internal address. TLS still verifies the certificate against
 * the host name (SNI), because the connection is made by name with our lookup, not to a bare IP.
 */

export interface ResolvedAddress {
  address: string;
  family: 4 | 6;
}

/** Resolves a host name to every address it has. Injectable so tests can fake public answers. */
export type HostResolver = (hostname: string) => Promise<ResolvedAddress[]>;

export const systemResolver: HostResolver = async (hostname) => {
  const answers = await dns.lookup(hostname, { all: true, verbatim: true });
  return answers.map((answer) => ({ address: answer.address, family: answer.family === 6 ? 6 : 4 }));
};

/** A webhook target refused by the guard; never retried. */
export class BlockedTargetError extends Error {
  readonly code = 'ERR_WEBHOOK_TARGET_BLOCKED';
  constructor(message: string) {
    super(message);
    this.name = 'BlockedTargetError';
  }
}

/** Finds a `BlockedTargetError` in an error's cause chain (undici may wrap connect errors). */
export function findBlockedTargetError(error: unknown): BlockedTargetError | undefined {
  let current: unknown = error;
  for (let depth = 0; depth < 5 && current instanceof Error; depth += 1) {
    if (current instanceof BlockedTargetError) return current;
    current = current.cause;
  }
  return undefined;
}

function stripBrackets(host: string): string {
  return host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
}

/**
 * Resolves `hostname` and checks every address. Throws `BlockedTargetError` when any address is
 * refused (a name that resolves to one public and one internal address is refused as a whole).
 */
export async function resolveAllowedAddresses(
  hostname: string,
  options: AddressPolicyOptions & { resolve?: HostResolver } = {},
): Promise<ResolvedAddress[]> {
  const host = stripBrackets(hostname);
  if (isIpLiteral(host)) {
    const verdict = checkAddress(host, options);
    if (!verdict.allowed) throw new BlockedTargetError(`webhook target refused: ${verdict.reason}`);
    return [{ address: host, family: host.includes(':') ? 6 : 4 }];
  }
  const addresses = await (options.resolve ?? systemResolver)(host);
  if (addresses.length === 0) throw new BlockedTargetError(`webhook target refused: ${host} has no address`);
  for (const { address } of addresses) {
    const verdict = checkAddress(address, options);
    if (!verdict.allowed) {
      throw new BlockedTargetError(
        `webhook target refused: ${host} resolves to ${address}, a blocked address (${verdict.range})`,
      );
    }
  }
  return addresses;
}

/**
 * A `net.connect` lookup function that answers only with checked addresses. Node calls it with
 * `all: true` when it races address families (autoSelectFamily), and without it otherwise.
 */
export function createGuardedLookup(
  options: AddressPolicyOptions & { resolve?: HostResolver },
): LookupFunction {
  return (hostname, lookupOptions, callback) => {
    resolveAllowedAddresses(hostname, options).then(
      (addresses) => {
        const family =
          lookupOptions.family === 4 || lookupOptions.family === 6 ? lookupOptions.family : undefined;
        const usable = family ? addresses.filter((entry) => entry.family === family) : addresses;
        if (usable.length === 0) {
          const error: NodeJS.ErrnoException = new Error(`no IPv${family} address for ${hostname}`);
          error.code = 'ENOTFOUND';
          callback(error, '');
          return;
        }
        if (lookupOptions.all) {
          callback(
            null,
            usable.map((entry): LookupAddress => ({ address: entry.address, family: entry.family })),
          );
        } else {
          callback(null, usable[0]!.address, usable[0]!.family);
        }
      },
      (error: NodeJS.ErrnoException) => callback(error, ''),
    );
  };
}

export interface WebhookDispatcherOptions {
  allowPrivate: boolean;
  /** Defaults to the system resolver (getaddrinfo, so /etc/hosts applies). */
  resolve?: HostResolver;
  connectTimeoutMs?: number;
  /** Extra trusted CA certificates (tests with a self-signed receiver); the system store otherwise. */
  ca?: string | Buffer;
}

/**
 * An undici dispatcher that only connects to allowed addresses: IP literals are checked before
 * connecting (Node skips the lookup for them), names go through `createGuardedLookup`.
 */
export function createWebhookDispatcher(options: WebhookDispatcherOptions): Dispatcher {
  const policy = { allowPrivate: options.allowPrivate, resolve: options.resolve };
  const connectByName = buildConnector({
    lookup: createGuardedLookup(policy),
    timeout: options.connectTimeoutMs ?? 10_000,
    ...(options.ca ? { ca: options.ca } : {}),
  });
  const connect: buildConnector.connector = (connectOptions, callback) => {
    const host = stripBrackets(connectOptions.hostname);
    if (isIpLiteral(host)) {
      const verdict = checkAddress(host, policy);
      if (!verdict.allowed) {
        callback(new BlockedTargetError(`webhook target refused: ${verdict.reason}`), null);
        return;
      }
    }
    connectByName(connectOptions, callback);
  };
  // Short keep-alive: deliveries to one customer come in bursts, and every new connection is
  // checked again.
  return new Agent({ connect, keepAliveTimeout: 4_000, keepAliveMaxTimeout: 10_000 });
}

const MAX_URL_LENGTH = 2048;

export interface WebhookUrlOptions {
  /** Production requires https and refuses loopback and private literal addresses. */
  production: boolean;
  /** Defaults to `!production` (`config.webhooks.allowPrivateTargets`). */
  allowPrivate?: boolean;
}

/**
 * Save-time checks of a webhook URL. Returns a message a customer can act on, or undefined when
 * the URL is acceptable. Addresses behind a host name are checked at delivery time, every time.
 */
export function webhookUrlProblem(value: string, options: WebhookUrlOptions): string | undefined {
  const allowPrivate = options.allowPrivate ?? !options.production;
  if (value.length > MAX_URL_LENGTH) return `must be at most ${MAX_URL_LENGTH} characters`;
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return 'must be an absolute URL such as https://example.com/webhooks';
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:')
    return allowPrivate ? 'must use https:// (or http://, allowed here)' : 'must use https://';
  if (url.protocol === 'http:' && !allowPrivate) return 'must use https://';
  if (url.username || url.password) return 'must not contain a user name or password';
  if (url.hash || value.includes('#')) return 'must not contain a #fragment';
  if (!url.hostname) return 'must name a host';
  const host = stripBrackets(url.hostname);
  if (isIpLiteral(host)) {
    const verdict = checkAddress(host, { allowPrivate });
    if (!verdict.allowed) return `must not point at ${host}, a blocked address (${verdict.range})`;
  } else if (!allowPrivate && /(^|\.)localhost\.?$/.test(host)) {
    // `localhost.` (the root's dot) names the same host.
    return 'must not point at localhost';
  }
  return undefined;
}

/**
 * `webhookUrlProblem` as an `AppError`: a 400 validation_error naming the field (`body.url`), in
 * the shape every other validation error has.
 */
export function validateWebhookUrl(value: string, options: WebhookUrlOptions & { field?: string }): URL {
  const problem = webhookUrlProblem(value, options);
  const field = options.field ?? 'body.webhookUrl';
  if (problem) throw validationError([{ field, message: problem }]);
  return new URL(value);
}

import pino, { type Logger } from 'pino';
import type { Config } from './config';

export type { Logger };

/**
 * Paths pino blanks before writing a line. Secrets must never reach a log, whatever object is logged,
 * so the usual holders of one are listed at the top level and one and two levels down (deeper, and
 * in other letter cases, the line's scrub below catches a string value).
 */
const SECRET_KEYS = [
  'authorization',
  'apiKey',
  'api_key',
  'token',
  'botToken',
  'secret',
  'password',
  'webhookSecret',
  'secretToken',
  'secret_token',
  'encryptionMasterKey',
  'adminApiKey',
  'x-api-key',
  'x-telegram-bot-api-secret-token',
  'cookie',
];

export const REDACT_PATHS = SECRET_KEYS.flatMap((key) => {
  const segment = /^[A-Za-z_$][\w$]*$/.test(key) ? `.${key}` : `["${key}"]`;
  const root = segment.startsWith('.') ? key : segment;
  return [root, `*${segment}`, `*.*${segment}`];
});

/**
 * Secrets inside text, where no key path reaches: a Telegram bot token in a Bot API URL (node-fetch's
 * message for a failed request, `request to https://api.telegram.org/bot<token>/setWebhook failed`,
 * sits in grammY's HttpError as `error`, which pino writes out) and an Anthropic key. Every line is
 * scrubbed of them as it is written, whatever logged it (the Inngest SDK logs step errors itself).
 */
const SECRETS_IN_TEXT = /(?<!\d)\d{3,}:[A-Za-z0-9_-]{30,}|sk-ant-[A-Za-z0-9_-]{10,}/g;

/**
 * A secret's key holding a string, at any depth and in any letter case, in the JSON line as
 * written: pino's paths stop two levels down (an error's `config.headers.Authorization` is three)
 * and match the case they are given.
 */
const SECRET_FIELDS = new RegExp(
  `"(${SECRET_KEYS.map((key) => key.replace(/[-$]/g, '\\$&')).join('|')})":"(?:[^"\\\\]|\\\\.)*"`,
  'gi',
);

const scrubSecrets = (line: string) =>
  line.replace(SECRET_FIELDS, '"$1":"[redacted]"').replace(SECRETS_IN_TEXT, '[redacted]');

/**
 * Errors as pino writes them, without grammY's `payload`: the parameters of the failed call, which hold
 * the message text sent to a user and, for setWebhook, the agent's webhook secret.
 */
function serializeError(error: unknown) {
  const out = pino.stdSerializers.err(error as Error);
  if (out && typeof out === 'object' && 'payload' in out) delete out.payload;
  return out;
}

export function createLogger(
  config: Pick<Config, 'logLevel' | 'env'>,
  destination?: pino.DestinationStream,
): Logger {
  return pino(
    {
      level: config.logLevel,
      base: { service: 'openclaw-platform' },
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      serializers: { err: serializeError },
      hooks: { streamWrite: scrubSecrets },
      formatters: { level: (label) => ({ level: label }) },
    },
    destination,
  );
}

import pino, { type Logger } from 'pino';
import type { Config } from './config';

export type { Logger };

/**
 * Paths pino blanks before writing a line. Secrets must never reach a log, whatever object is logged,
 * so the usual holders of one are listed at the top level and one and two levels down.
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
      formatters: { level: (label) => ({ level: label }) },
    },
    destination,
  );
}

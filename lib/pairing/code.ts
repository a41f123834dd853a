import { randomInt } from 'node:crypto';

/**
 * Pairing codes are read off a phone and typed by a person: 8 characters from A-Z and 2-9 without the
 * look-alikes I, O, 0 and 1. 32 symbols, so 40 bits per code, and valid for an hour.
 */
export const PAIRING_CODE_ALPHABET = 'ABCDEFGHJKLMNPQRSTUVWXYZ23456789';
export const PAIRING_CODE_LENGTH = 8;
export const PAIRING_CODE_TTL_MS = 60 * 60 * 1000;
/** Pending, unexpired codes one agent may have at once; a further unknown sender waits for one to end. */
export const MAX_PENDING_PAIRINGS = 3;

const CODE_PATTERN = new RegExp(`^[${PAIRING_CODE_ALPHABET}]{${PAIRING_CODE_LENGTH}}$`);

/**
 * A fresh random code. `crypto.randomInt` draws from the CSPRNG with rejection sampling, so every
 * symbol is equally likely (no modulo bias) whatever the alphabet's length.
 */
export function generatePairingCode(): string {
  let code = '';
  for (let i = 0; i < PAIRING_CODE_LENGTH; i++) {
    code += PAIRING_CODE_ALPHABET[randomInt(PAIRING_CODE_ALPHABET.length)];
  }
  return code;
}

/**
 * A code as a person typed it, in the stored form (upper case, without spaces or dashes), or null
 * when it cannot be a code at all.
 */
export function normalisePairingCode(input: string): string | null {
  const code = input.replace(/[\s-]+/g, '').toUpperCase();
  return CODE_PATTERN.test(code) ? code : null;
}

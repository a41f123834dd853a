import { randomBytes } from 'node:crypto';
import { masterKeyFrom } from '../../lib/crypto';

/**
 * Another random master key (base64) with the same 15-bit version as `key`: what a wrong key looks
 * like to a check that compares versions only. About 32,767 tries, a few tens of milliseconds.
 */
export function differentKeyOfTheSameVersion(key: string): string {
  const { version } = masterKeyFrom(key);
  for (let tries = 0; tries < 1_000_000; tries++) {
    const candidate = randomBytes(32).toString('base64');
    if (candidate !== key && masterKeyFrom(candidate).version === version) return candidate;
  }
  throw new Error(`no key of version ${version} in a million tries`);
}

import { execFileSync } from 'node:child_process';

/** Whether the openssl CLI is on the machine: the TLS tests make their self-signed certificates with it. */
export function hasOpenssl(): boolean {
  try {
    execFileSync('openssl', ['version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

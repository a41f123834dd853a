import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const MODULE = fileURLToPath(new URL('../../lib/plain-env.ts', import.meta.url));

/** Runs a script in a fresh node (with tsx), since the swap is process-wide. */
function runNode(script: string, env: Record<string, string>): string {
  return execFileSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
    env: { ...process.env, ...env },
    encoding: 'utf8',
  }).trim();
}

describe('usePlainProcessEnv', () => {
  it('keeps every variable, makes process.env a plain object, and writes still reach child processes', () => {
    const out = runNode(
      `
      import { execFileSync } from 'node:child_process';
      const { usePlainProcessEnv } = await import(${JSON.stringify(MODULE)});
      const before = JSON.stringify(Object.entries(process.env).sort());
      usePlainProcessEnv();
      usePlainProcessEnv();
      const after = JSON.stringify(Object.entries(process.env).sort());
      process.env.PLAIN_ENV_LATER = 'later';
      const child = execFileSync(process.execPath, ['-e', 'process.stdout.write(process.env.PLAIN_ENV_LATER + "/" + process.env.PLAIN_ENV_EARLY)'], { encoding: 'utf8' });
      console.log(JSON.stringify({
        same: before === after,
        plain: Object.getPrototypeOf(process.env) === Object.prototype,
        early: process.env.PLAIN_ENV_EARLY,
        child,
      }));
      `,
      { PLAIN_ENV_EARLY: 'early' },
    );
    expect(JSON.parse(out)).toEqual({ same: true, plain: true, early: 'early', child: 'later/early' });
  });
});

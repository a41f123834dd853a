import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);
const root = fileURLToPath(new URL('../..', import.meta.url));

describe('production build', () => {
  it('bundles the entry points, and the bundled migrate CLI finds the migrations and applies them', async () => {
    await run('npm', ['run', 'build', '--silent'], { cwd: root, timeout: 60_000 });
    const dataDir = await mkdtemp(join(tmpdir(), 'oc-build-'));
    try {
      // Run from another directory: paths come from the bundle's location, not the working directory.
      const { stdout } = await run(process.execPath, [join(root, 'dist/lib/db/migrate-cli.mjs')], {
        cwd: dataDir,
        timeout: 60_000,
        env: { PATH: process.env.PATH, DATA_DIR: dataDir, LOG_LEVEL: 'info', NODE_ENV: 'development' },
      });
      expect(stdout).toContain('migrations applied');
    } finally {
      await rm(dataDir, { recursive: true, force: true });
    }
  }, 120_000);
});

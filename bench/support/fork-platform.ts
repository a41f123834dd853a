import { type ChildProcess, fork } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import type { ChildReady } from './platform-child';
import { herokuNodeOptions, procfileEnv } from './process-env';

export interface ForkedPlatform extends ChildReady {
  child: ChildProcess;
  /** The highest RSS the child reported, in bytes. */
  maxRss(): number;
  stop(): Promise<void>;
}

const SOURCE = fileURLToPath(new URL('./platform-child.ts', import.meta.url));
const BUNDLE = fileURLToPath(new URL('../../dist/bench/platform-child.mjs', import.meta.url));
let built: Promise<unknown> | undefined;

/**
 * The child runs bundled, as production does (`npm run build`: plain node, no TypeScript loader in
 * memory); BENCH_TSX=1 runs it from source through tsx instead.
 */
async function childEntry(): Promise<string> {
  if (process.env.BENCH_TSX) return SOURCE;
  built ??= build({
    entryPoints: [SOURCE],
    outfile: BUNDLE,
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'esm',
    packages: 'external',
    logLevel: 'warning',
  });
  await built;
  return BUNDLE;
}

/** Forks bench/support/platform-child.ts in `mode` and waits (bounded) until it listens. */
export async function forkPlatform(
  mode: 'bare' | 'web' | 'full' | 'worker',
  env: Record<string, string> = {},
): Promise<ForkedPlatform> {
  const entry = await childEntry();
  // The platform logs at its default level unless BENCH_LOG_LEVEL says otherwise, one JSON line per
  // write, as its stdout would be on a dyno. They go to BENCH_LOG_FILE, or nowhere; a crash's stack
  // reaches stderr.
  const logFile = openSync(process.env.BENCH_LOG_FILE ?? '/dev/null', 'a');
  const child = fork(entry, [], {
    // BENCH_CPU_PROF=1 writes a .cpuprofile of the child into bench/.profiles (open it in Chrome DevTools).
    // The young-generation size the Procfile gives the platform's processes.
    execArgv: [
      '--max-semi-space-size=32',
      ...(entry.endsWith('.ts') ? ['--import', 'tsx'] : []),
      ...(process.env.BENCH_CPU_PROF ? ['--cpu-prof', '--cpu-prof-dir=bench/.profiles'] : []),
    ],
    // As deployed on Heroku (app.json's NODE_OPTIONS), unless the caller sets NODE_OPTIONS itself.
    env: { NODE_OPTIONS: herokuNodeOptions(), ...procfileEnv(), ...env, BENCH_MODE: mode },
    stdio: ['ignore', logFile, 'inherit', 'ipc'],
  });
  closeSync(logFile); // the child holds its own copy
  let maxRss = 0;
  const ready = await new Promise<ChildReady>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${mode} platform did not start in 60 s`)), 60_000);
    child.on('message', (message: { ready?: ChildReady; rss?: number }) => {
      if (message.rss) maxRss = Math.max(maxRss, message.rss);
      if (message.ready) {
        clearTimeout(timer);
        resolve(message.ready);
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${mode} platform exited with ${code}`));
    });
  });
  return {
    ...ready,
    child,
    maxRss: () => maxRss,
    async stop() {
      if (child.exitCode !== null) return;
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      child.kill(process.env.BENCH_CPU_PROF || process.env.BENCH_COUNT_QUERIES ? 'SIGINT' : 'SIGKILL');
      await exited;
    },
  };
}

/** A private-chat text update as Telegram sends it. */
export function textUpdate(updateId: number, chatId: number, text: string) {
  return {
    update_id: updateId,
    message: {
      message_id: updateId,
      from: { id: chatId, is_bot: false, first_name: 'Load' },
      chat: { id: chatId, type: 'private', first_name: 'Load' },
      date: Math.floor(Date.now() / 1000),
      text,
    },
  };
}

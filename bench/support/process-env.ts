import { readFileSync } from 'node:fs';

/**
 * The environment a platform process sees when the Procfile starts it: without the `npm_*`
 * variables `npm run` adds (about thirty). They matter to a benchmark because the inngest SDK reads
 * the whole environment several times per request (see lib/plain-env.ts): `npm run bench:*` would
 * otherwise measure a slower process than the one deployed.
 */
export function procfileEnv(env: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(env).filter(([key]) => !key.startsWith('npm_')));
}

/**
 * The NODE_OPTIONS app.json gives a Heroku app: the heap cap of a 512 MB dyno. Without it V8 sizes
 * the heap for this machine's 24 GB and lets the platform grow to about 400 MB RSS under load, where
 * its live heap is about 50 MB.
 */
export function herokuNodeOptions(): string {
  const manifest = JSON.parse(readFileSync(new URL('../../app.json', import.meta.url), 'utf8')) as {
    env: { NODE_OPTIONS: { value: string } };
  };
  return manifest.env.NODE_OPTIONS.value;
}

/**
 * The environment a platform process sees when the Procfile starts it: without the `npm_*`
 * variables `npm run` adds (about thirty). They matter to a benchmark because the inngest SDK reads
 * the whole environment several times per request (see lib/plain-env.ts): `npm run bench:*` would
 * otherwise measure a slower process than the one deployed.
 */
export function procfileEnv(env: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(env).filter(([key]) => !key.startsWith('npm_')));
}

import { serve } from '@hono/node-server';
import { sendEventVia } from '../functions/client';
import { createJobsRuntime, INNGEST_SERVE_PATH } from '../functions/runtime';
import { boot, onShutdown, reasonOf, startupProblem } from '../lib/boot';
import { readArgs } from '../lib/cli-args';
import { createApp } from './app';
import { answerClientErrors } from './client-errors';

/**
 * The HTTP entry. `npm start` runs it with the worker in the same process; the Procfile's `web`
 * passes `--web-only` and leaves the jobs to the `worker` process.
 */
const flags = readArgs(
  'the web process',
  'npm start --',
  [{ flag: '--web-only', description: 'serve HTTP only; a separate worker process runs the jobs' }],
  process.argv.slice(2),
);
const webOnly = flags.has('--web-only');
const role = webOnly ? 'web' : 'web+worker';
const { services, generatedAdminKey } = await boot(role);
const { config, logger } = services;

const runtime = createJobsRuntime(services);
const app = createApp(services, {
  jobsProbe: () => runtime.health(),
  sendEvent: sendEventVia(runtime.inngest),
  // Embedded: a Telegram update and its event are stored in one statement.
  eventsStatement: runtime.executor?.statement,
  // Inngest (Cloud or self-hosted) calls the serve endpoint over HTTP, signed. The embedded executor
  // calls it in-process and unsigned, so in embedded mode it is not exposed on the network at all.
  extend: (root) => {
    if (config.jobs.engine === 'inngest') {
      root.on(['GET', 'PUT', 'POST'], INNGEST_SERVE_PATH, (c) => runtime.serveHandler(c));
    }
  },
});
const worker = webOnly ? undefined : await runtime.startWorker();

const server = serve({ fetch: app.fetch, port: config.port }, (info) => {
  logger.info({ port: info.port }, `listening on http://localhost:${info.port}`);
  if (generatedAdminKey) {
    // Development convenience, never in production: the key was generated into .data/ for this machine.
    process.stdout.write(
      `\n  Development admin API key (stored in ${config.dataDir}/dev-secrets.json):\n    ${generatedAdminKey}\n` +
        `  Try: curl -H "Authorization: Bearer ${generatedAdminKey}" http://localhost:${info.port}/api/v1/admin/customers\n\n`,
    );
  }
});

/** Everything but the HTTP server, in order: the worker's runs first, then what they use. */
async function stopWork(): Promise<void> {
  await worker?.stop();
  await services.close();
}

answerClientErrors(server, logger);

server.on('error', (error: NodeJS.ErrnoException) => {
  const problem =
    error.code === 'EADDRINUSE'
      ? `PORT ${config.port} is in use by another process`
      : `Could not listen on PORT ${config.port}: ${reasonOf(error)}`;
  void startupProblem(role, problem, { close: stopWork });
});

/**
 * How long after the stop signal requests in flight may take; then the connections still open (a
 * client that stopped sending halfway through its request) are closed, so the worker's runs and the
 * database are still let go within Heroku's 30 s instead of the process being cut off.
 */
const CONNECTION_GRACE_MS = 10_000;

onShutdown(['SIGTERM', 'SIGINT'], async () => {
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  const linger = setTimeout(() => {
    logger.warn(
      `closing the HTTP connections still open ${CONNECTION_GRACE_MS / 1000} s after the stop signal`,
    );
    if ('closeAllConnections' in server) server.closeAllConnections();
  }, CONNECTION_GRACE_MS);
  linger.unref();
  await closed;
  clearTimeout(linger);
  await stopWork();
});

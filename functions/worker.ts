import { boot, onShutdown } from '../lib/boot';
import { readArgs } from '../lib/cli-args';
import { createJobsRuntime } from './runtime';

/** The Procfile's `worker` process: runs Inngest functions, serves no HTTP. */
readArgs('worker', 'npm run worker', [], process.argv.slice(2));
const { services } = await boot('worker');
const runtime = createJobsRuntime(services);
const worker = await runtime.startWorker();

onShutdown(['SIGTERM', 'SIGINT'], async () => {
  await worker.stop();
  await services.close();
});

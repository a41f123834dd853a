import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { JSON_TYPE } from '../../api/middleware/body-guard';

/**
 * Matches in a worker, so that a pattern that backtracks without end is stopped (and fails the test)
 * instead of holding the test run's own thread.
 */
function matchesInWorker(input: string, limitMs: number): Promise<'matched' | 'refused' | 'still matching'> {
  const worker = new Worker(
    `const { parentPort, workerData } = require('node:worker_threads');
     parentPort.postMessage(new RegExp(workerData.source, workerData.flags).test(workerData.input));`,
    { eval: true, workerData: { source: JSON_TYPE.source, flags: JSON_TYPE.flags, input } },
  );
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      void worker.terminate();
      resolve('still matching');
    }, limitMs);
    worker.once('message', (matched: boolean) => {
      clearTimeout(timer);
      void worker.terminate();
      resolve(matched ? 'matched' : 'refused');
    });
    worker.once('error', reject);
  });
}

describe('the Content-Type grammar', () => {
  // Each took seconds to minutes with the spaces after ";" claimable by two repetitions: a request
  // without an API key could hold the event loop.
  it.each([
    `application/json${' ; '.repeat(40)}x`,
    `application/json${'  ;  '.repeat(40)}x`,
    `application/json${'; '.repeat(60)}x`,
    `application/json${'\t;\t'.repeat(40)}x`,
  ])('refuses %j without backtracking for ever', async (contentType) => {
    expect(await matchesInWorker(contentType, 10_000)).toBe('refused');
  });

  it('still takes the same runs when they end well', async () => {
    expect(await matchesInWorker(`application/json${' ; '.repeat(40)}`, 10_000)).toBe('matched');
    expect(await matchesInWorker(`application/json${' ; a=b'.repeat(40)}`, 10_000)).toBe('matched');
  });
});

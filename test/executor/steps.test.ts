import { NonRetriableError, RetryAfterError } from 'inngest';
import { afterEach, describe, expect, it } from 'vitest';
import { databaseTargets } from '../support/db';
import { createExecutorHarness, type ExecutorHarness } from '../support/executor';

const APP = 'openclaw-platform';

describe.each(databaseTargets())('executor steps on %s', (target) => {
  let h: ExecutorHarness | undefined;
  afterEach(async () => {
    await h?.close();
    h = undefined;
  });

  it('runs a multi-step function, each step body exactly once, with memoized results', async () => {
    const calls: string[] = [];
    h = await createExecutorHarness({
      target,
      functions: (inngest) => [
        inngest.createFunction(
          { id: 'three-steps', triggers: [{ event: 'test/three' }] },
          async ({ event, step }) => {
            const a = await step.run('first', () => {
              calls.push('first');
              return (event.data as { n: number }).n + 1;
            });
            const b = await step.run('second', () => {
              calls.push('second');
              return a * 10;
            });
            const c = await step.run('third', () => {
              calls.push('third');
              return { total: b + 1 };
            });
            return c;
          },
        ),
      ],
    });
    await h.send({ name: 'test/three', data: { n: 1 } });
    await h.drain();
    const [run] = await h.runsOf(`${APP}-three-steps`);
    expect(calls).toEqual(['first', 'second', 'third']);
    expect(run?.status).toBe('completed');
    expect(run?.output).toEqual({ total: 21 });
    expect(run?.steps.map((s) => [s.name, s.status, s.output, s.attempts])).toEqual([
      ['first', 'completed', 2, 1],
      ['second', 'completed', 20, 1],
      ['third', 'completed', { total: 21 }, 1],
    ]);
  });

  it('runs parallel steps as separate planned steps, then continues with all results', async () => {
    const calls: string[] = [];
    h = await createExecutorHarness({
      target,
      functions: (inngest) => [
        inngest.createFunction(
          { id: 'parallel', triggers: [{ event: 'test/parallel' }] },
          async ({ step }) => {
            const [x, y, z] = await Promise.all([
              step.run('x', () => {
                calls.push('x');
                return 1;
              }),
              step.run('y', () => {
                calls.push('y');
                return 2;
              }),
              step.run('z', () => {
                calls.push('z');
                return 3;
              }),
            ]);
            const sum = await step.run('sum', () => {
              calls.push('sum');
              return x + y + z;
            });
            return { sum };
          },
        ),
      ],
    });
    await h.send({ name: 'test/parallel', data: {} });
    await h.drain();
    const [run] = await h.runsOf(`${APP}-parallel`);
    expect(run?.status).toBe('completed');
    expect(run?.output).toEqual({ sum: 6 });
    expect([...calls].sort()).toEqual(['sum', 'x', 'y', 'z']);
    expect(run?.steps).toHaveLength(4);
  });

  it('retries a step that fails twice, with backoff, and then succeeds', async () => {
    let tries = 0;
    h = await createExecutorHarness({
      target,
      functions: (inngest) => [
        inngest.createFunction(
          { id: 'flaky', retries: 3, triggers: [{ event: 'test/flaky' }] },
          async ({ step }) => {
            const value = await step.run('flaky-step', () => {
              tries += 1;
              if (tries < 3) throw new Error(`boom ${tries}`);
              return 'ok';
            });
            return value;
          },
        ),
      ],
    });
    await h.send({ name: 'test/flaky', data: {} });
    await h.drain();
    expect(tries).toBe(1);
    let [run] = await h.runsOf(`${APP}-flaky`);
    expect(run?.status).toBe('running');
    expect(run?.steps[0]).toMatchObject({ status: 'retrying', attempts: 1, error: { message: 'boom 1' } });
    // Backoff: base 1 s * 2^0 with jitter 0.5 -> 750 ms; nothing happens before it.
    await h.advance(700);
    expect(tries).toBe(1);
    await h.advance(100);
    expect(tries).toBe(2);
    await h.settle();
    expect(tries).toBe(3);
    [run] = await h.runsOf(`${APP}-flaky`);
    expect(run?.status).toBe('completed');
    expect(run?.output).toBe('ok');
    expect(run?.steps[0]).toMatchObject({ status: 'completed', attempts: 3 });
  });

  it('stores a step output or error holding NUL or a lone surrogate (jsonb refuses both) instead of running it for ever', async () => {
    let outputs = 0;
    let failures = 0;
    h = await createExecutorHarness({
      target,
      functions: (inngest) => [
        inngest.createFunction(
          { id: 'odd-text', retries: 1, triggers: [{ event: 'test/odd-text' }] },
          async ({ step }) => {
            const echoed = await step.run('echo', () => {
              outputs += 1;
              return { text: 'a\u0000b\ud800c' };
            });
            await step.run('fail', () => {
              failures += 1;
              throw new Error(`receiver said "ok\u0000" \udc00`);
            });
            return echoed;
          },
        ),
      ],
    });
    await h.send({ name: 'test/odd-text', data: {} });
    await h.settle();
    expect(outputs).toBe(1);
    expect(failures).toBe(2); // the first try and its one retry
    const [run] = await h.runsOf(`${APP}-odd-text`);
    expect(run?.status).toBe('failed');
    expect(run?.steps[0]).toMatchObject({ status: 'completed', output: { text: 'a\ufffdb\ufffdc' } });
    expect(run?.error).toMatchObject({ message: 'receiver said "ok\ufffd" \ufffd' });
  });

  it('honours RetryAfterError: the retry waits for the retry-after time', async () => {
    let tries = 0;
    h = await createExecutorHarness({
      target,
      functions: (inngest) => [
        inngest.createFunction(
          { id: 'retry-after', triggers: [{ event: 'test/retry-after' }] },
          async ({ step }) => {
            return step.run('limited', () => {
              tries += 1;
              if (tries === 1) throw new RetryAfterError('rate limited', '30s');
              return tries;
            });
          },
        ),
      ],
    });
    await h.send({ name: 'test/retry-after', data: {} });
    await h.drain();
    expect(tries).toBe(1);
    await h.advance(29_000);
    expect(tries).toBe(1);
    await h.advance(1_000);
    expect(tries).toBe(2);
    const [run] = await h.runsOf(`${APP}-retry-after`);
    expect(run?.status).toBe('completed');
  });

  it('NonRetriableError fails the run at once and runs onFailure with the error', async () => {
    let tries = 0;
    const failures: unknown[] = [];
    h = await createExecutorHarness({
      target,
      functions: (inngest) => [
        inngest.createFunction(
          {
            id: 'doomed',
            retries: 5,
            triggers: [{ event: 'test/doomed' }],
            onFailure: async ({
              error,
              event,
            }: {
              error: Error;
              event: { data: { event: { data: unknown } } };
            }) => {
              failures.push({ message: error.message, original: event.data.event.data });
            },
          },
          async ({ step }) => {
            await step.run('hopeless', () => {
              tries += 1;
              throw new NonRetriableError('bad credentials');
            });
          },
        ),
      ],
    });
    await h.send({ name: 'test/doomed', data: { agentId: 'a1' } });
    await h.drain();
    expect(tries).toBe(1);
    const [run] = await h.runsOf(`${APP}-doomed`);
    expect(run?.status).toBe('failed');
    expect(run?.steps[0]).toMatchObject({ status: 'failed', attempts: 1 });
    expect(failures).toEqual([
      { message: expect.stringContaining('bad credentials'), original: { agentId: 'a1' } },
    ]);
    const [failureRun] = await h.runsOf(`${APP}-doomed-failure`);
    expect(failureRun?.status).toBe('completed');
  });

  it('fails the run after the last attempt of a function-level error', async () => {
    let tries = 0;
    h = await createExecutorHarness({
      target,
      functions: (inngest) => [
        inngest.createFunction(
          { id: 'always-throws', retries: 2, triggers: [{ event: 'test/throws' }] },
          async () => {
            tries += 1;
            throw new Error('nope');
          },
        ),
      ],
    });
    await h.send({ name: 'test/throws', data: {} });
    await h.settle();
    expect(tries).toBe(3);
    const [run] = await h.runsOf(`${APP}-always-throws`);
    expect(run?.status).toBe('failed');
    expect(run?.error).toMatchObject({ message: 'nope' });
  });
});

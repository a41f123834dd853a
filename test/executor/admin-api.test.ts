import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../../api/app';
import { databaseTargets } from '../support/db';
import { createExecutorHarness, type ExecutorHarness } from '../support/executor';
import { TEST_ADMIN_KEY } from '../support/services';

const APP = 'openclaw-platform';
const auth = { authorization: `Bearer ${TEST_ADMIN_KEY}` };

describe.each(databaseTargets())('admin runs and events API on %s', (target) => {
  let h: ExecutorHarness;
  let app: ReturnType<typeof createApp>;
  const greeted: string[] = [];
  const cancelledRuns: string[] = [];

  beforeAll(async () => {
    h = await createExecutorHarness({
      target,
      functions: (inngest) => [
        inngest.createFunction(
          { id: 'greet', triggers: [{ event: 'test/greet' }] },
          async ({ event, step }) => {
            const name = (event.data as { name: string }).name;
            await step.run('say-hello', () => {
              greeted.push(name);
              return `hello ${name}`;
            });
            await step.sleep('pause', '1h');
            return 'done';
          },
        ),
        inngest.createFunction(
          {
            id: 'after-cancel',
            triggers: [
              { event: 'inngest/function.cancelled', if: `event.data.function_id == '${APP}-greet'` },
            ],
          },
          async ({ event, step }) => {
            await step.run('note', () => cancelledRuns.push((event.data as { run_id: string }).run_id));
          },
        ),
      ],
    });
    app = createApp(h.services);
    await h.send([1, 2, 3].map((n) => ({ name: 'test/greet', data: { name: `n${n}` } })));
    await h.drain();
  });
  afterAll(async () => {
    await h.close();
  });

  it('rejects requests without the admin key', async () => {
    const res = await app.request('/api/v1/admin/runs');
    expect(res.status).toBe(401);
    expect(await res.json()).toMatchObject({ error: { code: 'unauthorized' } });
    const wrong = await app.request('/api/v1/admin/events', { headers: { authorization: 'Bearer nope' } });
    expect(wrong.status).toBe(401);
  });

  it('lists runs with filters and cursor pagination', async () => {
    const first = await app.request('/api/v1/admin/runs?limit=2&status=running', { headers: auth });
    expect(first.status).toBe(200);
    const page1 = (await first.json()) as {
      data: { id: string; status: string; functionId: string }[];
      nextCursor: string;
    };
    expect(page1.data).toHaveLength(2);
    expect(page1.data.every((run) => run.status === 'running' && run.functionId === `${APP}-greet`)).toBe(
      true,
    );
    const second = await app.request(`/api/v1/admin/runs?limit=2&status=running&cursor=${page1.nextCursor}`, {
      headers: auth,
    });
    const page2 = (await second.json()) as { data: { id: string }[]; nextCursor: string | null };
    expect(page2.data).toHaveLength(1);
    expect(page2.nextCursor).toBeNull();
    expect(new Set([...page1.data, ...page2.data].map((run) => run.id)).size).toBe(3);
    const none = await app.request('/api/v1/admin/runs?status=failed', { headers: auth });
    expect(((await none.json()) as { data: unknown[] }).data).toEqual([]);
  });

  it('answers a bad filter with a 400 naming the field', async () => {
    const res = await app.request('/api/v1/admin/runs?status=exploded', { headers: auth });
    expect(res.status).toBe(400);
    expect(JSON.stringify(await res.json())).toContain('status');
    const cursor = await app.request('/api/v1/admin/runs?cursor=garbage', { headers: auth });
    expect(cursor.status).toBe(400);
  });

  it('shows a run with its step history', async () => {
    const list = (await (await app.request('/api/v1/admin/runs?limit=1', { headers: auth })).json()) as {
      data: { id: string }[];
    };
    const res = await app.request(`/api/v1/admin/runs/${list.data[0]?.id}`, { headers: auth });
    expect(res.status).toBe(200);
    const run = (await res.json()) as {
      steps: { name: string; status: string; output: unknown; attempts: number }[];
    };
    expect(run.steps.map((step) => [step.name, step.status])).toEqual([
      ['say-hello', 'completed'],
      ['pause', 'sleeping'],
    ]);
    expect(run.steps[0]).toMatchObject({ attempts: 1 });
    expect(String(run.steps[0]?.output)).toMatch(/^hello n\d$/);
  });

  it('answers 404 run_not_found for an unknown run', async () => {
    const res = await app.request('/api/v1/admin/runs/00000000-0000-4000-8000-000000000000', {
      headers: auth,
    });
    expect(res.status).toBe(404);
    expect(await res.json()).toMatchObject({ error: { code: 'run_not_found' } });
    const cancel = await app.request('/api/v1/admin/runs/not-a-uuid/cancel', {
      method: 'POST',
      headers: auth,
    });
    expect(cancel.status).toBe(404);
  });

  it('answers 404, not 500, for ids that are 36 characters of hex and dashes but no UUID', async () => {
    const bogus = ['-'.repeat(36), '0'.repeat(36), `${'a'.repeat(35)}-`];
    for (const id of bogus) {
      for (const [method, path, code] of [
        ['GET', `/api/v1/admin/runs/${id}`, 'run_not_found'],
        ['POST', `/api/v1/admin/runs/${id}/cancel`, 'run_not_found'],
        ['GET', `/api/v1/admin/events/${id}`, 'event_not_found'],
        ['POST', `/api/v1/admin/events/${id}/replay`, 'event_not_found'],
      ] as const) {
        const res = await app.request(path, { method, headers: auth });
        expect({ path, status: res.status }).toEqual({ path, status: 404 });
        expect(await res.json()).toMatchObject({ error: { code } });
      }
    }
  });

  it('cancels a run: it never resumes', async () => {
    const list = (await (
      await app.request('/api/v1/admin/runs?status=running&limit=1', { headers: auth })
    ).json()) as {
      data: { id: string }[];
    };
    const id = list.data[0]?.id as string;
    // The id in capitals is the same run, and the cancellation event names it as stored.
    const res = await app.request(`/api/v1/admin/runs/${id.toUpperCase()}/cancel`, {
      method: 'POST',
      headers: auth,
    });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ id, status: 'cancelled' });
    await h.advance(2 * 60 * 60 * 1000);
    expect((await h.run(id)).status).toBe('cancelled');
    // inngest/function.cancelled reached the function that cleans up after it, once.
    expect(cancelledRuns).toEqual([id]);
    const others = await h.runsOf(`${APP}-greet`);
    expect(others.filter((run) => run.status === 'completed')).toHaveLength(2);
  });

  it('pages through events received in the same millisecond, each once', async () => {
    type Page = { data: { id: string; data: { name: string } }[]; nextCursor: string | null };
    const first = (await (
      await app.request('/api/v1/admin/events?limit=2&name=test/greet', { headers: auth })
    ).json()) as Page;
    expect(first.data).toHaveLength(2);
    expect(first.nextCursor).toEqual(expect.any(String));
    const second = (await (
      await app.request(`/api/v1/admin/events?limit=2&name=test/greet&cursor=${first.nextCursor}`, {
        headers: auth,
      })
    ).json()) as Page;
    expect(second.nextCursor).toBeNull();
    const names = [...first.data, ...second.data].map((event) => event.data.name);
    expect(names.sort()).toEqual(['n1', 'n2', 'n3']);
  });

  it('lists events, shows one with its runs, and replays it as a new event that runs again', async () => {
    const res = await app.request('/api/v1/admin/events?limit=10&name=test/greet', { headers: auth });
    expect(res.status).toBe(200);
    const events = (await res.json()) as { data: { id: string; data: { name: string } }[] };
    expect(events.data).toHaveLength(3);
    const original = events.data.find((event) => event.data.name === 'n1');
    const detail = await app.request(`/api/v1/admin/events/${original?.id}`, { headers: auth });
    expect(((await detail.json()) as { runs: unknown[] }).runs).toHaveLength(1);

    const replay = await app.request(`/api/v1/admin/events/${original?.id}/replay`, {
      method: 'POST',
      headers: auth,
    });
    expect(replay.status).toBe(202);
    const copy = (await replay.json()) as { id: string; replayOf: string; data: unknown };
    expect(copy.id).not.toBe(original?.id);
    expect(copy.replayOf).toBe(original?.id);
    expect(copy.data).toEqual({ name: 'n1' });
    greeted.length = 0;
    await h.drain();
    expect(greeted).toEqual(['n1']);
    const missing = await app.request('/api/v1/admin/events/00000000-0000-4000-8000-000000000000/replay', {
      method: 'POST',
      headers: auth,
    });
    expect(missing.status).toBe(404);
    expect(await missing.json()).toMatchObject({ error: { code: 'event_not_found' } });
  });
});

import { eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createFunctions } from '../../functions/index';
import { agents } from '../../lib/db/schema';
import { createRunningAgent } from '../support/agents';
import { createExecutorHarness, type ExecutorHarness } from '../support/executor';
import { type FakeTelegram, startFakeTelegram } from '../support/fake-telegram';
import { captureLogger } from '../support/services';

/*
 * A step that calls Telegram and fails is logged by the Inngest SDK itself ("Inngest step error",
 * `{ err }`), with grammY's HttpError as it was thrown: node-fetch's error inside it names the URL,
 * and with it the bot token. The production log level is info, which keeps error lines.
 */
describe('a lifecycle step failing on an unreachable Telegram', () => {
  const capture = captureLogger('info');
  let harness: ExecutorHarness;
  let telegram: FakeTelegram;

  beforeAll(async () => {
    telegram = await startFakeTelegram();
    harness = await createExecutorHarness({
      target: 'pglite',
      logger: capture.logger,
      functions: (inngest, services) => createFunctions({ inngest, services }),
      env: { TELEGRAM_API_ROOT: telegram.apiRoot, TELEGRAM_WEBHOOK_BASE_URL: 'https://bots.example.test' },
    });
  });
  afterAll(async () => {
    await harness.close();
    await telegram.stop();
  });

  it('logs each failed try without the bot token', async () => {
    const agent = await createRunningAgent(harness, telegram, undefined);
    telegram.setDown('reset');
    try {
      await harness.services.db
        .update(agents)
        .set({ status: 'stopping' })
        .where(eq(agents.id, agent.agentId));
      await harness.send({
        name: 'agent/stop.requested',
        data: { agentId: agent.agentId, customerId: agent.customerId },
      });
      await harness.settle();
    } finally {
      telegram.setDown(false);
    }
    const stepErrors = capture.lines.filter((line) => line.msg === 'Inngest step error');
    expect(stepErrors.length).toBeGreaterThan(1);
    expect(JSON.stringify(stepErrors)).toContain('/bot[redacted]/deleteWebhook');
    const [botSecret] = agent.token.split(':').slice(1);
    for (const line of capture.lines) {
      expect(JSON.stringify(line)).not.toContain(agent.token);
      expect(JSON.stringify(line)).not.toContain(botSecret);
    }
  });
});

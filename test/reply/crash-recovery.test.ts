import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { apiRequest } from '../support/api-request';
import { createEmptyDatabase, databaseTargets } from '../support/db';
import { type FakeAnthropic, startFakeAnthropic } from '../support/fake-anthropic';
import { buildUpdate, type FakeTelegram, startFakeTelegram } from '../support/fake-telegram';
import { closedPort } from '../support/loopback';
import { TEST_ADMIN_KEY } from '../support/services';
import { until } from '../support/until';

/*
 * The platform as `npm start` runs it (api/server.ts: web and worker in one process, long polling)
 * while an answer is half sent: killed with SIGKILL (a crashed dyno, an out-of-memory kill, a laptop
 * closed), then started again on the same database, it sends the rest of the answer and nothing twice;
 * stopped with SIGTERM (a deploy, Heroku's daily restart), it finishes the answer before it exits.
 */

const root = fileURLToPath(new URL('../..', import.meta.url));
const TOKEN = '424242:AAE-crash-recovery-token-0123456789';
const CLAUDE_KEY = 'sk-ant-api03-crash-recovery-key-0123456789';
/** Three paragraphs, each too long to share one 4,096-character message with the next. */
const PARAGRAPHS = ['alpha', 'bravo', 'charlie'].map((word) => `${`${word} `.repeat(500)}${word}.`);

interface Platform {
  child: ChildProcess;
  origin: string;
  output(): string;
}

describe.each(databaseTargets())('a platform killed mid-answer, on %s', (target) => {
  let telegram: FakeTelegram;
  let anthropic: FakeAnthropic;
  let dataDir: string;
  let dropDatabase: () => Promise<void> = async () => {};
  let env: Record<string, string>;
  const children: ChildProcess[] = [];

  async function startPlatform(): Promise<Platform> {
    const child = spawn(process.execPath, ['--import', 'tsx', join(root, 'api/server.ts')], {
      cwd: root,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.push(child);
    let output = '';
    child.stdout?.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
    child.stderr?.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
    const origin = `http://127.0.0.1:${env.PORT}`;
    await until(
      async () => {
        if (child.exitCode !== null) throw new Error(`the platform exited with ${child.exitCode}\n${output}`);
        return fetch(`${origin}/health`).then(
          (res) => res.ok,
          () => false,
        );
      },
      'the platform to answer /health',
      { timeoutMs: 45_000, detail: () => output },
    );
    return { child, origin, output: () => output };
  }

  async function kill(platform: Platform, signal: NodeJS.Signals): Promise<void> {
    if (platform.child.exitCode !== null) return;
    const exited = new Promise((resolve) => platform.child.once('exit', resolve));
    platform.child.kill(signal);
    await exited;
  }

  /** A REST call over the network to the platform's process; a refusal fails the test with its body. */
  const call = async (platform: Platform, method: string, path: string, key: string, body?: unknown) => {
    const overHttp = { request: (url: string, init: RequestInit) => fetch(`${platform.origin}${url}`, init) };
    const res = await apiRequest(overHttp, method, path, { key, body });
    const json = (await res.json()) as Record<string, unknown>;
    if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${JSON.stringify(json)}`);
    return json;
  };

  let platform: Platform;
  let apiKey: string;

  /** The answers the fake Telegram delivered to `chatId`, in order. */
  const sentTo = (chatId: number) =>
    telegram.sent.filter((message) => message.chatId === chatId).map((message) => message.text);
  const replyRuns = async () =>
    (
      (await call(
        platform,
        'GET',
        '/api/v1/admin/runs?functionId=openclaw-platform-reply-to-message&limit=20',
        TEST_ADMIN_KEY,
      )) as { data: { status: string }[] }
    ).data;
  /** Sends the user's question and waits until the answer's first chunk is out and the second held. */
  async function askAndHoldSecondChunk(userId: number) {
    telegram.hold('sendMessage', 1);
    telegram.queueUpdate(
      TOKEN,
      buildUpdate.privateText({ from: { id: userId, first_name: 'Ada' }, text: 'Tell me a long story' }),
    );
    await until(() => telegram.heldCalls('sendMessage') === 1, 'the second chunk to be on its way', {
      timeoutMs: 20_000,
      detail: platform.output,
    });
    expect(sentTo(userId)).toEqual([PARAGRAPHS[0]]);
  }

  beforeAll(async () => {
    telegram = await startFakeTelegram();
    anthropic = await startFakeAnthropic();
    telegram.addBot(TOKEN, { id: 424242, first_name: 'Crash', username: 'crash_recovery_bot' });
    anthropic.addKey(CLAUDE_KEY);
    anthropic.setReply(PARAGRAPHS.join('\n\n'), CLAUDE_KEY);
    dataDir = mkdtempSync(join(tmpdir(), 'oc-crash-'));
    const database = target === 'postgres' ? await createEmptyDatabase('postgres') : undefined;
    dropDatabase = database?.destroy ?? dropDatabase;
    env = {
      PATH: process.env.PATH ?? '',
      NODE_ENV: 'development',
      LOG_LEVEL: 'warn',
      PORT: String(await closedPort()),
      DATA_DIR: dataDir,
      ...(database?.url ? { DATABASE_URL: database.url } : {}),
      ENCRYPTION_MASTER_KEY: Buffer.alloc(32, 9).toString('base64'),
      ADMIN_API_KEY: TEST_ADMIN_KEY,
      TELEGRAM_API_ROOT: telegram.apiRoot,
      ANTHROPIC_BASE_URL: anthropic.baseURL,
    };
    platform = await startPlatform();
    ({ apiKey } = (await call(platform, 'POST', '/api/v1/admin/customers', TEST_ADMIN_KEY, {
      name: 'Crash Inc',
      plan: 'pro',
    })) as { apiKey: string });
    const { agent } = (await call(platform, 'POST', '/api/v1/agents', apiKey, {
      name: 'Survivor',
      telegramDmPolicy: 'open',
      // Room for the whole answer: the fake Claude stops at about four characters a token.
      maxTokens: 4096,
    })) as { agent: { id: string } };
    const agentPath = `/api/v1/agents/${agent.id}`;
    await call(platform, 'PUT', `${agentPath}/credentials/telegram`, apiKey, { botToken: TOKEN });
    await call(platform, 'PUT', `${agentPath}/credentials/claude`, apiKey, { apiKey: CLAUDE_KEY });
    await call(platform, 'POST', `${agentPath}/credentials/validate`, apiKey);
    await call(platform, 'POST', `${agentPath}/start`, apiKey);
    await until(() => telegram.callsOf('getUpdates', TOKEN).length > 0, 'the agent to poll for updates', {
      timeoutMs: 20_000,
      detail: platform.output,
    });
  }, 90_000);
  afterAll(async () => {
    for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
    await telegram?.stop();
    await anthropic?.stop();
    await dropDatabase();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('killed (SIGKILL) with a chunk on its way: the next process sends the rest, no chunk twice', async () => {
    await askAndHoldSecondChunk(5150);
    await kill(platform, 'SIGKILL');
    // What was on its way when the process died never reached Telegram.
    telegram.release('sendMessage');

    // The run's lease (30 s) runs out and the new process takes it over.
    platform = await startPlatform();
    await until(() => sentTo(5150).length >= 3, 'the rest of the answer', {
      timeoutMs: 60_000,
      detail: platform.output,
    });
    await until(async () => (await replyRuns())[0]?.status === 'completed', 'the reply run to end', {
      timeoutMs: 10_000,
    });
    // One run: the update the first process had not confirmed to Telegram, handed over again, was
    // stored once.
    expect(await replyRuns()).toHaveLength(1);
    expect(sentTo(5150)).toEqual(PARAGRAPHS);
  }, 120_000);

  it('stopped (SIGTERM) with a chunk on its way: it finishes the answer and exits 0, the next sends nothing', async () => {
    await askAndHoldSecondChunk(6160);
    const stopping = kill(platform, 'SIGTERM');
    // Telegram answers the call in flight a moment later, while the process is shutting down.
    await new Promise((resolve) => setTimeout(resolve, 500));
    telegram.release('sendMessage');
    await stopping;
    expect(platform.child.exitCode).toBe(0);
    expect(sentTo(6160)).toEqual(PARAGRAPHS);

    platform = await startPlatform();
    const polls = telegram.callsOf('getUpdates', TOKEN).length;
    await until(() => telegram.callsOf('getUpdates', TOKEN).length > polls, 'the next process to poll', {
      timeoutMs: 20_000,
    });
    expect((await replyRuns()).map((run) => run.status)).toEqual(['completed', 'completed']);
    expect(sentTo(6160)).toEqual(PARAGRAPHS);
    await kill(platform, 'SIGTERM');
    expect(platform.child.exitCode).toBe(0);
  }, 90_000);
});

/**
 * A walk through the API against a running platform:
 *   npm start            (in one terminal; note the admin key it prints)
 *   ADMIN_API_KEY=... npx tsx examples/walkthrough.ts [http://localhost:3000]
 * Optional: TELEGRAM_BOT_TOKEN and ANTHROPIC_API_KEY to store real credentials on the agent.
 */
import { readFileSync } from 'node:fs';
import { OpenClawClient, OpenClawError } from './sdk-client';

const baseUrl = process.argv[2] ?? 'http://localhost:3000';
const adminKey =
  process.env.ADMIN_API_KEY ??
  (JSON.parse(readFileSync('.data/dev-secrets.json', 'utf8')) as { adminApiKey: string }).adminApiKey;

const step = (title: string, value: unknown) =>
  console.log(`\n== ${title}\n${JSON.stringify(value, null, 2)}`);

const admin = new OpenClawClient({ baseUrl, apiKey: adminKey });
const { customer, apiKey } = await admin.createCustomer({ name: 'Walkthrough Inc', plan: 'pro' });
step('created customer (its API key is shown only now)', { customer, apiKey: `${apiKey.slice(0, 11)}…` });

const client = new OpenClawClient({ baseUrl, apiKey });
const { agent } = await client.createAgent({
  name: 'Concierge',
  systemPrompt: 'You are a concise, friendly concierge.',
  model: 'claude-sonnet-4-20250514',
  temperature: 0.3,
  telegramDmPolicy: 'pairing',
});
step('created agent (the seed model name resolved to the configured Sonnet)', agent);

try {
  await client.createAgent({ name: 'Sneaky', tools: ['bash'] } as never);
} catch (error) {
  if (!(error instanceof OpenClawError)) throw error;
  step('refused an agent with tools', error.body);
}

if (process.env.TELEGRAM_BOT_TOKEN) {
  step(
    'stored Telegram token',
    await client.setTelegramCredentials(agent.id, { botToken: process.env.TELEGRAM_BOT_TOKEN }),
  );
}
if (process.env.ANTHROPIC_API_KEY) {
  step(
    'stored Anthropic key',
    await client.setClaudeCredentials(agent.id, { apiKey: process.env.ANTHROPIC_API_KEY }),
  );
}
step('credential status (never the secrets)', await client.getCredentials(agent.id));
step(
  'audit log',
  (await client.listAuditLog({ limit: 5 })).entries.map((entry) => `${entry.action} ${entry.outcome}`),
);

import { createRoute, type OpenAPIHono, z } from '@hono/zod-openapi';
import { checkHealth } from '../../lib/health';
import type { AppEnv } from '../env';
import { loggerFor } from '../request-context';

const PartSchema = z.object({ ok: z.boolean(), error: z.string().optional() });

export const HealthSchema = z
  .object({
    status: z.enum(['ok', 'degraded']),
    db: PartSchema.extend({ driver: z.enum(['pglite', 'pg', 'neon']) }),
    redis: PartSchema.extend({
      mode: z.enum(['memory', 'tcp', 'upstash']),
      rateLimits: z.enum(['enforced', 'failing_open']),
    }),
    jobs: PartSchema.extend({ engine: z.enum(['embedded', 'inngest']) }),
    version: z.string(),
  })
  .openapi('Health');

const route = createRoute({
  operationId: 'getHealth',
  tags: ['Platform'],
  method: 'get',
  path: '/health',
  summary: 'Each part of the platform and whether it answers',
  responses: {
    200: { description: 'Every part answers', content: { 'application/json': { schema: HealthSchema } } },
    503: {
      description: 'At least one part is down',
      content: { 'application/json': { schema: HealthSchema } },
    },
  },
});

export function registerHealth(app: OpenAPIHono<AppEnv>) {
  app.openapi(route, async (c) => {
    const report = await checkHealth(c.get('services'), c.get('jobsProbe'), (part, err) =>
      loggerFor(c).warn({ err, part }, 'health check failed'),
    );
    c.header('Cache-Control', 'no-store');
    return report.status === 'ok' ? c.json(report, 200) : c.json(report, 503);
  });
}

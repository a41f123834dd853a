import type { OpenAPIHono } from '@hono/zod-openapi';
import { Scalar } from '@scalar/hono-api-reference';
import { VERSION } from '../../lib/version';
import type { AppEnv } from '../env';

/** The OpenAPI 3.1 document, generated from the same zod schemas that validate requests, and its docs. */
export function registerOpenApi(app: OpenAPIHono<AppEnv>) {
  app.openAPIRegistry.registerComponent('securitySchemes', 'adminKey', {
    type: 'http',
    scheme: 'bearer',
    description: "The operator's ADMIN_API_KEY",
  });
  app.openAPIRegistry.registerComponent('securitySchemes', 'customerKey', {
    type: 'http',
    scheme: 'bearer',
    description: "A customer's API key (oc_...)",
  });
  app.doc31('/openapi.json', {
    openapi: '3.1.0',
    info: {
      title: 'OpenClaw agent platform API',
      version: VERSION,
      description:
        'Operators create customers (admin key); customers create Claude-powered Telegram agents (customer key). ' +
        'Every error is { error: { code, message, details?, requestId } }.',
    },
  });
  app.get('/docs', Scalar({ url: '/openapi.json', pageTitle: 'OpenClaw agent platform API' }));
}

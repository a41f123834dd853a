import type { OpenAPIHono } from '@hono/zod-openapi';
import type { AppEnv } from '../../env';
import { registerAgents } from './agents';
import { registerCredentials } from './credentials';
import { registerLifecycle } from './lifecycle';
import { registerPairing } from './pairing';

export function registerAgentRoutes(app: OpenAPIHono<AppEnv>) {
  registerAgents(app);
  registerCredentials(app);
  registerLifecycle(app);
  registerPairing(app);
}

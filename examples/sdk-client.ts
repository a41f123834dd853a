/**
 * A typed client for the platform's REST API. Request and response types come from the same zod
 * schemas that validate the API (lib/schemas), so the client cannot drift from the server.
 *
 * @example
 * const admin = new OpenClawClient({ baseUrl: 'http://localhost:3000', apiKey: process.env.ADMIN_API_KEY! });
 * const { customer, apiKey } = await admin.createCustomer({ name: 'Acme', plan: 'pro' });
 * const client = new OpenClawClient({ baseUrl: 'http://localhost:3000', apiKey });
 * const { agent } = await client.createAgent({ name: 'Support' });
 */
import type { z } from 'zod';
import type { getAgentStatus } from '../lib/lifecycle/status';
import type { Agent, CreateAgentSchema, UpdateAgentSchema } from '../lib/schemas/agents';
import type { AuditEntrySchema } from '../lib/schemas/audit';
import type { CredentialStatus } from '../lib/schemas/credentials';
import type { CreateCustomerSchema, Customer, UpdateCustomerSchema } from '../lib/schemas/customers';
import type { PairingRequestView as PairingRequest } from '../lib/schemas/pairing';

export type CreateCustomerRequest = z.input<typeof CreateCustomerSchema>;
export type UpdateCustomerRequest = z.input<typeof UpdateCustomerSchema>;
export type CreateAgentRequest = z.input<typeof CreateAgentSchema>;
export type UpdateAgentRequest = z.input<typeof UpdateAgentSchema>;
export type AuditEntry = z.infer<typeof AuditEntrySchema>;
export type AgentStatus = Awaited<ReturnType<typeof getAgentStatus>>;
export type { Agent, CredentialStatus, Customer, PairingRequest };

export interface Page {
  limit?: number;
  cursor?: string;
}

/** The API's error body: `{ error: { code, message, details?, requestId } }`. */
export interface ApiErrorBody {
  error: { code: string; message: string; details?: Record<string, unknown>; requestId: string };
}

export class OpenClawError extends Error {
  constructor(
    readonly status: number,
    readonly body: ApiErrorBody,
  ) {
    super(`${status} ${body.error.code}: ${body.error.message}`);
    this.name = 'OpenClawError';
  }
  get code(): string {
    return this.body.error.code;
  }
  get requestId(): string {
    return this.body.error.requestId;
  }
}

export interface OpenClawClientOptions {
  baseUrl: string;
  /** The admin key for admin methods, a customer key (oc_...) for the others. */
  apiKey: string;
  fetch?: typeof fetch;
}

type Query = object;

export class OpenClawClient {
  readonly #baseUrl: string;
  readonly #apiKey: string;
  readonly #fetch: typeof fetch;

  constructor(options: OpenClawClientOptions) {
    this.#baseUrl = options.baseUrl.replace(/\/+$/, '');
    this.#apiKey = options.apiKey;
    this.#fetch = options.fetch ?? globalThis.fetch.bind(globalThis);
  }

  async #request<T>(
    method: string,
    path: string,
    options: { body?: unknown; query?: Query; headers?: Record<string, string> } = {},
  ): Promise<T> {
    const url = new URL(`${this.#baseUrl}/api/v1${path}`);
    for (const [name, value] of Object.entries(options.query ?? {}) as [string, unknown][]) {
      if (value !== undefined) url.searchParams.set(name, String(value));
    }
    const res = await this.#fetch(url, {
      method,
      headers: {
        authorization: `Bearer ${this.#apiKey}`,
        ...(options.body !== undefined ? { 'content-type': 'application/json' } : {}),
        ...options.headers,
      },
      ...(options.body !== undefined ? { body: JSON.stringify(options.body) } : {}),
    });
    if (res.status === 204) return undefined as T;
    const text = await res.text();
    const parsed: unknown = text ? JSON.parse(text) : undefined;
    if (!res.ok) {
      const body =
        parsed && typeof parsed === 'object' && 'error' in parsed
          ? (parsed as ApiErrorBody)
          : {
              error: {
                code: 'http_error',
                message: text.slice(0, 200),
                requestId: res.headers.get('x-request-id') ?? '',
              },
            };
      throw new OpenClawError(res.status, body);
    }
    return parsed as T;
  }

  // Admin (admin key)
  createCustomer(body: CreateCustomerRequest) {
    return this.#request<{ customer: Customer; apiKey: string; webhookSecret: string }>(
      'POST',
      '/admin/customers',
      {
        body,
      },
    );
  }
  listCustomers(query: Page & { plan?: Customer['plan']; status?: Customer['status'] } = {}) {
    return this.#request<{ customers: Customer[]; nextCursor: string | null }>('GET', '/admin/customers', {
      query,
    });
  }
  getCustomer(id: string) {
    return this.#request<{ customer: Customer }>('GET', `/admin/customers/${encodeURIComponent(id)}`);
  }
  updateCustomer(id: string, body: UpdateCustomerRequest) {
    return this.#request<{ customer: Customer }>('PATCH', `/admin/customers/${encodeURIComponent(id)}`, {
      body,
    });
  }
  deleteCustomer(id: string) {
    return this.#request<void>('DELETE', `/admin/customers/${encodeURIComponent(id)}`);
  }
  rotateCustomerKey(id: string) {
    return this.#request<{ customer: Customer; apiKey: string }>(
      'POST',
      `/admin/customers/${encodeURIComponent(id)}/rotate-key`,
    );
  }
  listAdminAuditLog(query: Page & { customerId?: string; action?: string } = {}) {
    return this.#request<{ entries: AuditEntry[]; nextCursor: string | null }>('GET', '/admin/audit-log', {
      query,
    });
  }

  // Customer (customer key)
  /**
   * With `idempotencyKey` (a UUID, say), calling it again with the same key and body after a timeout
   * or a 503 answers the agent the first call created instead of creating another (24 hours).
   */
  createAgent(body: CreateAgentRequest, options: { idempotencyKey?: string } = {}) {
    const headers = options.idempotencyKey ? { 'idempotency-key': options.idempotencyKey } : undefined;
    return this.#request<{ agent: Agent }>('POST', '/agents', { body, ...(headers ? { headers } : {}) });
  }
  listAgents(query: Page & { status?: Agent['status'] } = {}) {
    return this.#request<{ agents: Agent[]; nextCursor: string | null }>('GET', '/agents', { query });
  }
  getAgent(id: string) {
    return this.#request<{ agent: Agent }>('GET', `/agents/${encodeURIComponent(id)}`);
  }
  updateAgent(id: string, body: UpdateAgentRequest) {
    return this.#request<{ agent: Agent }>('PATCH', `/agents/${encodeURIComponent(id)}`, { body });
  }
  deleteAgent(id: string) {
    return this.#request<void>('DELETE', `/agents/${encodeURIComponent(id)}`);
  }
  setTelegramCredentials(agentId: string, body: { botToken: string; botUsername?: string }) {
    return this.#request<{ credential: CredentialStatus }>(
      'PUT',
      `/agents/${encodeURIComponent(agentId)}/credentials/telegram`,
      {
        body,
      },
    );
  }
  setClaudeCredentials(agentId: string, body: { apiKey: string }) {
    return this.#request<{ credential: CredentialStatus }>(
      'PUT',
      `/agents/${encodeURIComponent(agentId)}/credentials/claude`,
      {
        body,
      },
    );
  }
  deleteTelegramCredentials(agentId: string) {
    return this.#request<void>('DELETE', `/agents/${encodeURIComponent(agentId)}/credentials/telegram`);
  }
  deleteClaudeCredentials(agentId: string) {
    return this.#request<void>('DELETE', `/agents/${encodeURIComponent(agentId)}/credentials/claude`);
  }
  getCredentials(agentId: string) {
    return this.#request<{ credentials: { telegram: CredentialStatus; claude: CredentialStatus } }>(
      'GET',
      `/agents/${encodeURIComponent(agentId)}/credentials`,
    );
  }
  validateCredentials(agentId: string) {
    return this.#request<
      | { credentials: { telegram: CredentialStatus; claude: CredentialStatus } }
      | { status: 'pending'; poll: string }
    >('POST', `/agents/${encodeURIComponent(agentId)}/credentials/validate`);
  }
  startAgent(agentId: string) {
    return this.#request<{ agent: Agent }>('POST', `/agents/${encodeURIComponent(agentId)}/start`);
  }
  stopAgent(agentId: string) {
    return this.#request<{ agent: Agent }>('POST', `/agents/${encodeURIComponent(agentId)}/stop`);
  }
  getAgentStatus(agentId: string) {
    return this.#request<{ status: AgentStatus }>('GET', `/agents/${encodeURIComponent(agentId)}/status`);
  }
  listPairingRequests(agentId: string, query: Page & { status?: PairingRequest['status'] } = {}) {
    return this.#request<{ pairingRequests: PairingRequest[]; nextCursor: string | null }>(
      'GET',
      `/agents/${encodeURIComponent(agentId)}/pairing-requests`,
      { query },
    );
  }
  /** Lets the Telegram user who received `code` talk to the agent (their id joins telegramAllowFrom). */
  approvePairingRequest(agentId: string, code: string) {
    return this.#request<{ pairingRequest: PairingRequest }>(
      'POST',
      `/agents/${encodeURIComponent(agentId)}/pairing-requests/${encodeURIComponent(code)}/approve`,
    );
  }
  rejectPairingRequest(agentId: string, code: string) {
    return this.#request<{ pairingRequest: PairingRequest }>(
      'POST',
      `/agents/${encodeURIComponent(agentId)}/pairing-requests/${encodeURIComponent(code)}/reject`,
    );
  }
  listAuditLog(query: Page & { action?: string } = {}) {
    return this.#request<{ entries: AuditEntry[]; nextCursor: string | null }>('GET', '/audit-log', {
      query,
    });
  }
}

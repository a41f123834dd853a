import type { InngestClient } from './client';
import { customerEventEmitted } from './events';

export interface AgentEventInput {
  customerId: string;
  agentId: string;
  type: 'agent.started' | 'agent.stopped' | 'agent.error';
  data: Record<string, unknown>;
  /** Stable per occurrence (derived from the triggering event), so a retried step sends it once. */
  eventId: string;
}

/** Hands a customer-facing agent event to the webhook delivery function. */
export async function emitAgentEvent(inngest: InngestClient, input: AgentEventInput): Promise<void> {
  await inngest.send(
    customerEventEmitted.create(
      {
        customerId: input.customerId,
        agentId: input.agentId,
        type: input.type,
        data: input.data,
        eventId: input.eventId,
        occurredAt: new Date().toISOString(),
      },
      { id: `customer-event-${input.eventId}` },
    ),
  );
}

import type { InngestFunction } from 'inngest';
import type { Services } from '../lib/services';
import type { InngestClient } from './client';
import { deliverWebhook } from './deliver-webhook';
import { expirePairingRequestsFunction } from './expire-pairing-requests';
import { notifyPairingApprovedFunction } from './notify-pairing-approved';
import { purgeIdempotencyKeysFunction } from './purge-idempotency-keys';
import { reconcileWebhooks } from './reconcile-webhooks';
import { releaseCancelledReplyFunction } from './release-cancelled-reply';
import { replyToMessage } from './reply-to-message';
import { revalidateCredentials } from './revalidate-credentials';
import { startAgent } from './start-agent';
import { stopAgent } from './stop-agent';
import { sweepTelegramOutboxFunction } from './sweep-telegram-outbox';
import { sweepWebhookOutboxFunction } from './sweep-webhook-outbox';
import { validateCredentials } from './validate-credentials';

export interface FunctionDeps {
  inngest: InngestClient;
  services: Services;
}

/** Every Inngest function of the platform. Each lives in its own file, named as its id. */
export function createFunctions(deps: FunctionDeps): InngestFunction.Any[] {
  const reply = replyToMessage(deps);
  return [
    deliverWebhook(deps),
    validateCredentials(deps),
    startAgent(deps),
    stopAgent(deps),
    reconcileWebhooks(deps),
    revalidateCredentials(deps),
    reply,
    releaseCancelledReplyFunction(deps, reply.id(deps.inngest.id)),
    sweepTelegramOutboxFunction(deps),
    sweepWebhookOutboxFunction(deps),
    notifyPairingApprovedFunction(deps),
    expirePairingRequestsFunction(deps),
    purgeIdempotencyKeysFunction(deps),
  ];
}

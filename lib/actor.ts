/** Who made a request; the audit log and every tenant-scoped query read it. */
export type Actor =
  | { type: 'admin' }
  | { type: 'customer'; customerId: string; keyId: string; keyPrefix: string }
  | { type: 'system' };

/** Where a change came from, recorded with it in the audit log. */
export interface RequestContext {
  actor: Actor;
  requestId: string | undefined;
  ip: string | undefined;
}

/** The limits each plan includes; an admin may override either per customer. */
export const PLAN_LIMITS = {
  free: { apiRequestsPerHour: 100, messagesPerDay: 100 },
  pro: { apiRequestsPerHour: 1_000, messagesPerDay: 1_000 },
  enterprise: { apiRequestsPerHour: 10_000, messagesPerDay: 10_000 },
} as const;

export type Plan = keyof typeof PLAN_LIMITS;

export interface CustomerLimits {
  apiRequestsPerHour: number;
  messagesPerDay: number;
}

export function limitsFor(customer: {
  plan: Plan;
  apiRequestsPerHour: number | null;
  messagesPerDay: number | null;
}): CustomerLimits {
  const plan = PLAN_LIMITS[customer.plan];
  return {
    apiRequestsPerHour: customer.apiRequestsPerHour ?? plan.apiRequestsPerHour,
    messagesPerDay: customer.messagesPerDay ?? plan.messagesPerDay,
  };
}

import type { AgentErrorNotice } from './types';

const CODED = /^([a-z][a-z0-9_]{2,63}): ([\s\S]+)$/;

/**
 * The customer's `agent.error` for a reply run that failed for good. Errors the pipeline raises on
 * purpose carry their code in front (`claude_credential_invalid: ...`); anything else (retries spent
 * on a timeout, a 5xx...) is `reply_failed`.
 */
export function replyFailureNotice(errorMessage: string): AgentErrorNotice {
  const coded = CODED.exec(errorMessage);
  if (coded?.[1] && coded[2]) return { code: coded[1], message: coded[2].slice(0, 500) };
  return {
    code: 'reply_failed',
    message: `A message could not be answered after every retry: ${errorMessage}`.slice(0, 500),
  };
}

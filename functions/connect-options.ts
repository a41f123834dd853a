import { WebSocket as NodeWebSocket } from 'ws';

/**
 * inngest's connect() opens its gateway socket with the global `WebSocket`, which Node has only
 * from 22 on (20 hides it behind --experimental-websocket). Where it is missing, this installs the
 * `ws` package's (the same one Neon's driver gets) and keeps the connection on this thread: the
 * SDK's default worker thread has globals of its own, so it would still find none.
 */
export function connectOptions(): { isolateExecution?: false } {
  if (typeof globalThis.WebSocket === 'function') return {};
  globalThis.WebSocket = NodeWebSocket as unknown as typeof globalThis.WebSocket;
  return { isolateExecution: false };
}

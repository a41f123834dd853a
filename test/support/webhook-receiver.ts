import crypto from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type Server, type ServerResponse } from 'node:http';
import { Webhook } from 'standardwebhooks';
import { listenOnLoopback } from './loopback';

/**
 * A customer's webhook endpoint: a real HTTP server on 127.0.0.1 that records every request and
 * answers from a script. Signatures are checked the two ways a customer would: with the seed's
 * documented snippet (copied below as printed) and with the `standardwebhooks` package.
 */

/** The seed's snippet, verbatim in behaviour (it throws when the lengths differ). */
function seedVerifyWebhook(payload: string, signature: string, secret: string): boolean {
  const expected = crypto.createHmac('sha256', secret).update(payload).digest('hex');
  return crypto.timingSafeEqual(Buffer.from(signature), Buffer.from(expected));
}

export interface ScriptedResponse {
  status: number;
  headers?: Record<string, string>;
  body?: string;
  /** Wait this long before answering (timeouts). */
  delayMs?: number;
  /** Stream this many bytes of body (a huge response), in 64 KiB chunks. */
  bodyBytes?: number;
}

export interface ReceivedRequest {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
  /** The seed snippet against `X-OpenClaw-Signature`, with `secret`. */
  seedVerifies(secret: string): boolean;
  /** `standardwebhooks`' `Webhook.verify` against the `webhook-*` headers, with `secret`. */
  standardVerifies(secret: string): boolean;
}

export interface WebhookReceiver {
  url: string;
  port: number;
  requests: ReceivedRequest[];
  /** Responses in order; the last one repeats. */
  script(responses: ScriptedResponse[]): void;
  /** Bytes of streamed bodies actually written before the client went away. */
  streamedBytes(): number;
  close(): Promise<void>;
}

function single(value: string | string[] | undefined): string {
  return Array.isArray(value) ? (value[0] ?? '') : (value ?? '');
}

function record(method: string, path: string, headers: IncomingHttpHeaders, body: string): ReceivedRequest {
  return {
    method,
    path,
    headers,
    body,
    seedVerifies(secret) {
      try {
        return seedVerifyWebhook(body, single(headers['x-openclaw-signature']), secret);
      } catch {
        return false;
      }
    },
    standardVerifies(secret) {
      try {
        new Webhook(secret).verify(body, {
          'webhook-id': single(headers['webhook-id']),
          'webhook-timestamp': single(headers['webhook-timestamp']),
          'webhook-signature': single(headers['webhook-signature']),
        });
        return true;
      } catch {
        return false;
      }
    },
  };
}

async function streamBody(res: ServerResponse, total: number, count: (n: number) => void): Promise<void> {
  const chunk = Buffer.alloc(64 * 1024, 'x');
  let sent = 0;
  for (let guard = 0; sent < total && guard < 100_000; guard += 1) {
    if (res.destroyed) return;
    const piece = chunk.subarray(0, Math.min(chunk.length, total - sent));
    sent += piece.length;
    count(piece.length);
    if (!res.write(piece)) {
      await new Promise<void>((resolve) => {
        // Both listeners go once either fires: a long body waits for drain many times.
        const done = () => {
          res.off('drain', done);
          res.off('close', done);
          resolve();
        };
        res.on('drain', done);
        res.on('close', done);
      });
    }
  }
  res.end();
}

export async function startWebhookReceiver(
  initial: ScriptedResponse[] = [{ status: 200 }],
): Promise<WebhookReceiver> {
  let responses = initial;
  let served = 0;
  let streamed = 0;
  const requests: ReceivedRequest[] = [];
  const timers = new Set<NodeJS.Timeout>();

  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      requests.push(
        record(req.method ?? '', req.url ?? '', req.headers, Buffer.concat(chunks).toString('utf8')),
      );
      const step = responses[Math.min(served, responses.length - 1)] ?? { status: 200 };
      served += 1;
      const answer = () => {
        if (res.destroyed) return;
        res.writeHead(step.status, { 'content-type': 'text/plain', ...step.headers });
        if (step.bodyBytes !== undefined) {
          void streamBody(res, step.bodyBytes, (n) => {
            streamed += n;
          });
        } else {
          res.end(step.body ?? '');
        }
      };
      if (step.delayMs) {
        const timer = setTimeout(() => {
          timers.delete(timer);
          answer();
        }, step.delayMs);
        timers.add(timer);
      } else {
        answer();
      }
    });
  });

  const loopback = await listenOnLoopback(server);
  return {
    url: `${loopback.origin}/hooks`,
    port: loopback.port,
    requests,
    script(next) {
      responses = next;
      served = 0;
    },
    streamedBytes: () => streamed,
    async close() {
      for (const timer of timers) clearTimeout(timer);
      await loopback.close();
    },
  };
}

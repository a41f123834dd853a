import { randomUUID } from 'node:crypto';
import { type ServerResponse, STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import { AppError, type ErrorCode, errorBody } from '../lib/errors';
import type { Logger } from '../lib/logger';

/** What a request Node's HTTP parser refused is told, by the parser's (or Node's) error code. */
function refusal(code: string | undefined): AppError {
  const refused = (errorCode: ErrorCode, message: string) => new AppError(errorCode, message);
  switch (code) {
    case 'HPE_INVALID_METHOD':
      return refused(
        'method_not_implemented',
        'Unknown HTTP method: the API answers GET, HEAD, POST, PUT, PATCH, DELETE and OPTIONS',
      );
    case 'HPE_HEADER_OVERFLOW':
      return refused('headers_too_large', 'The request headers are too large (16 KB in all at most)');
    case 'ERR_HTTP_REQUEST_TIMEOUT':
    case 'ERR_HTTP_REQUEST_HEADERS_TIMEOUT':
      return refused('request_timeout', 'The request did not arrive in time; send it again');
    default:
      return refused('bad_request', 'Malformed HTTP request: it could not be read as HTTP/1.1');
  }
}

/** An HTTP/1.1 server (what `serve()` of @hono/node-server starts), as far as this needs it. */
interface ClientErrorSource {
  on(event: 'clientError', listener: (error: NodeJS.ErrnoException, socket: Duplex) => void): unknown;
}

/**
 * Requests the HTTP parser refuses (an unknown method, headers too large, a malformed request line)
 * never reach a route; Node would close them with a bare status line. They get the API's one error
 * shape instead, with an `X-Request-Id` found in the log, and the connection is closed, as Node does.
 */
export function answerClientErrors(server: ClientErrorSource, logger: Logger): void {
  server.on('clientError', (error: NodeJS.ErrnoException, socket: Duplex) => {
    const response = (socket as Duplex & { _httpMessage?: ServerResponse })._httpMessage;
    // A reset connection, or one whose answer has begun, can only be let go.
    if (error.code === 'ECONNRESET' || !socket.writable || response?.headersSent) {
      socket.destroy();
      return;
    }
    const refused = refusal(error.code);
    const requestId = randomUUID();
    // Never the raw bytes (`error.rawPacket`): they may hold a key.
    logger.debug({ requestId, code: error.code, status: refused.status }, 'malformed request refused');
    const body = JSON.stringify(errorBody(refused, requestId));
    // Destroyed once written, as Node's own answer is: ended only, a timed-out request's socket would stay
    // readable, and the request, finished later, would still be served.
    const answer =
      `HTTP/1.1 ${refused.status} ${STATUS_CODES[refused.status] ?? 'Bad Request'}\r\n` +
      'Content-Type: application/json\r\n' +
      `Content-Length: ${Buffer.byteLength(body)}\r\n` +
      `X-Request-Id: ${requestId}\r\n` +
      'Connection: close\r\n\r\n' +
      body;
    socket.end(answer, () => socket.destroy());
  });
}

import { connect } from 'node:net';

/** Sends raw bytes and reads the whole answer, until the server closes (or a second passes). */
export function rawRequest(port: number, bytes: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let answer = '';
    const socket = connect(port, '127.0.0.1', () => socket.write(bytes));
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      answer += chunk;
    });
    socket.on('error', reject);
    socket.on('close', () => resolve(answer));
    socket.setTimeout(1_000, () => socket.destroy());
  });
}

/** A raw answer's status line, headers (names lower-cased) and JSON error body. */
export function parseRawAnswer(answer: string) {
  const [head = '', body = ''] = answer.split('\r\n\r\n');
  const [statusLine = '', ...headerLines] = head.split('\r\n');
  const headers = new Map(
    headerLines.map((line) => [
      line.slice(0, line.indexOf(':')).toLowerCase(),
      line.slice(line.indexOf(':') + 1).trim(),
    ]),
  );
  return {
    statusLine,
    headers,
    body: JSON.parse(body) as { error: { code: string; message: string; requestId: string } },
  };
}

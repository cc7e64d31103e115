/**
 * HTTP pieces both servers share: answers to requests that never reach a route (malformed HTTP, oversized
 * headers, a client too slow to send its request), written in the server's own error shape instead of Node's
 * empty 400 or fastify's default body.
 */
import { STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';

/** Status and message for a Node `clientError`. */
export function clientErrorStatus(err: NodeJS.ErrnoException): { status: number; message: string } {
  switch (err.code) {
    case 'HPE_HEADER_OVERFLOW':
      return { status: 431, message: 'request headers: larger than the server accepts (Node max header size)' };
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return { status: 408, message: 'request: not received in time' };
    default:
      return { status: 400, message: `request: malformed HTTP (${err.code ?? err.message})` };
  }
}

/**
 * A fastify `clientErrorHandler` that answers in the server's error shape: `body(status, message)` gives the JSON
 * object sent.
 */
export function clientErrorHandler(
  body: (status: number, message: string) => unknown,
): (err: NodeJS.ErrnoException, socket: Duplex) => void {
  return (err, socket) => {
    // A reset connection or a destroyed socket has nobody left to answer.
    if (err.code === 'ECONNRESET' || socket.destroyed) return;
    const { status, message } = clientErrorStatus(err);
    const text = JSON.stringify(body(status, message));
    if (socket.writable)
      socket.write(
        `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Length: ${Buffer.byteLength(text)}\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n${text}`,
      );
    socket.destroy();
  };
}

// A loopback HTTP server for tests of the bounded bundle fetches.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** A loopback HTTP server whose answers the test sets per path; it counts the requests it gets. */
export interface TestHttp {
  readonly origin: string;
  readonly hits: Map<string, number>;
  route(path: string, handler: (req: IncomingMessage, res: ServerResponse) => void): void;
  close(): Promise<void>;
}

export async function startHttp(): Promise<TestHttp> {
  const routes = new Map<string, (req: IncomingMessage, res: ServerResponse) => void>();
  const hits = new Map<string, number>();
  const server = createServer((req, res) => {
    const path = req.url ?? '/';
    hits.set(path, (hits.get(path) ?? 0) + 1);
    const h = routes.get(path);
    if (h === undefined) res.writeHead(404).end();
    else h(req, res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    origin: `http://127.0.0.1:${port}`,
    hits,
    route: (path, handler) => {
      routes.set(path, handler);
    },
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => {
          resolve();
        });
      }),
  };
}

/** Headers at once, then one byte every 20 ms for ever: only a deadline on the whole exchange ends it. */
export function trickle(_req: IncomingMessage, res: ServerResponse): void {
  res.writeHead(200, { 'content-type': 'application/x-pem-file' });
  const t = setInterval(() => res.write('-'), 20);
  res.on('close', () => {
    clearInterval(t);
  });
}

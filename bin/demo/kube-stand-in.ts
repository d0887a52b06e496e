// A stand-in for the two clusters' Kubernetes API, as far as `lanyard rotate status --kubeconfig` reads
// it: GET /<cluster>/api/v1/pods over https with a bearer token answers the PodList in
// <dir>/<cluster>/pods.json, which the story rewrites whenever a pod starts or stops. One JSON line
// {"event":"listening"} once it listens.
import { readFileSync } from 'node:fs';
import { createServer } from 'node:https';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    listen: { type: 'string' },
    cert: { type: 'string' },
    key: { type: 'string' },
    dir: { type: 'string' },
    token: { type: 'string' },
  },
});
const need = (v: string | undefined, name: string): string => {
  if (v === undefined) throw new Error(`--${name} is required`);
  return v;
};
const listen = need(values.listen, 'listen');
const dir = need(values.dir, 'dir');
const token = need(values.token, 'token');

const server = createServer(
  { cert: readFileSync(need(values.cert, 'cert')), key: readFileSync(need(values.key, 'key')) },
  (req, res) => {
    const m = /^\/(east|west)\/api\/v1\/pods(\?|$)/.exec(req.url ?? '');
    if (req.headers.authorization !== `Bearer ${token}`) {
      res.writeHead(401).end();
      return;
    }
    if (req.method !== 'GET' || m === null) {
      res.writeHead(404).end();
      return;
    }
    try {
      const body = readFileSync(join(dir, m[1] as string, 'pods.json'));
      res.writeHead(200, { 'content-type': 'application/json' }).end(body);
    } catch {
      res.writeHead(503).end();
    }
  },
);
const i = listen.lastIndexOf(':');
server.listen(Number(listen.slice(i + 1)), listen.slice(0, i), () => {
  process.stdout.write(`${JSON.stringify({ event: 'listening' })}\n`);
});
process.on('SIGTERM', () => {
  server.close();
  process.exit(0);
});

// `npm run bench` options: the usage text and the parsed, validated settings.
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';

export const SCENARIOS = ['cold', 'renew', 'storm', 'fleet'] as const;
export type Scenario = (typeof SCENARIOS)[number];

export const USAGE = `usage: npm run bench -- [options]

Starts a throw-away anchor, issuer and token-signing key, runs \`lanyard serve\` (JWT authentication),
and drives Certify from this process over several HTTP/2 connections.

  --scenario LIST          cold, renew, storm, fleet (comma-separated) or all (default); renew without cold
                           first certifies the workloads once, untimed
  --workloads N            workloads of the cold and renew scenarios (default 2000)
  --storm N                distinct workloads of the storm scenario (default 10000)
  --stages on|off          after the scenarios, a shorter pass against a new server under node --cpu-prof
                           (every server process), cold then renew, for the per-stage CPU table (default on;
                           runs when cold or renew is among the scenarios)
  --stage-warmup N         untimed calls before that pass's cold window (default 2000)
  --stage-workloads N      workloads of that pass's cold and renew windows (default 2000)
  --fleet-sizes LIST       fleet scenario: for each size (comma-separated) a new server and a storm of that
                           many distinct new workloads over new connections (default 10000,50000,100000)
  --fleet N                fleet size whose storm is followed by renewals of all its workloads over new
                           connections, about half of them reaching another worker; 0: none (default
                           50000, added to --fleet-sizes if missing)
  --fleet-time-limit S     no call starts after S seconds of a fleet storm or renewal run (default 300)
  --concurrency N          calls in flight in cold and renew, the stage pass and fleet renewals (default 256)
  --connections N          HTTP/2 connections (grpc-js channels) per server and run (default 4)
  --server-max-in-flight N the server's --max-in-flight (default 4096)
  --storm-concurrency N    calls in flight in storm and the fleet storms (default: the server's --max-in-flight)
  --warmup N               untimed Certify calls with other workloads before the first scenario (default 4000)
  --time-limit S           no call starts after S seconds of cold, renew, storm or a stage-pass window
                           (default 60)
  --deadline S             gRPC deadline of each call, seconds (default 30)
  --log-level L            the server's --log-level (default info, as deployed)
  --openssl-seconds S      openssl speed -seconds S ecdsap256; 0 skips it (default 2)
  --lanyard FILE           the lanyard entry to serve (default: the build next to this bench), e.g. another
                           checkout's dist/bin/lanyard.js, to compare two builds under the same load
  --serve-arg ARG          one more argument for \`lanyard serve\` (repeatable), e.g. --serve-arg=--workers=1
  --cpu-prof DIR           run the scenarios' server under node --cpu-prof and summarise the profiles per
                           scenario (cold, renew, storm)
  --out FILE               JSON results (default bench-results.json)
  --keep                   keep the temporary directory (keys, server logs, the stage pass's profiles)
  --help                   this text`;

export interface BenchOptions {
  scenarios: Scenario[];
  workloads: number;
  storm: number;
  concurrency: number;
  connections: number;
  serverMaxInFlight: number;
  stormConcurrency: number;
  warmup: number;
  stages: boolean;
  stageWarmup: number;
  stageWorkloads: number;
  fleetSizes: number[];
  fleet: number;
  fleetTimeLimitS: number;
  timeLimitS: number;
  deadlineS: number;
  logLevel: string;
  opensslSeconds: number;
  cpuProfDir: string | undefined;
  lanyard: string | undefined;
  serveArgs: string[];
  out: string;
  keep: boolean;
}

/** The settings, or undefined for --help; throws on a flag it refuses. */
export function parseOptions(argv: string[]): BenchOptions | undefined {
  const { values } = parseArgs({
    args: argv,
    options: {
      scenario: { type: 'string', default: 'all' },
      workloads: { type: 'string', default: '2000' },
      storm: { type: 'string', default: '10000' },
      concurrency: { type: 'string', default: '256' },
      connections: { type: 'string', default: '4' },
      'server-max-in-flight': { type: 'string', default: '4096' },
      'storm-concurrency': { type: 'string' },
      warmup: { type: 'string', default: '4000' },
      stages: { type: 'string', default: 'on' },
      'stage-warmup': { type: 'string', default: '2000' },
      'stage-workloads': { type: 'string', default: '2000' },
      'fleet-sizes': { type: 'string', default: '10000,50000,100000' },
      fleet: { type: 'string', default: '50000' },
      'fleet-time-limit': { type: 'string', default: '300' },
      'time-limit': { type: 'string', default: '60' },
      deadline: { type: 'string', default: '30' },
      'log-level': { type: 'string', default: 'info' },
      'openssl-seconds': { type: 'string', default: '2' },
      'cpu-prof': { type: 'string' },
      lanyard: { type: 'string' },
      'serve-arg': { type: 'string', multiple: true, default: [] },
      out: { type: 'string', default: 'bench-results.json' },
      keep: { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
    strict: true,
  });
  if (values.help) return undefined;
  const int = (name: string, s: string, min: number): number => {
    const n = Number(s);
    if (!Number.isInteger(n) || n < min) throw new Error(`--${name} must be an integer ≥ ${min}`);
    return n;
  };
  const scenarios =
    values.scenario === 'all' ? [...SCENARIOS] : values.scenario.split(',').map((x) => x.trim());
  for (const x of scenarios)
    if (!SCENARIOS.includes(x as Scenario))
      throw new Error(`--scenario takes ${SCENARIOS.join(', ')} (comma-separated) or all, not ${x}`);
  const serverMaxInFlight = int('server-max-in-flight', values['server-max-in-flight'], 1);
  if (values.stages !== 'on' && values.stages !== 'off') throw new Error('--stages takes on or off');
  const fleet = int('fleet', values.fleet, 0);
  const fleetSizes = values['fleet-sizes'].split(',').map((x) => int('fleet-sizes', x.trim(), 1));
  if (fleet > 0 && !fleetSizes.includes(fleet)) fleetSizes.push(fleet);
  return {
    // always in the order cold, renew, storm, fleet: renew resends what cold certified
    scenarios: SCENARIOS.filter((x) => scenarios.includes(x)),
    workloads: int('workloads', values.workloads, 1),
    storm: int('storm', values.storm, 1),
    concurrency: int('concurrency', values.concurrency, 1),
    connections: int('connections', values.connections, 1),
    serverMaxInFlight,
    stormConcurrency: int('storm-concurrency', values['storm-concurrency'] ?? String(serverMaxInFlight), 1),
    warmup: int('warmup', values.warmup, 0),
    stages: values.stages === 'on',
    stageWarmup: int('stage-warmup', values['stage-warmup'], 0),
    stageWorkloads: int('stage-workloads', values['stage-workloads'], 1),
    fleetSizes: [...new Set(fleetSizes)].sort((a, b) => a - b),
    fleet,
    fleetTimeLimitS: int('fleet-time-limit', values['fleet-time-limit'], 1),
    timeLimitS: int('time-limit', values['time-limit'], 1),
    deadlineS: int('deadline', values.deadline, 1),
    logLevel: values['log-level'],
    opensslSeconds: int('openssl-seconds', values['openssl-seconds'], 0),
    cpuProfDir: values['cpu-prof'] !== undefined ? resolve(values['cpu-prof']) : undefined,
    lanyard: values.lanyard !== undefined ? resolve(values.lanyard) : undefined,
    serveArgs: values['serve-arg'],
    out: resolve(values.out),
    keep: values.keep,
  };
}

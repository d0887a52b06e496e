// The load generator's gRPC side: several channels (one HTTP/2 connection each) and a loop that keeps
// a fixed number of Certify calls in flight until a count or a time limit is reached.
import * as grpc from '@grpc/grpc-js';
import { systemClock } from '../../ca/index.js';
import {
  CERTIFY_METHOD,
  loadIdentityService,
  type CertifyRequestMessage,
  type CertifyResponseMessage,
} from '../../issuer/grpc/index.js';
import type { Workload } from './workloads.js';

export interface CertifyChannel {
  /**
   * One Certify call with a request encoded beforehand (encodeRequest); the answer comes back
   * undecoded, so that the load generator spends its CPU on calls, not on protobuf.
   */
  certify(
    request: Buffer,
    deadlineMs: number,
    cb: (err: grpc.ServiceError | null, res?: Buffer) => void,
  ): void;
  close(): void;
}

function certifyMethod(): grpc.MethodDefinition<CertifyRequestMessage, CertifyResponseMessage> {
  const def = loadIdentityService().Certify;
  if (def === undefined) throw new Error('identity.proto has no Certify method');
  return def as grpc.MethodDefinition<CertifyRequestMessage, CertifyResponseMessage>;
}

/** A workload's CertifyRequest, protobuf-encoded. */
export function requestEncoder(): (w: Workload) => Buffer {
  const def = certifyMethod();
  return (w) =>
    def.requestSerialize({
      identity: w.identity,
      token: Buffer.from(w.token.buffer, w.token.byteOffset, w.token.byteLength),
      certificate_signing_request: Buffer.from(w.csr.buffer, w.csr.byteOffset, w.csr.byteLength),
    });
}

export function responseDecoder(): (b: Buffer) => CertifyResponseMessage {
  return certifyMethod().responseDeserialize;
}

/**
 * Whether an encoded CertifyResponse has a non-empty leaf_certificate: proto3 leaves empty fields
 * out, so the message must start with field 1, wire type 2 (0x0a) and a non-zero length.
 */
export function hasLeaf(res: Buffer): boolean {
  return res.length > 2 && res[0] === 0x0a && res[1] !== 0x00;
}

/**
 * `n` grpc-js clients of `target`, each on its own HTTP/2 connection: grpc-js shares one subchannel
 * (connection) per target and channel arguments unless the channel has a local subchannel pool.
 */
export async function openChannels(target: string, n: number, timeoutMs = 10_000): Promise<CertifyChannel[]> {
  const out: CertifyChannel[] = [];
  const raw = (b: Buffer): Buffer => b;
  for (let i = 0; i < n; i++) {
    const client = new grpc.Client(target, grpc.credentials.createInsecure(), {
      'grpc.use_local_subchannel_pool': 1,
      'grpc.primary_user_agent': `lanyard-bench/${i}`,
      'grpc.max_receive_message_length': 1024 * 1024,
    });
    await new Promise<void>((resolve, reject) => {
      client.waitForReady(new Date(systemClock.now().getTime() + timeoutMs), (err) => {
        if (err) reject(err);
        else resolve();
      });
    });
    out.push({
      certify(request, deadlineMs, cb) {
        client.makeUnaryRequest<Buffer, Buffer>(
          CERTIFY_METHOD,
          raw,
          raw,
          request,
          new grpc.Metadata(),
          { deadline: new Date(systemClock.now().getTime() + deadlineMs) },
          cb,
        );
      },
      close: () => {
        client.close();
      },
    });
  }
  return out;
}

export interface LoadOptions {
  readonly channels: readonly CertifyChannel[];
  readonly workloads: readonly Workload[];
  /** calls kept in flight (spread round-robin over the channels) */
  readonly concurrency: number;
  /** no call is started after this long, ms; calls in flight are still awaited */
  readonly timeLimitMs: number;
  /** gRPC deadline of each call, ms */
  readonly deadlineMs: number;
  /** which channel the i-th workload's call uses (default: i modulo the channel count) */
  readonly channelOf?: (i: number) => number;
}

export interface LoadResult {
  readonly requested: number;
  /** calls started (fewer than requested when the time limit struck) */
  readonly sent: number;
  readonly ok: number;
  /** failed calls by gRPC status name */
  readonly errors: Readonly<Record<string, number>>;
  /** first error message seen per status name */
  readonly errorSamples: Readonly<Record<string, string>>;
  /** first call started → last call answered, ms */
  readonly wallMs: number;
  /** latency of every answered call (successful or not), ms, ascending */
  readonly latenciesMs: Float64Array;
  /** latency of the successful calls only, ms, ascending */
  readonly okLatenciesMs: Float64Array;
  /** a few responses, kept to check outside the timed loop */
  readonly samples: readonly { workload: Workload; response: CertifyResponseMessage }[];
  readonly timedOut: boolean;
  /** the load generator's own CPU during the run, µs (user + system, all its threads) */
  readonly clientCpuUs: number;
}

/** Sends one Certify per workload, `concurrency` at a time, and records what came back. */
export function runLoad(o: LoadOptions): Promise<LoadResult> {
  const total = o.workloads.length;
  const latencies = new Float64Array(total);
  const okLatencies = new Float64Array(total);
  const errors: Record<string, number> = {};
  const errorSamples: Record<string, string> = {};
  const samples: { workload: Workload; response: CertifyResponseMessage }[] = [];
  const rawSamples: { workload: Workload; response: Buffer }[] = [];
  const channelOf = o.channelOf ?? ((i: number): number => i);
  const encode = requestEncoder();
  const requests = o.workloads.map(encode);
  let next = 0;
  let answered = 0;
  let ok = 0;
  let inFlight = 0;
  let timedOut = false;
  const cpuStart = process.cpuUsage();
  const start = performance.now();
  let last = start;

  return new Promise((resolve) => {
    const finish = (): void => {
      const cpu = process.cpuUsage(cpuStart);
      const decode = responseDecoder();
      for (const r of rawSamples) samples.push({ workload: r.workload, response: decode(r.response) });
      resolve({
        requested: total,
        sent: next,
        ok,
        errors,
        errorSamples,
        wallMs: last - start,
        latenciesMs: latencies.slice(0, answered).sort(),
        okLatenciesMs: okLatencies.slice(0, ok).sort(),
        samples,
        timedOut,
        clientCpuUs: cpu.user + cpu.system,
      });
    };
    const launch = (): void => {
      while (inFlight < o.concurrency && next < total) {
        if (performance.now() - start > o.timeLimitMs) {
          timedOut = true;
          break;
        }
        const i = next++;
        const channel = o.channels[channelOf(i) % o.channels.length] as CertifyChannel;
        const t0 = performance.now();
        inFlight++;
        channel.certify(requests[i] as Buffer, o.deadlineMs, (err, res) => {
          const t1 = performance.now();
          last = t1;
          inFlight--;
          latencies[answered++] = t1 - t0;
          if (err === null && res !== undefined && hasLeaf(res)) {
            okLatencies[ok++] = t1 - t0;
            if (rawSamples.length < 8)
              rawSamples.push({ workload: o.workloads[i] as Workload, response: res });
          } else {
            const name = err === null ? 'EMPTY_RESPONSE' : (grpc.status[err.code] ?? String(err.code));
            errors[name] = (errors[name] ?? 0) + 1;
            errorSamples[name] ??= err?.details ?? 'a response without a leaf certificate';
          }
          if (inFlight === 0 && (next >= total || timedOut)) finish();
          else launch();
        });
      }
      if (inFlight === 0) finish();
    };
    launch();
  });
}

/** The value at quantile q (0..1) of an ascending array, nearest rank; NaN when empty. */
export function quantile(sorted: Float64Array, q: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[rank] as number;
}

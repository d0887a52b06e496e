import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { systemClock, type Clock } from '../../ca/index.js';
import type { ErrorCode } from '../errors.js';
import type { IssuerMetrics } from '../metrics.js';
import { createCallLog, type CallLog } from './call-log.js';
import { createRejectionLog, type RejectionLog } from './rejection-log.js';
import { CREATE_CERTIFICATE_METHOD } from './istio-server.js';
import { CERTIFY_METHOD } from './server.js';
import { statusName } from './status.js';

/**
 * The code logged for a call that ended before the handler saw it, by the status it ended with
 * (oversized and undecodable messages, a deadline or cancellation, a request that never arrived,
 * cancelAll() at the end of a drain); any other status is a malformed request.
 */
const ENDED_BEFORE_HANDLER: Partial<Record<grpc.status, ErrorCode>> = {
  [grpc.status.DEADLINE_EXCEEDED]: 'ERR_DEADLINE_EXCEEDED',
  [grpc.status.CANCELLED]: 'ERR_DEADLINE_EXCEEDED',
  [grpc.status.UNAVAILABLE]: 'ERR_ISSUER_UNAVAILABLE',
};

export const ADMISSION_DEFAULTS = Object.freeze({
  /** how long a call may take from its headers to its whole request message (and half-close) */
  messageTimeoutMs: 5_000,
});

export interface AdmissionControl {
  readonly interceptor: grpc.ServerInterceptor;
  /** calls admitted (their request has arrived) and not yet ended */
  readonly inFlight: () => number;
  /** calls whose headers arrived and whose request has not (they hold no slot) */
  readonly awaiting: () => number;
  /** ends every admitted call still in progress with UNAVAILABLE (a shutdown's grace period ran out); how many */
  readonly cancelAll: () => number;
  /** stops the timer that ends calls whose request never arrives */
  readonly close: () => void;
}

/**
 * Admission control for Certify, as a server interceptor. A call takes an in-flight slot only once
 * its whole request has arrived (one message and the half-close: the moment grpc-js would invoke
 * the handler). Before that it holds nothing: a client that opens streams and sends headers only,
 * or trickles its message, costs a stream (bounded per connection by grpc.max_concurrent_streams)
 * for at most `messageTimeoutMs`, after which the call is ended with DEADLINE_EXCEEDED.
 *
 * Beyond `maxInFlight` calls, or `maxInFlightPerPeer` from one peer address (so one client cannot
 * take the whole budget), a complete call is answered RESOURCE_EXHAUSTED at once without being
 * handled. Certify itself mostly runs without yielding, so complete calls wait *before* the handler
 * (read from the connection but not yet handled); counting them there is what bounds them.
 *
 * A call ends in one of two ways, and its slot is released exactly once on either: its status
 * passes through this interceptor (the handler answered, or grpc-js found no or two messages), or
 * the call ends without that: grpc-js sends some statuses on the transport call itself, past every
 * interceptor (a message over the size limit, a deadline that passes before the message, a bad
 * grpc-timeout or compression), and a client may reset the stream. Every ending reaches the
 * listener's onCancel (grpc-js calls it once the stream is done, whatever ended it).
 *
 * Calls the handler never sees are accounted for here, through the call log (call-log.ts: one line
 * and one requests_total sample each); the handler accounts for the calls it handles, through the same. Must be the first (innermost) interceptor:
 * it watches the statuses grpc-js sends on the transport call by wrapping that call's sendStatus.
 */
export function createAdmissionControl(o: {
  readonly maxInFlight: number;
  /** default: half of maxInFlight (at least 1) */
  readonly maxInFlightPerPeer?: number;
  readonly messageTimeoutMs?: number;
  readonly logger: Logger;
  readonly metrics: IssuerMetrics;
  /** reads the wall clock for gRPC deadlines (which are wall-clock instants) */
  readonly wallClock?: Clock;
  /** how often the calls it ends are logged (default: its own, on wallClock) */
  readonly rejectionLog?: RejectionLog;
}): AdmissionControl {
  const messageTimeoutMs = o.messageTimeoutMs ?? ADMISSION_DEFAULTS.messageTimeoutMs;
  const wallClock = o.wallClock ?? systemClock;
  const rejections = o.rejectionLog ?? createRejectionLog({ logger: o.logger, clock: wallClock });
  const st: AdmissionState = {
    maxInFlight: o.maxInFlight,
    perPeerMax: o.maxInFlightPerPeer ?? Math.max(1, Math.floor(o.maxInFlight / 2)),
    wallClock,
    apis: Object.fromEntries(RPCS.map((rpc) => [rpc, admittedApi(o, rpc, rejections)])) as Record<
      Rpc,
      AdmittedApi
    >,
    admitted: 0,
    byPeer: new Map(),
    active: new Set(),
    awaiting: new Map(),
  };

  // One timer for every waiting call (not one per call): each sweep ends the calls whose request
  // has not arrived within messageTimeoutMs, so a call is ended between 1× and 1.5× the limit.
  const sweep = setInterval(
    () => {
      const cutoff = performance.now() - messageTimeoutMs;
      for (const [c, since] of st.awaiting) if (since <= cutoff) endTooSlow(st, c);
    },
    Math.max(10, Math.floor(messageTimeoutMs / 2)),
  );
  sweep.unref();

  return {
    interceptor: (method, call) => {
      const rpc = RPC_OF_PATH[method.path];
      return rpc !== undefined
        ? interceptCertify(st, st.apis[rpc], call)
        : new grpc.ServerInterceptingCall(call);
    },
    inFlight: () => st.admitted,
    awaiting: () => st.awaiting.size,
    cancelAll() {
      const calls = [...st.active];
      // each ends through the transport; the listener's onCancel then releases its slot
      for (const c of calls) cancelCall(c);
      return calls.length;
    },
    close() {
      clearInterval(sweep);
    },
  };
}

type Gauge = ReturnType<IssuerMetrics['inFlight']['labels']>;
type SentStatus = Parameters<grpc.ServerInterceptingCallInterface['sendStatus']>[0];

/** The APIs admission control follows: their calls share the slots, each has its log and gauges. */
const RPCS = ['Certify', 'CreateCertificate'] as const;
type Rpc = (typeof RPCS)[number];
const RPC_OF_PATH: Readonly<Record<string, Rpc>> = {
  [CERTIFY_METHOD]: 'Certify',
  [CREATE_CERTIFICATE_METHOD]: 'CreateCertificate',
};

/** One API's part: its call log and gauges (labelled by api), and its calls in flight and waiting. */
interface AdmittedApi {
  readonly calls: CallLog;
  readonly gauge: Gauge;
  readonly awaitingGauge: Gauge;
  inFlight: number;
  awaiting: number;
}

function admittedApi(
  o: { readonly logger: Logger; readonly metrics: IssuerMetrics },
  rpc: Rpc,
  rejections: RejectionLog,
): AdmittedApi {
  return {
    calls: createCallLog({ logger: o.logger, metrics: o.metrics, rejections, rpc }),
    gauge: o.metrics.inFlight.labels(rpc),
    awaitingGauge: o.metrics.awaitingRequest.labels(rpc),
    inFlight: 0,
    awaiting: 0,
  };
}

/** One admission control's state, shared by its calls. */
interface AdmissionState {
  readonly maxInFlight: number;
  readonly perPeerMax: number;
  readonly wallClock: Clock;
  readonly apis: Readonly<Record<Rpc, AdmittedApi>>;
  /** calls admitted (holding a slot) */
  admitted: number;
  readonly byPeer: Map<string, number>;
  /** the admitted calls still in progress */
  readonly active: Set<AdmissionCall>;
  /** calls waiting for their request: when their headers arrived (ms, monotonic) */
  readonly awaiting: Map<AdmissionCall, number>;
}

/** One call (Certify or CreateCertificate) as admission control follows it. */
interface AdmissionCall {
  readonly call: grpc.ServerInterceptingCallInterface;
  readonly api: AdmittedApi;
  readonly started: bigint;
  readonly peer: string;
  /** holds a slot */
  counted: boolean;
  // One state for who accounts for the call (its one log line and metric sample, call-log.ts):
  // 'pending' until this interceptor does (when the call is shed or ends before the handler), then
  // 'done'; 'handler' once the handler has it (the handler does it then).
  accounting: 'pending' | 'done' | 'handler';
  messages: number;
  /** the first status sent on the transport, whoever sent it (what the client receives) */
  sent: SentStatus | undefined;
}

/** The interceptor for one Certify or CreateCertificate call. */
function interceptCertify(
  st: AdmissionState,
  api: AdmittedApi,
  call: grpc.ServerInterceptingCallInterface,
): grpc.ServerInterceptingCall {
  const c: AdmissionCall = {
    call,
    api,
    started: process.hrtime.bigint(),
    peer: call.getConnectionInfo().remoteAddress ?? call.getPeer(),
    counted: false,
    accounting: 'pending',
    messages: 0,
    sent: undefined,
  };
  const transportSendStatus = call.sendStatus.bind(call);
  call.sendStatus = (status) => {
    c.sent ??= status;
    transportSendStatus(status);
  };
  const listener = new grpc.ServerListenerBuilder()
    .withOnReceiveMetadata((metadata, next) => {
      st.awaiting.set(c, performance.now());
      c.api.awaitingGauge.set(++c.api.awaiting);
      next(metadata);
    })
    .withOnReceiveMessage((message, next) => {
      c.messages++;
      next(message);
    })
    .withOnReceiveHalfClose((next) => {
      stopAwaiting(st, c);
      // grpc-js invokes a unary handler at half-close when exactly one message arrived: that is
      // when the call is complete and takes a slot
      if (c.messages === 1) {
        if (!admit(st, c)) return;
        c.accounting = 'handler';
      }
      next();
    })
    .withOnCancel(() => {
      release(st, c);
      account(st, c);
    })
    .build();
  const responder = new grpc.ResponderBuilder()
    .withStart((next) => {
      next(listener);
    })
    .withSendStatus((status, next) => {
      release(st, c);
      next(status);
    })
    .build();
  return new grpc.ServerInterceptingCall(call, responder);
}

function stopAwaiting(st: AdmissionState, c: AdmissionCall): void {
  if (st.awaiting.delete(c)) c.api.awaitingGauge.set(--c.api.awaiting);
}

/** Ends a call whose request did not arrive within messageTimeoutMs. */
function endTooSlow(st: AdmissionState, c: AdmissionCall): void {
  stopAwaiting(st, c);
  c.call.sendStatus({
    code: grpc.status.DEADLINE_EXCEEDED,
    details: 'the request did not arrive in time',
  });
}

/** Ends an admitted call still in progress (a shutdown's grace period ran out). */
function cancelCall(c: AdmissionCall): void {
  c.call.sendStatus({ code: grpc.status.UNAVAILABLE, details: 'the issuer is shutting down; retry' });
}

/** Gives back the call's slot, if it holds one (once, whichever way the call ended). */
function release(st: AdmissionState, c: AdmissionCall): void {
  stopAwaiting(st, c);
  if (!c.counted) return;
  c.counted = false;
  st.active.delete(c);
  st.admitted--;
  const n = (st.byPeer.get(c.peer) ?? 1) - 1;
  if (n <= 0) st.byPeer.delete(c.peer);
  else st.byPeer.set(c.peer, n);
  c.api.gauge.set(--c.api.inFlight);
}

/** A call that ended before the handler had it: its one log line and metric sample. */
function account(st: AdmissionState, c: AdmissionCall): void {
  if (c.accounting !== 'pending') return;
  c.accounting = 'done';
  const { sent } = c;
  const deadline = c.call.getDeadline();
  const deadlineMs = deadline instanceof Date ? deadline.getTime() : deadline;
  const code =
    sent?.code ??
    (st.wallClock.now().getTime() >= deadlineMs ? grpc.status.DEADLINE_EXCEEDED : grpc.status.CANCELLED);
  c.api.calls.endedBeforeHandler(
    ENDED_BEFORE_HANDLER[code] ?? 'ERR_INVALID_REQUEST',
    code,
    sent === undefined
      ? 'the client ended the call before it was answered'
      : `the call ended before the handler: ${sent.details ?? statusName(code)}`,
    { durationMs: Number(process.hrtime.bigint() - c.started) / 1e6 },
  );
}

/** Takes a slot for a complete request, or answers RESOURCE_EXHAUSTED; whether it was admitted. */
function admit(st: AdmissionState, c: AdmissionCall): boolean {
  const fromPeer = st.byPeer.get(c.peer) ?? 0;
  if (st.admitted < st.maxInFlight && fromPeer < st.perPeerMax) {
    st.admitted++;
    st.byPeer.set(c.peer, fromPeer + 1);
    c.counted = true;
    st.active.add(c);
    c.api.gauge.set(++c.api.inFlight);
    return true;
  }
  c.accounting = 'done';
  const perPeer = st.admitted < st.maxInFlight;
  const message = perPeer
    ? `this client is at its limit of ${st.perPeerMax} calls in flight; retry with backoff`
    : `the issuer is at its limit of ${st.maxInFlight} calls in flight; retry with backoff`;
  c.api.calls.endedBeforeHandler('ERR_OVERLOADED', grpc.status.RESOURCE_EXHAUSTED, message, {
    inFlight: st.admitted,
    perPeer,
  });
  c.call.sendStatus({ code: grpc.status.RESOURCE_EXHAUSTED, details: message });
  return false;
}

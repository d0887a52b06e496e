// Worker-thread entry: makes the workloads described by workerData and posts them back once, their
// CSRs and tokens packed into one transferred buffer (views into it), so that 100,000 workloads cost
// the load generator about their bytes rather than one allocation each.
import { parentPort, workerData } from 'node:worker_threads';
import { makeWorkloads, type Workload, type WorkloadJob } from './workloads.js';

function packed(workloads: readonly Workload[]): { workloads: Workload[]; buffer: ArrayBuffer } {
  const size = workloads.reduce((n, w) => n + w.csr.byteLength + w.token.byteLength, 0);
  const bytes = new Uint8Array(size);
  let at = 0;
  const view = (b: Uint8Array): Uint8Array => {
    bytes.set(b, at);
    at += b.byteLength;
    return bytes.subarray(at - b.byteLength, at);
  };
  return {
    workloads: workloads.map((w) => ({ identity: w.identity, csr: view(w.csr), token: view(w.token) })),
    buffer: bytes.buffer,
  };
}

const { workloads, buffer } = packed(await makeWorkloads(workerData as WorkloadJob));
parentPort?.postMessage(workloads, [buffer]);

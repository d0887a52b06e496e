// Worker-thread entry: makes the workloads described by workerData and posts them back once.
import { parentPort, workerData } from 'node:worker_threads';
import { makeWorkloads, type WorkloadJob } from './workloads.js';

const workloads = await makeWorkloads(workerData as WorkloadJob);
parentPort?.postMessage(workloads);

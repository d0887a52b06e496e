// The Certify load generator as a library (the entry point is certify-bench.ts, `npm run bench`).
export { openChannels, runLoad, type CertifyChannel, type LoadOptions, type LoadResult } from './load.js';
export { makeWorkloads, makeWorkloadsInParallel, type Workload, type WorkloadJob } from './workloads.js';
export { parseOptions, SCENARIOS, type BenchOptions, type Scenario } from './options.js';
export { classifyStack, STAGES, type Frame, type Stage } from './stage-rules.js';
export {
  profilePid,
  stageTable,
  type PidProfile,
  type StageColumn,
  type StageWindow,
} from './stage-table.js';
export { hitRates, parseCacheLookups } from './server-metrics.js';
export type { CpuProfile } from './cpu-profile.js';

export { createTrustBundle, parseTrustBundle, type TrustBundle } from './bundle.js';
export {
  toSpiffeBundle,
  BUNDLE_FORMATS,
  CONFIGMAP_DEFAULTS,
  ISTIO_CONFIGMAP_DEFAULTS,
  serializeBundle,
  type BundleFormat,
  type BundleFormatOptions,
} from './formats.js';
export { requestBounded, FetchError, type BoundedResponse, getBounded } from './fetch.js';
export { type TrustBundlesErrorCode } from './errors.js';
export {
  addToBundleFile,
  createBundleFile,
  readBundleFile,
  removeFromBundleFile,
  type BundleChange,
} from './bundle-files.js';
export { type CheckReport } from './check.js';
export { checkClusters, clusterRotationPlan, clusterRotationStatus } from './mesh.js';
export { type PlanPhase, type PlanStep, type RotationPlan } from './rotation-plan.js';
export { RotationInputError, type RotationInput } from './errors.js';
export {
  OFFLINE_DEFAULTS,
  type OfflineAssumptions,
  type OldLeafBasis,
  type RotationStatus,
  type ClusterRotationState,
  type NextStep,
  type Precondition,
} from './rotation.js';
export type {
  AnchorIssuance,
  AnchorStatus,
  CertifyApiStatus,
  IssuedByApi,
  IssuerStatus,
  IstioApiStatus,
  ServedApisStatus,
  ServingTlsStatus,
  UntrustedStatus,
} from './status-contract.js';
export { parseClusterTargets, type ClusterTarget } from './sources.js';
export {
  readCluster,
  type ClusterReading,
  type MetricsSummary,
  type ReadLimits,
  type ReadProblem,
} from './mesh-read.js';
export {
  buildMeshView,
  type AnchorView,
  type ClusterView,
  type MeshView,
  type MeshViewOptions,
  type RotationView,
  type TimelineItem,
  type TrustCell,
} from './mesh-view.js';
export {
  apiServerAgent,
  inClusterConfig,
  KUBE_TOKEN_MAX_BYTES,
  kubeTlsOptions,
  loadKubeConfig,
  resolveKubeConnection,
  type KubeConnection,
} from './kubeconfig.js';

// The kubeconfig parser lives in trust-bundles/ (`rotate status --kubeconfig` reads pods with it); the
// issuer's authenticators keep importing it from here.
export {
  inClusterConfig,
  loadKubeConfig,
  resolveKubeConnection,
  SERVICE_ACCOUNT_DIR,
  type KubeConnection,
} from '../../trust-bundles/index.js';

import { Command, Option } from 'commander';
import { validateIdentityDomain, workloadIdentity, type LeafKeyType } from '../../ca/index.js';
import { issueLeafFile } from '../../ca/store/index.js';
import { checkFlags, collect, durationOption, type CliContext } from './kit.js';

/** `lanyard leaf issue` */
export function registerLeafCommands(program: Command, ctx: CliContext): void {
  const leaf = program
    .command('leaf')
    .description('offline workload certificates (break-glass, non-meshed workloads)');
  leaf
    .command('issue')
    .description(
      "sign one CSR with an issuer, through the same policy and fast path as the service; writes the leaf then the issuer's chain",
    )
    .requiredOption('--issuer <dir>', 'issuer directory (tls.crt, tls.key, ca.crt)')
    .requiredOption(
      '--csr <file>',
      'PKCS#10 request, PEM or DER; its one DNS SAN must equal the derived identity',
    )
    .requiredOption('--namespace <ns>', 'Kubernetes namespace of the workload')
    .requiredOption('--service-account <sa>', 'service account of the workload')
    .option('--trust-domain <domain>', 'trust domain', 'cluster.local')
    .option('--control-namespace <ns>', 'Linkerd control-plane namespace', 'linkerd')
    .addOption(
      durationOption('--lifetime <duration>', 'leaf lifetime (capped at the issuer chain expiry)', '24h'),
    )
    .addOption(
      new Option('--allow-key-type <type>', 'also accept this leaf key type (repeatable)')
        .choices(['p256', 'p384'])
        .argParser(collect),
    )
    .requiredOption('--out <file>', 'where to write the certificate chain (PEM)')
    .action(
      async (o: {
        issuer: string;
        csr: string;
        namespace: string;
        serviceAccount: string;
        trustDomain: string;
        controlNamespace: string;
        lifetime: number;
        allowKeyType?: LeafKeyType[];
        out: string;
      }) => {
        const identity = checkFlags(() =>
          workloadIdentity(
            validateIdentityDomain({ trustDomain: o.trustDomain, controlNamespace: o.controlNamespace }),
            { namespace: o.namespace, name: o.serviceAccount },
          ),
        );
        const issued = await issueLeafFile({
          issuerDir: o.issuer,
          csrPath: o.csr,
          identity,
          lifetimeMs: o.lifetime,
          ...(o.allowKeyType !== undefined ? { alsoAllowKeyTypes: o.allowKeyType } : {}),
          outPath: o.out,
          now: ctx.clock.now(),
        });
        ctx.out(
          `issued ${identity.dns} (serial ${issued.serialHex}, valid until ${issued.notAfter.toISOString()}) → ${o.out}`,
        );
      },
    );
}

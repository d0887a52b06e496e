import { Command, Option } from 'commander';
import { createAnchorFiles, createIssuerFilesFromAnchorDir } from '../../ca/store/index.js';
import { checkFlags, collect, durationOption, nameFlags, type CliContext } from './kit.js';
import { CredentialError, UsageError, restateError } from '../../ca/index.js';
import { validateIdentityDomain, workloadIdentity } from '../../ca/index.js';
import { inspectFiles } from '../../ca/inspect/index.js';
import { formatReport } from '../../ca/inspect/index.js';
import { ANCHOR_FILES } from '../../ca/store/index.js';
import { EC_ALGORITHMS, KEY_ALGORITHMS, parseKeyAlgorithm } from '../../ca/keys/index.js';
import { issueLeafFile } from '../../ca/store/index.js';
import { type LeafKeyType } from '../../ca/index.js';
import { DEFAULTS } from '../../ca/index.js';

/** `lanyard anchor …`, `lanyard issuer …`, `lanyard leaf …`, `lanyard inspect …` */
export function registerCaCommands(program: Command, ctx: CliContext): void {
  registerAnchorCommands(program, ctx);
  registerIssuerCreateCommand(program, ctx);
  registerLeafCommands(program, ctx);
  registerInspectCommand(program, ctx);
}

function registerAnchorCommands(program: Command, ctx: CliContext): void {
  const anchor = program
    .command('anchor')
    .description('manage the trust anchor (root CA) shared by every cluster');
  anchor
    .command('create')
    .description(
      `create a self-signed trust anchor: DIR/${ANCHOR_FILES.cert} and DIR/${ANCHOR_FILES.key} (mode 0600)`,
    )
    .requiredOption('--out <dir>', 'directory to write the anchor into (created if missing)')
    .option('--common-name <cn>', 'subject common name', DEFAULTS.anchorCommonName)
    .addOption(new Option('--key-type <type>', 'key type').choices([...KEY_ALGORITHMS]).default('p256'))
    .addOption(durationOption('--lifetime <duration>', 'validity period', '87600h'))
    .option('--force', 'replace an existing anchor key and certificate', false)
    .action(
      async (o: { out: string; commonName: string; keyType: string; lifetime: number; force: boolean }) => {
        const { cert, certPath, keyPath } = await createAnchorFiles(o.out, {
          now: ctx.clock.now(),
          keyType: parseKeyAlgorithm(o.keyType),
          commonName: o.commonName,
          lifetimeMs: o.lifetime,
          force: o.force,
        });
        ctx.out(
          `created trust anchor ${certPath} (${o.keyType}, valid until ${cert.notAfter.toISOString()})`,
        );
        ctx.out(`key: ${keyPath} (keep it offline; it signs every cluster's issuer)`);
      },
    );
}

function registerIssuerCreateCommand(program: Command, ctx: CliContext): void {
  const issuer = program
    .command('issuer')
    .description("manage a cluster's issuer (intermediate CA signed by the anchor)");
  issuer
    .command('create')
    .description(
      'create an issuer signed by the anchor: OUT/tls.crt, OUT/tls.key (0600), OUT/ca.crt (the kubernetes.io/tls layout)',
    )
    .requiredOption('--anchor <dir>', `directory holding ${ANCHOR_FILES.cert} and ${ANCHOR_FILES.key}`)
    .requiredOption('--cluster <name>', 'cluster name, recorded in the issuer subject (OU)')
    .requiredOption('--out <dir>', 'directory to write the issuer into (created if missing)')
    .option('--common-name <cn>', 'subject common name', DEFAULTS.issuerCommonName)
    .addOption(
      durationOption('--lifetime <duration>', 'validity period, capped at the anchor expiry', '8760h'),
    )
    .addOption(new Option('--key-type <type>', 'key type').choices([...EC_ALGORITHMS]).default('p256'))
    .option('--permit-dns <suffix>', 'name constraint: permitted DNS subtree (repeatable)', collect)
    .option('--permit-spiffe <trust-domain>', 'name constraint: permitted SPIFFE trust domain (URI subtree)')
    .option('--force', 'replace an existing issuer key and certificate', false)
    .action(
      async (o: {
        anchor: string;
        cluster: string;
        out: string;
        commonName: string;
        lifetime: number;
        keyType: string;
        permitDns?: string[];
        permitSpiffe?: string;
        force: boolean;
      }) => {
        if (!/^[A-Za-z0-9][-A-Za-z0-9_.]{0,62}$/.test(o.cluster)) {
          throw new UsageError(`--cluster "${o.cluster}" must be 1-63 letters, digits, '-', '_' or '.'`);
        }
        // Everything that can fail (names, constraints, validity) fails before a file is touched.
        const { cert } = await createIssuerFilesFromAnchorDir(o.anchor, o.out, {
          now: ctx.clock.now(),
          keyType: parseKeyAlgorithm(o.keyType, EC_ALGORITHMS),
          cluster: o.cluster,
          commonName: o.commonName,
          lifetimeMs: o.lifetime,
          force: o.force,
          ...(o.permitDns !== undefined ? { permitDns: o.permitDns } : {}),
          ...(o.permitSpiffe !== undefined ? { permitSpiffe: o.permitSpiffe } : {}),
        })
          .catch(nameFlags({ permitDns: '--permit-dns', permitSpiffe: '--permit-spiffe' }))
          .catch(hintIssuerAsAnchor);
        if (o.permitSpiffe !== undefined) {
          ctx.err(
            'warning: --permit-spiffe adds a URI name constraint; Linkerd proxies (rustls/webpki) reject leaves under URI constraints they cannot evaluate, so every mTLS handshake in a Linkerd mesh would fail. Use --permit-dns alone there.',
          );
        }
        ctx.out(
          `created issuer for cluster ${o.cluster} in ${o.out} (tls.crt, tls.key, ca.crt), valid until ${cert.notAfter.toISOString()}`,
        );
      },
    );
}

function registerLeafCommands(program: Command, ctx: CliContext): void {
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

function registerInspectCommand(program: Command, ctx: CliContext): void {
  program
    .command('inspect')
    .description(
      'show certificates, bundles and CSRs: names, validity and time left, keys, CA flags, key ids, fingerprints',
    )
    .argument('<file...>', 'PEM or DER files')
    .option('--json', 'print JSON', false)
    .action(async (files: string[], o: { json: boolean }) => {
      const results = await inspectFiles(files, ctx.clock.now());
      if (o.json) {
        ctx.out(JSON.stringify(results, null, 2));
        return;
      }
      ctx.out(results.flatMap((r) => r.items.map((i) => formatReport(r.file, i))).join('\n\n'));
    });
}

/** An issuer directory given as --anchor is the likely mistake behind an anchor that is not self-signed. */
function hintIssuerAsAnchor(err: unknown): never {
  if (err instanceof CredentialError && err.code === 'ERR_ANCHOR_NOT_SELF_SIGNED')
    throw restateError(err, `${err.message} (an issuer directory given as --anchor?)`);
  throw err;
}

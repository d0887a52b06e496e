import { Command, Option } from 'commander';
import { CredentialError, DEFAULTS, UsageError, restateError } from '../../ca/index.js';
import { EC_ALGORITHMS, parseKeyAlgorithm } from '../../ca/keys/index.js';
import { ANCHOR_FILES, createIssuerFilesFromAnchorDir } from '../../ca/store/index.js';
import { collect, durationOption, nameFlags, type CliContext } from './kit.js';

/** `lanyard issuer create` */
export function registerIssuerCommands(program: Command, ctx: CliContext): void {
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
    .option(
      '--cross-signed <file>',
      "cross certificate of the anchor (anchor cross-sign): written into tls.crt after the issuer certificate, so workloads that trust only the old anchor accept this issuer's leaves; checked here against the new anchor only (its subject and key, ERR_CROSS_CERT_MISMATCH; not expiring first, ERR_CROSS_CERT_EXPIRES_FIRST): the old anchor's signature (ERR_CROSS_CERT_UNTRUSTED) and path length (ERR_CROSS_PATHLEN) are checked where the bundle holds the old anchor (serve, at start and at each reload)",
    )
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
        crossSigned?: string;
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
          ...(o.crossSigned !== undefined ? { crossSignedPath: o.crossSigned } : {}),
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
        if (o.crossSigned !== undefined)
          ctx.out(`tls.crt serves the cross certificate of ${o.crossSigned} after the issuer certificate`);
      },
    );
}

/** An issuer directory given as --anchor is the likely mistake behind an anchor that is not self-signed. */
function hintIssuerAsAnchor(err: unknown): never {
  if (err instanceof CredentialError && err.code === 'ERR_ANCHOR_NOT_SELF_SIGNED')
    throw restateError(err, `${err.message} (an issuer directory given as --anchor?)`);
  throw err;
}

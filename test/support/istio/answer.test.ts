import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { openssl } from '../openssl-run.js';
import { testDir } from '../temp-dir.js';
import {
  opensslVerifyIstioChain,
  IstioAnswerError,
  checkIstioAnswer,
  istioCsr,
  type IstioAnswerProblem,
  type IstioCsr,
} from './index.js';
import { SYNTHETIC_AT_SECONDS, syntheticCa, syntheticLeaf, type SyntheticCa } from './synthetic-chain.js';

const ID = 'spiffe://cluster.local/ns/bookinfo/sa/reviews';
const OTHER = 'spiffe://cluster.local/ns/bookinfo/sa/ratings';

function refusedWith(problem: IstioAnswerProblem): (err: unknown) => boolean {
  return (err) => err instanceof IstioAnswerError && err.problem === problem;
}

describe('the Istio test client: answer checks (synthetic chains)', () => {
  let root: SyntheticCa;
  let root2: SyntheticCa;
  let inter: SyntheticCa;
  let agent: IstioCsr;
  let zt: IstioCsr;
  let agentLeaf: string;
  let ztLeaf: string;
  let ztOtherLeaf: string;
  before(async () => {
    root = await syntheticCa('root-1');
    root2 = await syntheticCa('root-2');
    inter = await syntheticCa('intermediate', root);
    agent = await istioCsr({ style: 'istio-agent', spiffeId: ID });
    zt = await istioCsr({ style: 'ztunnel', spiffeId: ID });
    agentLeaf = await syntheticLeaf(inter, agent.publicKey, ID);
    ztLeaf = await syntheticLeaf(inter, zt.publicKey, ID);
    ztOtherLeaf = await syntheticLeaf(inter, zt.publicKey, OTHER);
  });

  it('the synthetic chain is one openssl accepts for client and server with the last element as CA file', (t) => {
    const dir = testDir(t);
    writeFileSync(join(dir, 'roots.pem'), root.pem + root2.pem);
    writeFileSync(join(dir, 'inter.pem'), inter.pem);
    for (const [name, leaf] of [
      ['agent', agentLeaf],
      ['ztunnel', ztLeaf],
    ] as const) {
      writeFileSync(join(dir, 'leaf.pem'), leaf);
      for (const purpose of ['sslclient', 'sslserver']) {
        const r = openssl([
          ...['verify', '-x509_strict', '-purpose', purpose, '-attime', String(SYNTHETIC_AT_SECONDS)],
          ...['-CAfile', join(dir, 'roots.pem'), '-untrusted', join(dir, 'inter.pem'), join(dir, 'leaf.pem')],
        ]);
        assert.ok(r.ok, `${name} ${purpose}: ${r.stdout}${r.stderr}`);
      }
    }
  });

  it('opensslVerifyIstioChain: [] for a good chain, a failure per purpose for a chain under another root', () => {
    const at = { atSeconds: SYNTHETIC_AT_SECONDS };
    assert.deepEqual(opensslVerifyIstioChain([ztLeaf, inter.pem, root2.pem + root.pem], at), []);
    assert.equal(opensslVerifyIstioChain([ztLeaf, inter.pem, root2.pem], at).length, 2);
    assert.equal(opensslVerifyIstioChain([ztLeaf], at).length, 1);
  });

  it('accepts leaf, each intermediate, then all roots as one last element (split into several roots)', () => {
    const a = checkIstioAnswer([ztLeaf, inter.pem, root.pem + root2.pem], {
      style: 'ztunnel',
      requestedId: ID,
      publicKey: zt.publicKey,
    });
    assert.equal(a.intermediates.length, 1);
    assert.equal(a.roots.length, 2);
    assert.deepEqual(a.uris, [ID]);
    assert.equal(a.roots[1]?.subject, 'CN=root-2');
    // no intermediate: [leaf, roots] is the shortest valid answer
    const b = checkIstioAnswer([agentLeaf, inter.pem], {
      style: 'istio-agent',
      requestedId: ID,
      publicKey: agent.publicKey,
    });
    assert.equal(b.intermediates.length, 0);
  });

  it('refuses fewer than two elements (istio-agent: "invalid empty CertChain"; ztunnel: no roots)', () => {
    for (const style of ['istio-agent', 'ztunnel'] as const) {
      const expect = { style, requestedId: ID, publicKey: zt.publicKey };
      assert.throws(() => checkIstioAnswer([], expect), refusedWith('CHAIN_TOO_SHORT'), style);
      assert.throws(() => checkIstioAnswer([ztLeaf], expect), refusedWith('CHAIN_TOO_SHORT'), style);
    }
  });

  it('refuses a leaf or middle element holding more than one certificate, and an empty last element', () => {
    const expect = { style: 'ztunnel' as const, requestedId: ID, publicKey: zt.publicKey };
    const two = (x: string, y: string): string => x + y;
    assert.throws(
      () => checkIstioAnswer([two(ztLeaf, inter.pem), root.pem], expect),
      refusedWith('NOT_ONE_CERTIFICATE'),
    );
    assert.throws(
      () => checkIstioAnswer([ztLeaf, two(inter.pem, root.pem), root.pem], expect),
      refusedWith('NOT_ONE_CERTIFICATE'),
    );
    assert.throws(() => checkIstioAnswer([ztLeaf, inter.pem, ''], expect), refusedWith('NO_ROOTS'));
  });

  it('refuses text that is not CERTIFICATE PEM blocks', () => {
    const expect = { style: 'istio-agent' as const, requestedId: ID, publicKey: agent.publicKey };
    const keyBlock = agent.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    assert.throws(() => checkIstioAnswer([agentLeaf, keyBlock], expect), refusedWith('NOT_PEM'));
    assert.throws(() => checkIstioAnswer([agentLeaf, `junk\n${root.pem}`], expect), refusedWith('NOT_PEM'));
    const broken = root.pem.replace(/\n[A-Za-z0-9+/]{8}/, '\nAAAAAAAA');
    assert.throws(() => checkIstioAnswer([agentLeaf, broken], expect), refusedWith('NOT_PEM'));
  });

  it("refuses a leaf that does not carry the CSR's key", () => {
    assert.throws(
      () =>
        checkIstioAnswer([agentLeaf, root.pem], {
          style: 'istio-agent',
          requestedId: ID,
          publicKey: zt.publicKey,
        }),
      refusedWith('KEY_MISMATCH'),
    );
  });

  it('ztunnel refuses a leaf naming another identity when impersonating; istio-agent does not look', () => {
    const chain = [ztOtherLeaf, inter.pem, root.pem];
    assert.throws(
      () => checkIstioAnswer(chain, { style: 'ztunnel', requestedId: ID, publicKey: zt.publicKey }),
      refusedWith('IDENTITY_MISMATCH'),
    );
    const plain = {
      style: 'ztunnel' as const,
      requestedId: ID,
      publicKey: zt.publicKey,
      impersonating: false,
    };
    assert.deepEqual(checkIstioAnswer(chain, plain).uris, [OTHER]);
    const agentSide = { style: 'istio-agent' as const, requestedId: ID, publicKey: zt.publicKey };
    assert.deepEqual(checkIstioAnswer(chain, agentSide).uris, [OTHER]);
  });
});

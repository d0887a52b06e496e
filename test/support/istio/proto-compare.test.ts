import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { testDir } from '../temp-dir.js';
import { ISTIO_CA_PROTO, compareIstioCaProtos } from './index.js';

describe('the Istio test client: proto compatibility check', () => {
  const original = readFileSync(ISTIO_CA_PROTO, 'utf8');

  it('finds nothing to report between a proto and itself, or one without the newer root_cert', (t) => {
    const dir = testDir(t);
    assert.deepEqual(compareIstioCaProtos(ISTIO_CA_PROTO, ISTIO_CA_PROTO), []);
    const older = join(dir, 'older.proto');
    writeFileSync(older, original.replace(/\n {2}Roots root_cert = 2;\n/, '\n'));
    assert.notEqual(readFileSync(older, 'utf8'), original);
    assert.deepEqual(compareIstioCaProtos(ISTIO_CA_PROTO, older), []);
  });

  it('reports a renumbered field, a changed type, a reused field 2 and another package', (t) => {
    const dir = testDir(t);
    const variant = (name: string, from: RegExp, to: string): string => {
      const p = join(dir, name);
      const text = original.replace(from, to);
      assert.notEqual(text, original, name);
      writeFileSync(p, text);
      return p;
    };
    assert.equal(
      compareIstioCaProtos(
        ISTIO_CA_PROTO,
        variant('renumbered.proto', /validity_duration = 3/, 'validity_duration = 5'),
      ).length,
      1,
    );
    assert.equal(
      compareIstioCaProtos(
        ISTIO_CA_PROTO,
        variant('int32.proto', /int64 validity_duration/, 'int32 validity_duration'),
      ).length,
      1,
    );
    const reused = variant('reused.proto', /reserved 2;/, 'string subject_id = 2;');
    assert.deepEqual(compareIstioCaProtos(ISTIO_CA_PROTO, reused), [
      'IstioCertificateRequest: field 2 (removed subject_id) is reused by the server',
    ]);
    assert.ok(
      compareIstioCaProtos(
        ISTIO_CA_PROTO,
        variant('pkg.proto', /package istio\.v1\.auth;/, 'package istio.v2;'),
      ).length >= 3,
    );
  });
});

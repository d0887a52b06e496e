// The Istio CA API's status table (toIstioGrpcError): what docs/api.md's CreateCertificate refusal
// table says, for the codes it maps differently from Certify's and those it keeps on purpose.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { LanyardError } from '../../ca/index.js';
import { InvalidTokenError } from '../../issuer/authn/index.js';
import { statusName, toGrpcError, toIstioGrpcError } from '../../issuer/grpc/status.js';

describe('the Istio CA API status table', () => {
  it('maps each refusal as docs/api.md says', () => {
    const cases: [LanyardError, string][] = [
      [new LanyardError('ERR_CSR_WEAK_KEY', 'x'), 'INVALID_ARGUMENT'],
      [new LanyardError('ERR_CSR_UNSUPPORTED_KEY', 'x'), 'INVALID_ARGUMENT'],
      [new LanyardError('ERR_KEY_NOT_ALLOWED', 'x'), 'INVALID_ARGUMENT'],
      [new LanyardError('ERR_CSR_IDENTITY', 'x'), 'INVALID_ARGUMENT'],
      [new LanyardError('ERR_INVALID_REQUEST', 'x'), 'INVALID_ARGUMENT'],
      [new LanyardError('ERR_TTL_TOO_LONG', 'x'), 'INVALID_ARGUMENT'],
      // the identity comes from the verified token: not a malformed request
      [new LanyardError('ERR_IDENTITY_INVALID', 'x'), 'PERMISSION_DENIED'],
      [new LanyardError('ERR_NAME_CONSTRAINTS', 'x'), 'PERMISSION_DENIED'],
      [new LanyardError('ERR_DEADLINE_EXCEEDED', 'x'), 'DEADLINE_EXCEEDED'],
      [new LanyardError('ERR_OVERLOADED', 'x'), 'RESOURCE_EXHAUSTED'],
      [new LanyardError('ERR_ISSUER_UNAVAILABLE', 'x'), 'UNAVAILABLE'],
      [new InvalidTokenError('x', { reason: 'malformed' }), 'UNAUTHENTICATED'],
      [new LanyardError('ERR_CLUSTER_UNKNOWN', 'x'), 'UNAUTHENTICATED'],
      [new LanyardError('ERR_IMPERSONATION_DENIED', 'x'), 'UNAUTHENTICATED'],
    ];
    for (const [err, name] of cases) assert.equal(statusName(toIstioGrpcError(err).grpcCode), name, err.code);
  });

  it('differs from Certify only for the CSR key refusals', () => {
    for (const code of ['ERR_CSR_WEAK_KEY', 'ERR_CSR_UNSUPPORTED_KEY', 'ERR_KEY_NOT_ALLOWED'] as const) {
      assert.equal(statusName(toGrpcError(new LanyardError(code, 'x')).grpcCode), 'PERMISSION_DENIED');
      assert.equal(statusName(toIstioGrpcError(new LanyardError(code, 'x')).grpcCode), 'INVALID_ARGUMENT');
    }
    const names = new LanyardError('ERR_CSR_NAMES', 'x');
    assert.equal(toIstioGrpcError(names).grpcCode, toGrpcError(names).grpcCode);
  });
});

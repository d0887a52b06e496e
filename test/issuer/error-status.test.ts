import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FileError, LanyardError } from '../../ca/index.js';
import { IssuerServiceError } from '../../issuer/errors.js';
import { statusName, toGrpcError } from '../../issuer/grpc/status.js';

describe('the gRPC status table', () => {
  it('maps the service codes from their own class', () => {
    const cases: [LanyardError, string][] = [
      [new IssuerServiceError('ERR_OVERLOADED', 'x'), 'RESOURCE_EXHAUSTED'],
      [new IssuerServiceError('ERR_DEADLINE_EXCEEDED', 'x'), 'DEADLINE_EXCEEDED'],
      [new IssuerServiceError('ERR_WORKER_START', 'x'), 'INTERNAL'],
    ];
    for (const [err, name] of cases) assert.equal(statusName(toGrpcError(err).grpcCode), name, err.code);
  });

  it('an INTERNAL code keeps its code for the trailer and the log, with a generic message', () => {
    const mapped = toGrpcError(new FileError('ERR_FILE_NOT_FOUND', '/etc/secret missing'));
    assert.equal(statusName(mapped.grpcCode), 'INTERNAL');
    assert.equal(mapped.code, 'ERR_FILE_NOT_FOUND');
    assert.equal(mapped.detail, '/etc/secret missing');
    assert.ok(!mapped.message.includes('/etc/secret'));
  });

  it('a code no class owns is INTERNAL with code ERR_INTERNAL', () => {
    const mapped = toGrpcError(new LanyardError('ERR_NOBODY', 'x'));
    assert.equal(statusName(mapped.grpcCode), 'INTERNAL');
    assert.equal(mapped.code, 'ERR_INTERNAL');
  });
});

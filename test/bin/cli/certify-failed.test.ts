import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { LanyardError } from '../../../ca/index.js';
import { CertifyFailed } from '../../../bin/cli/index.js';

describe('the error `lanyard certify` reports', () => {
  it('names a gRPC status once, then its details', () => {
    // what grpc-js rejects a call with: message "<code> <NAME>: <details>"
    const err = Object.assign(new Error('16 UNAUTHENTICATED: the token expired'), {
      code: grpc.status.UNAUTHENTICATED,
      details: 'the token expired',
      metadata: new grpc.Metadata(),
    });
    const failed = new CertifyFailed(err);
    assert.equal(failed.code, 'ERR_CERTIFY_FAILED');
    assert.equal(failed.message.match(/UNAUTHENTICATED/g)?.length, 1);
    assert.ok(failed.message.includes('the token expired'));
  });

  it('names a Lanyard error code once, then its message', () => {
    const failed = new CertifyFailed(new LanyardError('ERR_FILE_NOT_FOUND', 'no token file'));
    assert.equal(failed.message.match(/ERR_FILE_NOT_FOUND/g)?.length, 1);
  });
});

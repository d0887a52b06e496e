import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  CredentialError,
  FileError,
  InternalError,
  InvalidRequestError,
  isLanyardError,
  LanyardError,
  PolicyError,
  restateError,
  UsageError,
} from '../../ca/index.js';
import { InvalidTokenError } from '../../issuer/authn/index.js';

describe('Lanyard errors', () => {
  it('each class accepts only its own codes (checked by typecheck)', () => {
    // @ts-expect-error: a chain code is CredentialError's, not PolicyError's
    assert.equal(new PolicyError('ERR_CHAIN_UNTRUSTED', 'x').code, 'ERR_CHAIN_UNTRUSTED');
    // @ts-expect-error: ERR_NAME_CONSTRAINTS has one class, PolicyError
    assert.equal(new CredentialError('ERR_NAME_CONSTRAINTS', 'x').code, 'ERR_NAME_CONSTRAINTS');
    // @ts-expect-error: the file codes are FileError's
    assert.equal(new InvalidRequestError('ERR_FILE_INVALID', 'x').code, 'ERR_FILE_INVALID');
    assert.equal(new FileError('ERR_FILE_INVALID', 'x').code, 'ERR_FILE_INVALID');
    assert.equal(new InternalError('x').code, 'ERR_INTERNAL');
  });

  it('instanceof LanyardError and isLanyardError see every class', () => {
    for (const err of [
      new PolicyError('ERR_CSR_NAMES', 'x'),
      new UsageError('x'),
      new InvalidTokenError('x', { reason: 'expired' }),
    ]) {
      assert.ok(err instanceof LanyardError && isLanyardError(err), err.name);
    }
    assert.equal(isLanyardError(new Error('x')), false);
  });

  it('UsageError.forOption names the option as the options object spells it, and the problem apart', () => {
    const err = UsageError.forOption('permitDns', '"a b" is not a DNS name');
    assert.equal(err.code, 'ERR_USAGE');
    assert.equal(err.option, 'permitDns');
    assert.equal(err.problem, '"a b" is not a DNS name');
  });

  it('restateError keeps the class, the code and the fields, with the original as cause', () => {
    const original = new InvalidTokenError('x', { reason: 'audience' });
    const restated = restateError(original, 'context: x');
    assert.ok(restated instanceof InvalidTokenError);
    assert.equal(restated.code, 'ERR_TOKEN_INVALID');
    assert.equal(restated.reason, 'audience');
    assert.equal(restated.name, 'InvalidTokenError');
    assert.equal(restated.cause, original);
    assert.equal(original.cause, undefined);
  });
});

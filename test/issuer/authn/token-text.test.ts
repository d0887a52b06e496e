import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { InvalidTokenError } from '../../../issuer/authn/index.js';
import { tokenText } from '../../../issuer/authn/common.js';

describe('tokenText', () => {
  it('accepts exactly the printable ASCII bytes, wherever they are in the token', () => {
    for (let b = 0; b < 256; b++) {
      for (const at of [0, 5, 9]) {
        const token = Buffer.from('abcdefghij', 'latin1');
        token[at] = b;
        const printable = b >= 0x21 && b <= 0x7e;
        if (printable) assert.equal(tokenText(token), token.toString('latin1'));
        else
          assert.throws(
            () => tokenText(token),
            (err: unknown) => err instanceof InvalidTokenError && err.reason === 'malformed',
            `byte 0x${b.toString(16)} at ${at}`,
          );
      }
    }
  });

  it('reads only the view it is given, not the rest of its buffer', () => {
    const whole = Buffer.from('\u0000header.payload.sig\u0000', 'latin1');
    assert.equal(tokenText(whole.subarray(1, whole.length - 1)), 'header.payload.sig');
  });
});

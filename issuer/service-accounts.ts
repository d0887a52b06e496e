import { UsageError, isDns1123Label, type ServiceAccountRef } from '../ca/index.js';

/** NS/SA,NS/SA,… (empty: none); each part a DNS-1123 label. */
export function parseServiceAccounts(s: string, flag: string): readonly ServiceAccountRef[] {
  if (s.trim() === '') return Object.freeze([]);
  return Object.freeze(
    s.split(',').map((item) => {
      const [namespace, name, ...rest] = item.trim().split('/');
      if (
        namespace === undefined ||
        name === undefined ||
        rest.length > 0 ||
        !isDns1123Label(namespace) ||
        !isDns1123Label(name)
      )
        throw UsageError.forOption(flag, `"${item.trim()}" is not NAMESPACE/SERVICE-ACCOUNT`);
      return Object.freeze({ namespace, name });
    }),
  );
}

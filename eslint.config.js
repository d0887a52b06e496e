// @ts-check
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import importX from 'eslint-plugin-import-x';
import { createTypeScriptImportResolver } from 'eslint-import-resolver-typescript';

// Layers, outermost first: a folder may import only folders to its right (docs/architecture.md).
const LAYERS = ['bin', 'issuer', 'trust-bundles', 'ca'];
const SOURCE = LAYERS.map((l) => `${l}/**/*.ts`);
const boundaries = {
  files: SOURCE,
  plugins: { 'import-x': importX },
  settings: {
    'import-x/resolver-next': [createTypeScriptImportResolver({ project: './tsconfig.json' })],
    'import-x/parsers': { '@typescript-eslint/parser': ['.ts'] },
  },
  rules: {
    // Another folder is entered only through its index.ts; a file may import files of its own
    // folder and of the folders that enclose it (`../metrics.js` from issuer/grpc/).
    'import-x/no-internal-modules': ['error', { allow: ['**/index.js', '**/test/support/*.js'] }],
    // Imports run one way: bin → issuer → trust-bundles → ca; of the source folders only bin/ (demo,
    // bench) may use test/support (the proxy-faithful client, throw-away PKIs).
    'import-x/no-restricted-paths': [
      'error',
      {
        zones: LAYERS.slice(1).map((layer, i) => ({
          target: `./${layer}`,
          from: [...LAYERS.slice(0, i + 1).map((outer) => `./${outer}`), './test'],
          message: `imports run bin → issuer → trust-bundles → ca; ${layer}/ may not import this`,
        })),
      },
    ],
    'import-x/no-cycle': ['error', { ignoreExternal: true }],
    // sizes (DESIGN.md §6): one concept per file, functions that fit on a screen
    'max-lines': ['error', { max: 400 }],
    'max-lines-per-function': ['error', { max: 80, skipBlankLines: true, skipComments: true }],
  },
};

const wallClock = [
  {
    selector: "CallExpression[callee.object.name='Date'][callee.property.name='now']",
    message: 'Read time through a Clock (ca/clock.ts); Date.now() is only allowed there.',
  },
  {
    selector: "NewExpression[callee.name='Date'][arguments.length=0]",
    message: 'Read time through a Clock (ca/clock.ts); new Date() is only allowed there.',
  },
];

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', '.lanyard/', 'eslint.config.js'] },
  js.configs.recommended,
  ...tseslint.configs.strictTypeChecked,
  {
    languageOptions: {
      parserOptions: {
        project: './tsconfig.json',
        tsconfigRootDir: import.meta.dirname,
      },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': [
        'error',
        {
          allowForKnownSafeCalls: [
            {
              from: 'package',
              name: ['describe', 'it', 'test', 'suite', 'before', 'after'],
              package: 'node:test',
            },
          ],
        },
      ],
      '@typescript-eslint/restrict-template-expressions': [
        'error',
        { allowNumber: true, allowBoolean: true },
      ],
      '@typescript-eslint/no-unnecessary-condition': 'off',
      '@typescript-eslint/no-extraneous-class': 'off',
      'no-restricted-syntax': ['error', ...wallClock],
    },
  },
  boundaries,
  { files: ['ca/clock.ts'], rules: { 'no-restricted-syntax': 'off' } },
  {
    files: ['**/*.mjs'],
    ...tseslint.configs.disableTypeChecked,
    languageOptions: {
      ...tseslint.configs.disableTypeChecked.languageOptions,
      globals: { process: 'readonly', console: 'readonly', setTimeout: 'readonly', URL: 'readonly' },
    },
  },
);

// lib.mjs holds what every interop script shares: reading its settings
// from the environment, checks that throw, and running main with one exit
// status.

import { inspect } from 'node:util';

// env returns the environment variable name, which must be set.
export function env(name) {
  const v = process.env[name];
  if (!v) {
    throw new Error(`environment variable ${name} is not set`);
  }
  return v;
}

// check throws msg unless cond holds.
export function check(cond, msg) {
  if (!cond) {
    throw new Error(msg);
  }
}

// run runs main: exit 0 when it resolves; else the error, its cause, and
// exit 1.
export function run(what, main) {
  main().then(
    () => process.exit(0),
    (err) => {
      console.error(`${what} failed:`, err && err.stack ? err.stack : err);
      if (err && err.cause !== undefined) {
        console.error('cause:', inspect(err.cause, { depth: 6 }));
      }
      process.exit(1);
    },
  );
}

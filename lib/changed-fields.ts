import { isDeepStrictEqual } from 'node:util';

/**
 * The fields of `changes` whose value differs from `current`'s: a PATCH that sets what is already
 * there writes nothing, so `updatedAt` keeps saying when something last changed.
 */
export function changedFields<T extends object>(current: T, changes: Partial<T>): Partial<T> {
  const changed: Partial<T> = {};
  for (const key of Object.keys(changes) as (keyof T)[]) {
    if (!isDeepStrictEqual(current[key], changes[key])) changed[key] = changes[key];
  }
  return changed;
}

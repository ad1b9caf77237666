// Tests wait for the event they expect, with a deadline, instead of sleeping a guessed time:
// a sleep is either too short on a loaded machine (a flaky failure) or too long everywhere.

/**
 * Polls `check` until it gives a truthy value and returns that value. Past the deadline it
 * fails with a sentence naming what it waited for.
 */
export async function waitUntil<T>(
  what: string,
  check: () => T | Promise<T>,
  opts: { timeoutMs?: number; everyMs?: number } = {},
): Promise<NonNullable<T>> {
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const everyMs = opts.everyMs ?? 20;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value as NonNullable<T>;
    if (Date.now() >= deadline) throw new Error(`Waited ${timeoutMs} ms for ${what}, in vain.`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

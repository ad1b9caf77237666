// When a failed delivery is tried again: the first retry after `baseMs` (30 s by default, so
// within the half minute receivers expect), then doubling up to an hour apart, and given up once
// the next try would fall past 24 hours after the event.

export const GIVE_UP_AFTER_MS = 24 * 60 * 60 * 1000;
const MAX_GAP_MS = 60 * 60 * 1000;

/** After failed attempt number `attempt` (1 = first): the time of the next, or null to give up. */
export function nextAttemptAt(attempt: number, createdAt: Date, now: Date, baseMs: number): Date | null {
  const gap = Math.min(baseMs * 2 ** Math.max(0, attempt - 1), MAX_GAP_MS);
  const next = new Date(now.getTime() + gap);
  return next.getTime() - createdAt.getTime() > GIVE_UP_AFTER_MS ? null : next;
}

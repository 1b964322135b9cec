// Reconnection delays: exponential backoff with full jitter, so that after a server restart
// thousands of viewers do not all knock at the same instant. No DOM.

export const BACKOFF = Object.freeze({
  BASE_MS: 500,
  MAX_MS: 15_000,
});

/**
 * How long to wait before reconnection attempt number `attempt` (0 for the first), in ms: a random
 * time between 0 and min(MAX, BASE * 2^attempt). A server that asked for a delay (`retryAfterMs`)
 * gets at least that.
 */
export function reconnectDelay(attempt, { retryAfterMs = 0, random = Math.random } = {}) {
  const ceiling = Math.min(BACKOFF.MAX_MS, BACKOFF.BASE_MS * 2 ** Math.max(0, attempt));
  return Math.max(retryAfterMs, Math.round(random() * ceiling));
}

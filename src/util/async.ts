/** Event-loop helpers. */

/**
 * Lets the event loop turn once. Long synchronous loops that create native objects must call this now and then:
 * N-API finalizers (which free, e.g., each @napi-rs/canvas surface's pixels) run only on the event loop, so a loop
 * that never yields holds every canvas it ever made (measured: 50 KB per 112 px canvas, 11 GB for the default
 * pipeline's 60k samples).
 */
export function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

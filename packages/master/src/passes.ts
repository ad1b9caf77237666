// One pass at a time: a wake-up during a pass asks for one more pass right after it, so bursts
// of notifications coalesce instead of running passes side by side.
import { errorMessage, type MasterContext } from "./context.js";

export class PassRunner {
  private running = false;
  private again = false;

  constructor(
    private readonly ctx: MasterContext,
    private readonly what: string,
    private readonly pass: () => Promise<void>,
  ) {}

  /** Runs a pass now, or right after the one in progress. */
  wake(): void {
    if (this.ctx.stopping()) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = true;
    void (async () => {
      try {
        do {
          this.again = false;
          await this.pass();
        } while (this.again && !this.ctx.stopping());
      } catch (err) {
        this.ctx.log.error({ err: errorMessage(err) }, `${this.what} pass failed; the sweep will try again`);
      } finally {
        this.running = false;
      }
    })();
  }
}

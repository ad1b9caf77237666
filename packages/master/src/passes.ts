// A named pass (dispatch, cancel) run by a SerialRunner, its failures logged.
import { errorMessage, type MasterContext } from "./context.js";
import { SerialRunner } from "./serial-runner.js";

export class PassRunner {
  private readonly runner: SerialRunner;

  constructor(ctx: MasterContext, what: string, pass: () => Promise<void>) {
    this.runner = new SerialRunner(pass, {
      stopping: () => ctx.stopping(),
      onError: (err) => ctx.log.error({ err: errorMessage(err) }, `${what} pass failed; the sweep will try again`),
    });
  }

  /** Runs a pass now, or right after the one in progress. */
  wake(): void {
    void this.runner.run();
  }
}

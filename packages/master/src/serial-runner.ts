// One pass at a time: a request during a pass asks for exactly one more pass right after it
// (however many requests came), so bursts of notifications coalesce instead of running passes
// side by side. Every request's promise settles after a pass that began after the request.

export interface SerialRunnerOptions {
  /** True once the daemon is stopping: no new pass starts. */
  stopping?: () => boolean;
  /** A pass threw: the loop ends (the caller's sweep requests again later). */
  onError: (err: unknown) => void;
}

export class SerialRunner {
  private running: Promise<void> | null = null;
  private again = false;

  constructor(
    private readonly pass: () => Promise<void>,
    private readonly opts: SerialRunnerOptions,
  ) {}

  /** Runs a pass now, or one more right after the pass in progress. Never rejects. */
  run(): Promise<void> {
    const stopping = this.opts.stopping ?? (() => false);
    if (stopping()) return this.running ?? Promise.resolve();
    if (this.running) {
      this.again = true;
      return this.running;
    }
    this.running = (async () => {
      try {
        do {
          this.again = false;
          await this.pass();
        } while (this.again && !stopping());
      } catch (err) {
        this.opts.onError(err);
      } finally {
        this.running = null;
      }
    })();
    return this.running;
  }
}

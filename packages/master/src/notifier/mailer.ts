// Mail through SMTP (nodemailer): smtp:// upgrades with STARTTLS when the server offers it,
// smtps:// is TLS from the start. The URL's password never reaches a log.
import nodemailer, { type Transporter } from "nodemailer";

export interface MailSendOutcome {
  durationMs: number;
  /** The server's last answer, e.g. "250 2.0.0 Ok: queued". */
  response: string | null;
  error: string | null;
  /** 4xx answers and lost connections are worth another try; 5xx refusals are not. */
  retry: boolean;
}

export class Mailer {
  private readonly transport: Transporter;

  constructor(
    smtpUrl: string,
    private readonly from: string,
    timeoutMs: number,
  ) {
    this.transport = nodemailer.createTransport(smtpUrl, {
      connectionTimeout: timeoutMs,
      greetingTimeout: timeoutMs,
      socketTimeout: timeoutMs,
    } as never);
  }

  async send(to: string, subject: string, text: string, deliveryId: string): Promise<MailSendOutcome> {
    const started = performance.now();
    try {
      const info = await this.transport.sendMail({
        from: this.from,
        to,
        subject,
        text,
        // The same id on every retry, so a mail that did arrive before a lost answer can be recognised.
        messageId: `<${deliveryId}@lexbuilder>`,
        headers: { "X-Lexbuilder-Delivery": deliveryId },
      });
      return { durationMs: performance.now() - started, response: String(info.response ?? "").slice(0, 500), error: null, retry: false };
    } catch (err) {
      const e = err as { responseCode?: number; response?: string; code?: string; message?: string };
      const code = e.responseCode ?? null;
      return {
        durationMs: performance.now() - started,
        response: e.response ? String(e.response).slice(0, 500) : null,
        error: code ? `The mail server refused the message (${code}).` : `The mail server could not be reached: ${e.code ?? e.message ?? "unknown error"}.`,
        retry: code === null || (code >= 400 && code < 500),
      };
    }
  }

  close(): void {
    this.transport.close();
  }
}

/** The URL with its password taken out, for logs and the console. */
export function redactSmtpUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = "***";
    return u.toString();
  } catch {
    return "(an SMTP URL)";
  }
}

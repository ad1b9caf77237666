// What a notification says: the webhook JSON body, the Slack/Mattermost text and the mail. Pure:
// rendered once when an event is fanned out, so every retry sends the same bytes.
import type { Artifact, OutboxEvent } from "@lexbuilder/shared-models/db";

export interface RenderContext {
  /** LEXBUILDER_PUBLIC_URL without a trailing slash. */
  publicUrl: string;
  artifacts: Pick<Artifact, "id" | "name" | "kind" | "size" | "sha256">[];
  /** The last lines of a failed build's log (mail only). */
  logTail?: string;
}

const RESULT_WORD: Record<string, string> = {
  "build.queued": "was queued",
  "build.started": "started",
  "build.succeeded": "succeeded",
  "build.failed": "failed",
  "build.cancelled": "was cancelled",
  "release.published": "was released",
};

export function buildUrl(publicUrl: string, buildId: number): string {
  return `${publicUrl}/builds/${buildId}`;
}

/** Seconds between start (or request) and finish, when both are known. */
export function durationSeconds(b: NonNullable<OutboxEvent["build"]>): number | null {
  const from = b.startedAt ?? b.requestedAt;
  if (!b.finishedAt || !from) return null;
  return Math.max(0, Math.round((Date.parse(b.finishedAt) - Date.parse(from)) / 1000));
}

export function humanDuration(s: number | null): string {
  if (s === null) return "";
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${s % 60} s`;
  return `${Math.floor(m / 60)} h ${m % 60} min`;
}

/** The JSON body a webhook receives. */
export function webhookPayload(ev: OutboxEvent, ctx: RenderContext): Record<string, unknown> {
  const base: Record<string, unknown> = { event: ev.kind, occurredAt: ev.createdAt.toISOString() };
  if (ev.kind === "webhook.test") {
    return { ...base, project: ev.project ? projectPart(ev, ctx) : null, message: "This is a test delivery from lexbuilder." };
  }
  if (ev.kind === "builder.disabled") {
    return { ...base, builder: { name: ev.builder?.name ?? String(ev.facts.name ?? ""), reason: ev.facts.reason ?? null, url: `${ctx.publicUrl}/builders` } };
  }
  const b = ev.build;
  return {
    ...base,
    project: ev.project ? projectPart(ev, ctx) : null,
    build: b
      ? {
          id: b.id,
          // The state this event is about (the build may have moved on since).
          state: String(ev.facts.state ?? b.state),
          result: ev.kind === "build.succeeded" || ev.kind === "release.published" ? "success" : ev.kind === "build.failed" ? "failure" : ev.kind === "build.cancelled" ? "cancelled" : null,
          architecture: b.architecture,
          reason: b.reason,
          milestone: b.milestone,
          configRef: b.configRef,
          configRevision: b.configRevision,
          attempt: Number(ev.facts.attempt ?? b.attempt),
          builder: b.builder,
          failureKind: ev.kind === "build.failed" ? b.failureKind : null,
          failureMessage: ev.kind === "build.failed" ? b.failureMessage : null,
          requestedAt: b.requestedAt,
          startedAt: b.startedAt,
          finishedAt: ev.kind === "build.queued" || ev.kind === "build.started" ? null : b.finishedAt,
          durationSeconds: ev.kind === "build.queued" || ev.kind === "build.started" ? null : durationSeconds(b),
          url: buildUrl(ctx.publicUrl, b.id),
          files: ctx.artifacts.map((a) => ({ name: a.name, kind: a.kind, size: Number(a.size), sha256: a.sha256, url: `${ctx.publicUrl}/artifacts/${a.id}` })),
        }
      : null,
    ...(ev.kind === "release.published" && ev.project ? { release: { milestone: ev.facts.milestone ?? b?.milestone ?? null, url: releaseUrl(ev, ctx) } } : {}),
  };
}

function projectPart(ev: OutboxEvent, ctx: RenderContext) {
  const p = ev.project!;
  return { name: p.name, title: p.title, url: `${ctx.publicUrl}/projects/${encodeURIComponent(p.name)}` };
}

function releaseUrl(ev: OutboxEvent, ctx: RenderContext): string {
  const milestone = String(ev.facts.milestone ?? ev.build?.milestone ?? "");
  return `${ctx.publicUrl}/projects/${encodeURIComponent(ev.project!.name)}/releases/${encodeURIComponent(milestone)}`;
}

/** One line saying what happened, for chat and mail subjects. */
export function headline(ev: OutboxEvent): string {
  if (ev.kind === "webhook.test") return `lexbuilder test delivery${ev.project ? ` for ${ev.project.name}` : ""}`;
  if (ev.kind === "builder.disabled") return `Builder ${ev.builder?.name ?? ev.facts.name ?? "?"} was disabled${ev.facts.reason ? `: ${String(ev.facts.reason)}` : ""}`;
  const b = ev.build;
  const project = ev.project?.name ?? "?";
  if (!b) return `${project}: ${ev.kind}`;
  if (ev.kind === "release.published") return `${project} ${String(ev.facts.milestone ?? b.milestone)} released (build #${b.id}, ${b.architecture})`;
  const took = ev.kind === "build.succeeded" || ev.kind === "build.failed" || ev.kind === "build.cancelled" ? humanDuration(durationSeconds(b)) : "";
  return `${project} build #${b.id} ${RESULT_WORD[ev.kind] ?? ev.kind} (${b.architecture}${took ? `, ${took}` : ""})`;
}

/** Slack and Mattermost read {"text": …} with <url|label> links. */
export function slackPayload(ev: OutboxEvent, ctx: RenderContext): { text: string } {
  const mark = ev.kind === "build.succeeded" || ev.kind === "release.published" ? ":white_check_mark:" : ev.kind === "build.failed" ? ":x:" : ev.kind === "builder.disabled" ? ":warning:" : ":information_source:";
  const link = ev.build ? ` <${buildUrl(ctx.publicUrl, ev.build.id)}|build #${ev.build.id}>` : "";
  const why = ev.kind === "build.failed" && ev.build?.failureMessage ? `\n${ev.build.failureMessage}` : "";
  return { text: `${mark} ${escapeSlack(headline(ev))}${link}${escapeSlack(why)}` };
}

/** Slack's three control characters. */
function escapeSlack(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

export interface Mail {
  subject: string;
  text: string;
}

/** A result mail: project, build, result and duration in the subject; the link; a failure's last log lines. */
export function resultMail(ev: OutboxEvent, ctx: RenderContext): Mail {
  const lines = [headline(ev) + "."];
  if (ev.build) {
    const b = ev.build;
    lines.push("", `Build:        ${buildUrl(ctx.publicUrl, b.id)}`, `Architecture: ${b.architecture}`, `Ref:          ${b.configRef}${b.configRevision ? ` (${b.configRevision.slice(0, 12)})` : ""}`);
    if (b.builder) lines.push(`Builder:      ${b.builder}`);
    if (ev.kind === "release.published") lines.push(`Release:      ${releaseUrl(ev, ctx)}`);
    if (ev.kind === "build.failed" && b.failureMessage) lines.push("", `Why: ${b.failureMessage}`);
    if (ev.kind === "build.failed" && ctx.logTail) lines.push("", "The log ends with:", "", ...ctx.logTail.split("\n").map((l) => `    ${l}`));
  }
  lines.push("", "--", `You get this mail because you subscribed to ${ev.project?.name ?? "this project"} on lexbuilder; change it on the project page.`);
  return { subject: `[lexbuilder] ${headline(ev)}`, text: lines.join("\n") + "\n" };
}

// NOTIFY channels and their payloads: the webapp and admin CLI wake the master; the master
// wakes the webapp's live views.

export const Channel = {
  /** A build was requested, cancelled or changed state. Payload: {"id":n,"state":"..."} */
  builds: "lexbuilder_builds",
  /** A builder was added, enabled, disabled or changed. Payload: {"id":n} */
  builders: "lexbuilder_builders",
  /** Log bytes were appended. Payload: {"id":n,"size":n} */
  log: "lexbuilder_log",
  /** A project's schedule or settings changed. Payload: {"id":n} */
  projects: "lexbuilder_projects",
  /** A test event or a redelivery was asked for: the master's notifier looks now. Payload: {} */
  notifications: "lexbuilder_notifications",
} as const;
export type Channel = (typeof Channel)[keyof typeof Channel];

// The master↔slave XML-RPC contract. Both daemons import these
// types; a change goes into master and slave together, or they stop agreeing.

export const PROTOCOL_VERSION = "1";

/** The slave's own state machine (launchpad-buildd's). */
export const SlaveState = {
  IDLE: "IDLE",
  BUILDING: "BUILDING",
  ABORTING: "ABORTING",
  WAITING: "WAITING",
} as const;
export type SlaveState = (typeof SlaveState)[keyof typeof SlaveState];

/** How a finished build on the slave ended. */
export const BuildResult = {
  OK: "OK",
  BUILDFAIL: "BUILDFAIL",
  CONFIGFAIL: "CONFIGFAIL",
  BUILDERFAIL: "BUILDERFAIL",
  ABORTED: "ABORTED",
} as const;
export type BuildResult = (typeof BuildResult)[keyof typeof BuildResult];

/** What a result file is, so the master and webapp can label it. */
export type FileKind = "image" | "manifest" | "files" | "contents" | "log" | "other";

export interface ResultFile {
  name: string;
  sha256: string;
  /** Decimal string: XML-RPC int is 32-bit. */
  size: string;
  kind: FileKind;
}

export interface InfoResult {
  protocolVersion: string;
  builderVersion: string;
  hostname: string;
  architectures: string[];
  builderTypes: string[];
  liveBuildVersion: string;
  ready: boolean;
  notReadyReason?: string;
  /** Decimal string. */
  freeDiskBytes: string;
  /** container: each build runs in a throwaway container; none: on the host as root. Absent from older slaves. */
  isolation?: "container" | "none";
}

export interface StatusResult {
  state: SlaveState;
  /** Increases on every change of the slave's state, result or log; long-poll key. */
  version: number;
  cookie?: string;
  result?: BuildResult;
  message?: string;
  /** Decimal string: bytes of log written so far. */
  logSize?: string;
  logTail?: string;
  configRevision?: string;
  files?: ResultFile[];
  /** ISO 8601 with offset. */
  startedAt?: string;
  finishedAt?: string;
}

export interface BuildArgs {
  project: string;
  configUrl: string;
  configRef?: string;
  architecture: string;
  suite?: string;
  env?: Record<string, string>;
  timeoutSeconds?: number;
}

export interface BuildAccepted {
  state: "BUILDING";
  cookie: string;
}

export interface Methods {
  echo: { args: unknown[]; result: unknown[] };
  info: { args: []; result: InfoResult };
  status: { args: [] | [knownVersion: number] | [knownVersion: number, waitSeconds: number]; result: StatusResult };
  build: { args: [cookie: string, args: BuildArgs]; result: BuildAccepted };
  abort: { args: [cookie: string]; result: { state: "ABORTING" | "WAITING" | "IDLE" } };
  clean: { args: [cookie: string]; result: { state: "IDLE" } };
}
export type MethodName = keyof Methods;
export const METHOD_NAMES: readonly MethodName[] = ["echo", "info", "status", "build", "abort", "clean"];

/** Fault codes; faultString is always a sentence a person can act on. */
export const FaultCode = {
  PARSE_ERROR: -32700,
  METHOD_NOT_FOUND: -32601,
  INVALID_PARAMS: -32602,
  INTERNAL_ERROR: -32500,
  BUSY: 1,
  UNSUPPORTED_ARCH: 2,
  NOT_READY: 3,
  WRONG_STATE: 4,
  UNKNOWN_COOKIE: 5,
} as const;
export type FaultCode = (typeof FaultCode)[keyof typeof FaultCode];

/** A fault as it travels: handlers throw it, the client rejects with it. */
export class RpcFault extends Error {
  constructor(
    readonly faultCode: number,
    readonly faultString: string,
  ) {
    super(faultString);
    this.name = "RpcFault";
  }
}

/** Longest long-poll a slave honours, seconds. */
export const MAX_STATUS_WAIT_SECONDS = 30;
/** Largest XML-RPC request body the slave accepts. */
export const MAX_RPC_BODY_BYTES = 1024 * 1024;
/** Bytes of log returned in status().logTail. */
export const LOG_TAIL_BYTES = 2048;
/** Cookie shape: "<build id>-<attempt>", e.g. "42-1". */
export const COOKIE_PATTERN = /^[1-9][0-9]{0,17}-[1-9][0-9]{0,3}$/;
export const SHA256_PATTERN = /^[0-9a-f]{64}$/;

// The chaos soak: the whole stack (PostgreSQL, N slaves with the fake lb behind cutting proxies,
// a master and a --standby, the webapp) takes build requests through the JSON API while a
// driver kills -9 and restarts slaves, the active master and PostgreSQL, and cuts slave
// connections (downloads included). Then faults stop, everything settles, and the invariants
// are checked. Returns the counts and the list of violations (empty: passed).
import { createHash, randomBytes } from "node:crypto";
import { chmodSync, createReadStream, mkdirSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import {
  addBuilder,
  createApiToken,
  createPool,
  createProject,
  createUser,
  migrate,
  type Pool,
} from "@lexbuilder/shared-models/db";
import { freePort } from "@lexbuilder/shared-models/embedded-postgres";
import { hashPassword } from "@lexbuilder/shared-models/passwords";
import { RpcClient } from "@lexbuilder/shared-models/protocol";
import { TERMINAL_BUILD_STATES } from "@lexbuilder/shared-models/states";
import { makeConfigRepo } from "../../packages/slave/test/helpers.js";
import {
  buildProcesses,
  CuttingProxy,
  Daemon,
  MASTER_MAIN,
  mountsBelow,
  Postgres,
  readJsonLog,
  rng,
  sleep,
  slaveSpec,
  WEBAPP_MAIN,
} from "./stack.js";

export interface SoakProfile {
  name: string;
  seed: number;
  slaves: number;
  requests: number;
  /** Requests are spread over this many ms. */
  submitOverMs: number;
  /** Faults continue this long after the last request was accepted. */
  chaosTailMs: number;
  /** Mean pause between two faults. */
  faultEveryMs: number;
  /** After faults stop, all builds must be final within this. */
  settleMs: number;
  /** Hard limit of the whole run. */
  deadlineMs: number;
  /** Random payload in each image (so downloads can be cut in the middle). */
  payloadBytes: number;
  /** Probability that a proxied RPC or log answer is cut at a random point. */
  cutProbability: number;
  /** The same for file downloads. */
  downloadCutProbability: number;
}

export const PROFILES: Record<string, SoakProfile> = {
  full: {
    name: "full",
    seed: 7,
    slaves: 5,
    requests: 220,
    submitOverMs: 300_000,
    chaosTailMs: 30_000,
    faultEveryMs: 5_000,
    settleMs: 900_000,
    deadlineMs: 40 * 60_000,
    payloadBytes: 768 * 1024,
    cutProbability: 0.03,
    downloadCutProbability: 0.25,
  },
  short: {
    name: "short",
    seed: 11,
    slaves: 4,
    requests: 16,
    submitOverMs: 20_000,
    chaosTailMs: 10_000,
    faultEveryMs: 3_000,
    settleMs: 150_000,
    deadlineMs: 5 * 60_000 - 30_000,
    payloadBytes: 512 * 1024,
    cutProbability: 0.03,
    downloadCutProbability: 0.25,
  },
};

export interface SoakReport {
  profile: string;
  seed: number;
  durationS: number;
  requests: number;
  ambiguousPosts: number;
  builds: number;
  outcomes: Record<string, number>;
  kills: Record<string, number>;
  ownExits: Record<string, number>;
  cuts: { connections: number; downloadCuts: number; otherCuts: number; cutAllEvents: number };
  requeues: number;
  attempts: number;
  disabledBuilders: string[];
  verifiedFiles: number;
  /** Finished builds whose outbox holds exactly one event for how they ended. */
  endEvents: number;
  verifiedBytes: number;
  apiDownloadsVerified: number;
  procSamples: number;
  violations: string[];
  workDir: string;
}

interface RequestRecord {
  tag: string;
  project: string;
  id: number | null;
  ambiguous: number;
  attempts: number;
}

const TERMINAL = new Set<string>(TERMINAL_BUILD_STATES as readonly string[]);

function autoConfig(payloadBytes: number): string {
  // A config branch's auto/config: it prepares the chroot (a random payload, so every image
  // differs and is big enough to be cut mid-download) and does what `lb config` would.
  return [
    "#!/bin/sh",
    "set -e",
    "mkdir -p chroot config .build",
    `head -c ${payloadBytes} /dev/urandom > chroot/payload.bin`,
    'echo "PROJECT=$PROJECT ARCH=$ARCH" > config/fake-lb-env',
    "touch .build/config",
    'echo "P: auto/config prepared the chroot"',
    "",
  ].join("\n");
}

export async function runSoak(profile: SoakProfile, log: (line: string) => void = () => {}): Promise<SoakReport> {
  const t0 = Date.now();
  const random = rng(profile.seed);
  const pick = <T>(xs: T[]): T => xs[Math.floor(random() * xs.length)]!;
  const between = (a: number, b: number) => a + random() * (b - a);
  const work = mkdtempSync(join(tmpdir(), `lexbuilder-chaos-${profile.name}-`));
  chmodSync(work, 0o755); // the postgres user must reach its data directory
  const violations: string[] = [];
  const violate = (v: string) => {
    violations.push(v);
    log(`VIOLATION: ${v}`);
  };

  // --- PostgreSQL and schema -----------------------------------------------------------------
  const postgres = new Postgres(join(work, "pg", "data"));
  await postgres.start();
  {
    const admin = new pg.Client({ connectionString: postgres.adminUrl });
    await admin.connect();
    await admin.query("CREATE DATABASE lexbuilder");
    await admin.end();
  }
  const databaseUrl = postgres.url("lexbuilder");
  let pool: Pool = createPool(databaseUrl, { max: 4, applicationName: "chaos-driver" });
  await migrate(pool);

  const artifactsDir = join(work, "artifacts");
  mkdirSync(artifactsDir, { recursive: true });
  const hash = await hashPassword("chaos chaos chaos chaos");
  const user = await createUser(pool, { name: "chaos", role: "admin", passwordHash: hash });
  const { token: apiToken } = await createApiToken(pool, user.id, "chaos soak");

  // Projects: two that succeed (1 s and 2 s builds), one whose build fails.
  const repo = makeConfigRepo({
    quick: { "fake-lb.conf": "sleep=1\n", "auto/config": autoConfig(profile.payloadBytes) },
    slow: { "fake-lb.conf": "sleep=2\n", "auto/config": autoConfig(profile.payloadBytes) },
    broken: { "fake-lb.conf": "sleep=1\nfail-at=build\nexit=1\n", "auto/config": autoConfig(1024) },
  });
  const projects = [
    { name: "chaos-quick", ref: "quick", weight: 0.5 },
    { name: "chaos-slow", ref: "slow", weight: 0.4 },
    { name: "chaos-broken", ref: "broken", weight: 0.1 },
  ];
  for (const p of projects) {
    await createProject(pool, { name: p.name, configUrl: repo.url, configRef: p.ref, architecture: "amd64" });
  }

  // --- Slaves behind cutting proxies --------------------------------------------------------
  const slaves: { name: string; dir: string; daemon: Daemon; proxy: CuttingProxy; port: number; token: string }[] = [];
  // Started side by side: on a busy machine a node daemon takes seconds to come up.
  const started = await Promise.all(
    Array.from({ length: profile.slaves }, async (_, i) => {
      const name = `slave${i}`;
      const dir = join(work, name);
      const port = await freePort();
      const proxyPort = await freePort();
      const daemon = new Daemon(slaveSpec(name, dir, port));
      await daemon.start([], true, 120_000);
      const proxy = new CuttingProxy(proxyPort, port, random);
      await proxy.start();
      const token = readFileSync(join(dir, "slave.token"), "utf8").trim();
      return { name, dir, daemon, proxy, port, proxyPort, token };
    }),
  );
  for (const s of started) {
    await addBuilder(pool, { name: s.name, url: `http://127.0.0.1:${s.proxyPort}`, token: s.token });
    slaves.push(s);
  }

  // --- Masters and the webapp -----------------------------------------------------------------
  const masterEnv = (metricsPort: number): Record<string, string> => ({
    DATABASE_URL: databaseUrl,
    LEXBUILDER_ARTIFACTS_DIR: artifactsDir,
    LEXBUILDER_MASTER_METRICS_LISTEN: `127.0.0.1:${metricsPort}`,
    LEXBUILDER_MASTER_SWEEP_SECONDS: "5",
    LEXBUILDER_MASTER_CONTROL_TIMEOUT: "10",
    LEXBUILDER_MASTER_CANCEL_DEADLINE: "60",
    LOG_LEVEL: "info",
  });
  const masters: Daemon[] = [];
  for (const m of ["masterA", "masterB"]) {
    masters.push(
      new Daemon({
        name: m,
        script: MASTER_MAIN,
        env: masterEnv(await freePort()),
        ready: /holding the master lock|standing by to take over/,
        logFile: join(work, m, "master.log"),
      }),
    );
  }
  await masters[0]!.start([], true, 120_000);
  await masters[1]!.start(["--standby"], false);

  const webPort = await freePort();
  const webapp = new Daemon({
    name: "webapp",
    script: WEBAPP_MAIN,
    env: {
      DATABASE_URL: databaseUrl,
      LEXBUILDER_WEBAPP_LISTEN: `127.0.0.1:${webPort}`,
      LEXBUILDER_WEBAPP_SECRET_FILE: join(work, "webapp.secret"),
      LEXBUILDER_ARTIFACTS_DIR: artifactsDir,
      LOG_LEVEL: "info",
    },
    ready: /web console listening/,
    logFile: join(work, "webapp", "webapp.log"),
  });
  writeFileSync(join(work, "webapp.secret"), randomBytes(32).toString("hex"));
  await webapp.start([], true, 120_000);
  const base = `http://127.0.0.1:${webPort}`;
  log(`stack up in ${((Date.now() - t0) / 1000).toFixed(1)} s: ${profile.slaves} slaves, 2 masters, webapp ${base}, work ${work}`);

  const hardDeadline = t0 + profile.deadlineMs;
  let faultsOn = true;
  let stopping = false;

  // --- Supervisor: a service manager's Restart=always for daemons that exit by themselves ----
  const restartLocks = new Set<Daemon>();
  const supervise = async () => {
    while (!stopping) {
      for (const d of [...masters, webapp]) {
        if (!d.running && !restartLocks.has(d)) {
          restartLocks.add(d);
          void (async () => {
            await sleep(500);
            try {
              if (!stopping && !d.running) await d.start(d === webapp ? [] : ["--standby"], false);
            } catch (err) {
              log(`restart of ${d.spec.name} failed: ${(err as Error).message}`);
            } finally {
              restartLocks.delete(d);
            }
          })();
        }
      }
      await sleep(250);
    }
  };
  const supervisor = supervise();

  // --- Observers: state history from the database, build processes from /proc --------------
  const seenTerminal = new Map<number, string>();
  let procSamples = 0;
  const procOverlaps = new Set<string>();
  const observe = async () => {
    while (!stopping) {
      try {
        const { rows } = await pool.query<{ id: number; state: string }>("SELECT id, state FROM builds");
        for (const r of rows) {
          const before = seenTerminal.get(r.id);
          if (before && before !== r.state) violate(`build ${r.id} was ${before} (final) and later ${r.state}`);
          if (TERMINAL.has(r.state)) seenTerminal.set(r.id, r.state);
        }
      } catch {
        // PostgreSQL is down; the next round sees it again.
        pool.end().catch(() => {});
        pool = createPool(databaseUrl, { max: 4, applicationName: "chaos-driver" });
      }
      const bySlave = new Map<string, Set<string>>();
      for (const p of buildProcesses()) {
        const s = slaves.find((x) => p.cwd === x.dir || p.cwd.startsWith(x.dir + "/"));
        if (!s) continue;
        const id = p.cookie.split("-")[0]!;
        if (!bySlave.has(id)) bySlave.set(id, new Set());
        bySlave.get(id)!.add(s.name);
      }
      procSamples += 1;
      for (const [id, names] of bySlave) {
        if (names.size > 1) {
          const key = `${id}:${[...names].sort().join(",")}`;
          if (!procOverlaps.has(key)) {
            procOverlaps.add(key);
            violate(`processes of build ${id} ran on ${[...names].sort().join(" and ")} at the same time`);
          }
        }
      }
      await sleep(300);
    }
  };
  const observer = observe();

  // --- Requests through the API -----------------------------------------------------------------
  const requests: RequestRecord[] = [];
  const submit = async () => {
    for (let i = 0; i < profile.requests; i++) {
      const r = random();
      let acc = 0;
      const project = projects.find((p) => (acc += p.weight) >= r)?.name ?? projects[0]!.name;
      const rec: RequestRecord = { tag: `chaos-${i}`, project, id: null, ambiguous: 0, attempts: 0 };
      requests.push(rec);
      void (async () => {
        while (rec.id === null && Date.now() < hardDeadline) {
          rec.attempts += 1;
          try {
            const res = await fetch(`${base}/api/v1/projects/${project}/builds`, {
              method: "POST",
              // The same key on every attempt: a request whose answer was lost is not queued twice.
              headers: { authorization: `Bearer ${apiToken}`, "content-type": "application/json", "idempotency-key": rec.tag },
              body: JSON.stringify({ milestone: rec.tag }),
              signal: AbortSignal.timeout(15_000),
            });
            const body = (await res.json().catch(() => null)) as { id?: number; error?: string } | null;
            if ((res.status === 201 || (res.status === 200 && res.headers.get("idempotent-replayed") === "true")) && body?.id) {
              if (res.status === 200) rec.ambiguous += 1;
              rec.id = body.id;
              break;
            }
            if (res.status === 409) {
              // An earlier attempt did go through: it is queued under this tag.
              rec.ambiguous += 1;
            } else if (res.status < 500) {
              violate(`request ${rec.tag} answered ${res.status}: ${JSON.stringify(body)}`);
              break;
            } else {
              rec.ambiguous += 1;
            }
          } catch {
            // webapp or database down: the outcome of this POST is unknown.
            rec.ambiguous += 1;
          }
          await sleep(1000);
        }
      })();
      await sleep(profile.submitOverMs / profile.requests);
    }
  };

  // --- Faults ---------------------------------------------------------------------------------------
  let cutAllEvents = 0;
  const activeMaster = async (): Promise<Daemon | null> => {
    for (const m of masters) {
      if (!m.running) continue;
      const port = m.spec.env.LEXBUILDER_MASTER_METRICS_LISTEN!.split(":")[1];
      const ok = await fetch(`http://127.0.0.1:${port}/healthz`, { signal: AbortSignal.timeout(5000) }).then(
        (r) => r.status === 200,
        () => false,
      );
      if (ok) return m;
    }
    // None answers in time (a busy machine): take any running one; it may hold the lock.
    return masters.find((m) => m.running) ?? null;
  };
  const faults = async () => {
    for (const s of slaves) {
      s.proxy.cutProbability = profile.cutProbability;
      s.proxy.downloadCutProbability = profile.downloadCutProbability;
      s.proxy.maxCutBytes = profile.payloadBytes;
    }
    // The first four faults are one of each kind (so even a short run has them all), then random.
    const order = [0.2, 0.5, 0.7, 0.9];
    const restarting = new Set<string>();
    const restarts: Promise<void>[] = [];
    while (faultsOn && Date.now() < hardDeadline) {
      await sleep(between(0.5, 1.5) * profile.faultEveryMs);
      if (!faultsOn) break;
      const r = order.shift() ?? random();
      if (r < 0.45) {
        const candidates = slaves.filter((x) => !restarting.has(x.name));
        if (candidates.length === 0) continue;
        const s = pick(candidates);
        log(`kill -9 ${s.name}`);
        restarting.add(s.name);
        await s.daemon.kill9();
        // Restarted in the background: a slave stops what is left of a killed build before it
        // listens again, which takes a while on a busy machine; faults go on meanwhile.
        restarts.push(
          (async () => {
            await sleep(between(300, 2500));
            await s.daemon.start([], true, 180_000).catch((err: Error) => violate(`${s.name} did not restart: ${err.message}`));
            restarting.delete(s.name);
          })(),
        );
      } else if (r < 0.65) {
        const m = await activeMaster();
        if (m) {
          log(`kill -9 the master ${m.spec.name}`);
          await m.kill9();
        }
      } else if (r < 0.77) {
        log("kill -9 PostgreSQL");
        await postgres.kill9();
        await sleep(between(500, 3000));
        await postgres.start().catch((err: Error) => violate(`PostgreSQL did not restart: ${err.message}`));
      } else {
        const s = pick(slaves);
        const n = s.proxy.cutAll();
        cutAllEvents += 1;
        log(`cut ${n} connection(s) to ${s.name}`);
      }
    }
    await Promise.all(restarts);
    for (const s of slaves) {
      s.proxy.cutProbability = 0;
      s.proxy.downloadCutProbability = 0;
    }
  };

  const faulting = faults();
  await submit();
  // Wait until every request has its build id (or the deadline).
  while (requests.some((r) => r.id === null) && Date.now() < hardDeadline) await sleep(500);
  await sleep(Math.min(profile.chaosTailMs, Math.max(0, hardDeadline - Date.now())));
  faultsOn = false;
  await faulting;
  // Everything must be up again for the settle phase (a restart may be pending).
  for (const s of slaves) if (!s.daemon.running) await s.daemon.start().catch(() => {});
  if (!postgres.postmasterPid()) await postgres.start().catch(() => {});
  log(`faults stopped at ${((Date.now() - t0) / 1000).toFixed(0)} s; settling`);

  // --- Settle: every build final, every slave idle -----------------------------------------------
  const settleDeadline = Math.min(Date.now() + profile.settleMs, hardDeadline);
  let open: { id: number; state: string }[] = [];
  for (;;) {
    try {
      const { rows } = await pool.query<{ id: number; state: string }>(
        "SELECT id, state FROM builds WHERE state NOT IN ('SUCCEEDED', 'FAILED', 'CANCELLED') ORDER BY id",
      );
      open = rows;
      if (rows.length === 0 && requests.every((r) => r.id !== null)) break;
    } catch {
      pool.end().catch(() => {});
      pool = createPool(databaseUrl, { max: 4, applicationName: "chaos-driver" });
    }
    if (Date.now() > settleDeadline) break;
    await sleep(1000);
  }
  for (const b of open) violate(`build ${b.id} is still ${b.state} when the settle time ended (${profile.settleMs / 1000} s after the faults stopped, or the run's deadline)`);
  for (const r of requests) if (r.id === null) violate(`request ${r.tag} never got an answer with a build id`);
  // Idle slaves: give the master a moment to clean the last ones.
  const slaveIdleDeadline = Date.now() + 30_000;
  const slaveStates = new Map<string, string>();
  for (const s of slaves) {
    const client = new RpcClient({ url: `http://127.0.0.1:${s.port}`, token: s.token, timeoutMs: 10_000 });
    for (;;) {
      const st = await client.call("status").catch((err: Error) => ({ state: `unreachable (${err.message})` }));
      slaveStates.set(s.name, String(st.state));
      if (st.state === "IDLE" || Date.now() > slaveIdleDeadline) break;
      await sleep(500);
    }
    client.close();
  }
  stopping = true;
  await observer;
  await supervisor;

  // --- Checks ------------------------------------------------------------------------------------------
  for (const [name, state] of slaveStates) if (state !== "IDLE") violate(`${name} is stuck in ${state}`);
  const { rows: builderRows } = await pool.query<{ name: string; state: string; current_build_id: number | null; enabled: boolean; disabled_reason: string | null }>(
    "SELECT name, state, current_build_id, enabled, disabled_reason FROM builders ORDER BY name",
  );
  for (const b of builderRows) {
    if (b.current_build_id !== null) violate(`builder ${b.name} still holds build ${b.current_build_id}`);
  }
  const disabledBuilders = builderRows.filter((b) => !b.enabled).map((b) => `${b.name}: ${b.disabled_reason}`);

  const { rows: builds } = await pool.query<{
    id: number;
    state: string;
    failure_kind: string | null;
    failure_message: string | null;
    milestone: string | null;
    requeue_count: number;
    attempt: number;
  }>("SELECT id, state, failure_kind, failure_message, milestone, requeue_count, attempt FROM builds ORDER BY id");
  const outcomes: Record<string, number> = {};
  for (const b of builds) {
    const k = b.state === "FAILED" ? `FAILED/${b.failure_kind}` : b.state;
    outcomes[k] = (outcomes[k] ?? 0) + 1;
  }
  // Each request: exactly one build under its tag (the Idempotency-Key makes a repeated request
  // whose answer was lost return the first build), each final.
  const byTag = new Map<string, typeof builds>();
  for (const b of builds) {
    if (!b.milestone) {
      violate(`build ${b.id} was not requested by the soak`);
      continue;
    }
    if (!byTag.has(b.milestone)) byTag.set(b.milestone, []);
    byTag.get(b.milestone)!.push(b);
  }
  let duplicates = 0;
  for (const r of requests) {
    const got = byTag.get(r.tag) ?? [];
    if (got.length === 0) violate(`request ${r.tag} has no build`);
    if (got.length > 1) {
      duplicates += got.length - 1;
      violate(`request ${r.tag} has ${got.length} builds (${got.map((b) => b.id).join(", ")}) although every attempt carried one Idempotency-Key`);
    }
    if (r.id !== null && !got.some((b) => b.id === r.id)) violate(`request ${r.tag} was answered with build ${r.id}, which does not carry its tag`);
    for (const b of got) if (!TERMINAL.has(b.state)) violate(`build ${b.id} (${r.tag}) ended the run in ${b.state}`);
  }
  // The broken project must fail as a build failure, the others never with kind build/config.
  const projectOf = new Map(requests.map((r) => [r.tag, r.project]));
  for (const b of builds) {
    const project = projectOf.get(b.milestone ?? "");
    if (project === "chaos-broken" && b.state === "SUCCEEDED") violate(`build ${b.id} of chaos-broken SUCCEEDED although its lb build fails`);
    if (project !== "chaos-broken" && b.state === "FAILED" && (b.failure_kind === "build" || b.failure_kind === "config")) {
      violate(`build ${b.id} of ${project} FAILED as ${b.failure_kind}: ${b.failure_message}`);
    }
  }

  // The outbox: every finished build wrote exactly one event for how it ended (written by the
  // trigger in the transaction of the change, so kills of the master lose and double none).
  const endEvent: Record<string, string> = { SUCCEEDED: "build.succeeded", FAILED: "build.failed", CANCELLED: "build.cancelled" };
  const { rows: events } = await pool.query<{ build_id: string; kind: string; n: number }>(
    "SELECT build_id, kind, count(*)::int AS n FROM outbox_events WHERE kind IN ('build.succeeded', 'build.failed', 'build.cancelled') GROUP BY build_id, kind",
  );
  const eventsOf = new Map<number, { kind: string; n: number }[]>();
  for (const e of events) eventsOf.set(Number(e.build_id), [...(eventsOf.get(Number(e.build_id)) ?? []), { kind: e.kind, n: e.n }]);
  let endEvents = 0;
  for (const b of builds.filter((x) => TERMINAL.has(x.state))) {
    const got = eventsOf.get(Number(b.id)) ?? [];
    const want = endEvent[b.state];
    if (got.length !== 1 || got[0]!.kind !== want || got[0]!.n !== 1) {
      violate(`build ${b.id} ended ${b.state} with outbox events ${JSON.stringify(got)}; exactly one ${want} was expected`);
    } else endEvents++;
  }

  // Files of every SUCCEEDED build exist and match their sha256 and size.
  let verifiedFiles = 0;
  let verifiedBytes = 0;
  const { rows: artifacts } = await pool.query<{ id: number; build_id: number; name: string; kind: string; sha256: string; size: number; stored_path: string }>(
    "SELECT a.id, a.build_id, a.name, a.kind, a.sha256, a.size, a.stored_path FROM artifacts a JOIN builds b ON b.id = a.build_id WHERE b.state = 'SUCCEEDED' ORDER BY a.id",
  );
  const filesOf = new Map<number, typeof artifacts>();
  for (const a of artifacts) {
    if (!filesOf.has(a.build_id)) filesOf.set(a.build_id, []);
    filesOf.get(a.build_id)!.push(a);
  }
  for (const b of builds.filter((x) => x.state === "SUCCEEDED")) {
    const files = filesOf.get(b.id) ?? [];
    if (!files.some((f) => f.kind === "image")) violate(`SUCCEEDED build ${b.id} has no image file`);
    for (const f of files) {
      const path = join(artifactsDir, f.stored_path);
      if (!existsSync(path)) {
        violate(`file ${f.name} of build ${b.id} is missing (${path})`);
        continue;
      }
      const size = statSync(path).size;
      const sum = await sha256File(path);
      if (size !== f.size || sum !== f.sha256) violate(`file ${f.name} of build ${b.id} does not match: ${size} bytes sha256 ${sum}, recorded ${f.size} bytes sha256 ${f.sha256}`);
      verifiedFiles += 1;
      verifiedBytes += size;
    }
  }
  // A sample of images through the API download route.
  let apiDownloadsVerified = 0;
  for (const f of artifacts.filter((a) => a.kind === "image").slice(0, 10)) {
    const res = await fetch(`${base}/api/v1/artifacts/${f.id}`, { headers: { authorization: `Bearer ${apiToken}` } }).catch(() => null);
    if (!res || res.status !== 200) {
      violate(`GET /api/v1/artifacts/${f.id} answered ${res?.status ?? "nothing"}`);
      continue;
    }
    const sum = createHash("sha256").update(Buffer.from(await res.arrayBuffer())).digest("hex");
    if (sum !== f.sha256) violate(`GET /api/v1/artifacts/${f.id} sent bytes with sha256 ${sum}, not ${f.sha256}`);
    else apiDownloadsVerified += 1;
  }

  // No build on two slaves at once, from the slaves' own logs: a build runs on a slave from
  // "build started" until "build finished" (a restarted slave logs that after it stopped the
  // leftovers of the build it was running when it was killed).
  const intervals: { slave: string; cookie: string; id: string; from: number; to: number }[] = [];
  for (const s of slaves) {
    const open = new Map<string, number>();
    for (const e of readJsonLog(join(s.dir, "slave.log"))) {
      const cookie = typeof e.cookie === "string" ? e.cookie : null;
      const time = Number(e.time);
      if (!cookie) continue;
      if (e.msg === "build started") open.set(cookie, time);
      else if (e.msg === "build finished" && open.has(cookie)) {
        intervals.push({ slave: s.name, cookie, id: cookie.split("-")[0]!, from: open.get(cookie)!, to: time });
        open.delete(cookie);
      }
    }
    for (const [cookie, from] of open) {
      violate(`${s.name} started ${cookie} and never finished it`);
      intervals.push({ slave: s.name, cookie, id: cookie.split("-")[0]!, from, to: Date.now() });
    }
  }
  const byId = new Map<string, typeof intervals>();
  for (const i of intervals) {
    if (!byId.has(i.id)) byId.set(i.id, []);
    byId.get(i.id)!.push(i);
  }
  for (const [id, list] of byId) {
    list.sort((a, b) => a.from - b.from);
    for (let i = 0; i < list.length; i++) {
      for (let j = i + 1; j < list.length; j++) {
        const a = list[i]!;
        const b = list[j]!;
        if (b.from < a.to && a.slave !== b.slave) {
          violate(`build ${id} ran on ${a.slave} (${a.cookie}) and ${b.slave} (${b.cookie}) at the same time for ${b.from < a.to ? Math.min(a.to, b.to) - b.from : 0} ms`);
        }
      }
    }
  }

  // Nothing of any build left on any slave: processes, mounts, workspaces.
  const leftovers = buildProcesses().filter((p) => slaves.some((s) => p.cwd.startsWith(s.dir + "/")));
  for (const p of leftovers) violate(`process ${p.pid} of build ${p.cookie} is still alive in ${p.cwd}`);
  for (const s of slaves) {
    const mounts = mountsBelow(s.dir);
    if (mounts.length) violate(`${s.name} has mounts left: ${mounts.join(", ")}`);
  }

  // --- Stop everything ---------------------------------------------------------------------------------
  const kills: Record<string, number> = {
    slaves: slaves.reduce((n, s) => n + s.daemon.kills, 0),
    master: masters.reduce((n, m) => n + m.kills, 0),
    postgresql: postgres.kills,
  };
  const ownExits: Record<string, number> = {
    slaves: slaves.reduce((n, s) => n + s.daemon.ownExits.length, 0),
    master: masters.reduce((n, m) => n + m.ownExits.length, 0),
    webapp: webapp.ownExits.length,
  };
  for (const s of slaves) if (s.daemon.ownExits.length) violate(`${s.name} exited by itself ${s.daemon.ownExits.length} time(s); see ${join(s.dir, "slave.log")}`);
  const cuts = {
    connections: slaves.reduce((n, s) => n + s.proxy.stats.connections, 0),
    downloadCuts: slaves.reduce((n, s) => n + s.proxy.stats.downloadCuts, 0),
    otherCuts: slaves.reduce((n, s) => n + s.proxy.stats.otherCuts, 0),
    cutAllEvents,
  };
  await pool.end().catch(() => {});
  await webapp.close();
  for (const m of masters) await m.close();
  for (const s of slaves) {
    await s.daemon.close();
    await s.proxy.close();
  }
  await postgres.stop();

  const report: SoakReport = {
    profile: profile.name,
    seed: profile.seed,
    durationS: Math.round((Date.now() - t0) / 1000),
    requests: requests.length,
    ambiguousPosts: requests.reduce((n, r) => n + r.ambiguous, 0),
    builds: builds.length,
    outcomes,
    kills,
    ownExits,
    cuts,
    requeues: builds.reduce((n, b) => n + b.requeue_count, 0),
    attempts: builds.reduce((n, b) => n + b.attempt, 0),
    disabledBuilders,
    endEvents,
    verifiedFiles,
    verifiedBytes,
    apiDownloadsVerified,
    procSamples,
    violations,
    workDir: work,
  };
  if (duplicates) log(`${duplicates} duplicate build(s) from POSTs whose answer was lost`);
  writeFileSync(join(work, "report.json"), JSON.stringify(report, null, 2));
  if (violations.length === 0 && process.env.CHAOS_KEEP !== "1") rmSync(work, { recursive: true, force: true });
  return report;
}

function sha256File(path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const h = createHash("sha256");
    createReadStream(path)
      .on("data", (c) => h.update(c))
      .on("end", () => resolve(h.digest("hex")))
      .on("error", reject);
  });
}

// vitest globalSetup for the runs without the shared test cluster (chaos soak, long fuzz and
// load runs): only the run's own temporary directory, removed at the end.
import { useRunTmpdir } from "./run-tmpdir.js";

export default function tmpdirSetup(): () => void {
  return useRunTmpdir();
}
